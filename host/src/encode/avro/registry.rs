//! A Confluent Schema Registry client: registers schemas under subjects and caches
//! the ids, so a schema costs one HTTP request per subject and process, not one per
//! message.
//!
//! Registration is idempotent on the registry's side (the same schema under the
//! same subject returns the existing id), which is what makes a restart cheap and a
//! changed table schema simply a new version. The registry's compatibility rules
//! decide whether a new version is accepted; a refusal stops the pipeline with the
//! registry's message.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

/// The registry refused or could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The URL is not a usable `http(s)://` URL.
    #[error("schema registry URL {0:?} is not an http(s) URL")]
    Url(String),
    /// A request failed (network, TLS, or an error status with the registry's message).
    #[error("schema registry: registering subject {subject}: {message}")]
    Register {
        /// The subject.
        subject: String,
        /// Why.
        message: String,
    },
    /// The subject's compatibility level refuses the schema (HTTP 409).
    #[error("schema registry: subject {subject} refuses the new schema as incompatible: {message}")]
    Incompatible {
        /// The subject.
        subject: String,
        /// The registry's reasons.
        message: String,
    },
    /// The registry could not be reached, or refused to list its subjects.
    #[error("schema registry at {url}: {message}")]
    Unreachable {
        /// The registry's URL, without credentials.
        url: String,
        /// Why.
        message: String,
    },
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

/// A Schema Registry at one URL.
pub struct SchemaRegistry {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
    ids: HashMap<(String, String), u32>,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("base", &self.base)
            .field("cached", &self.ids.len())
            .finish_non_exhaustive()
    }
}

impl SchemaRegistry {
    /// A client for `url`; `user:password@` in it becomes HTTP basic authentication.
    pub fn new(url: &str) -> Result<Self, RegistryError> {
        let invalid = || RegistryError::Url(crate::redact::credentials(url).into_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        if scheme != "http" && scheme != "https" {
            return Err(invalid());
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((credentials, host)) => (Some(credentials), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(invalid());
        }
        let authorization = credentials.map(|credentials| {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        });
        let path = path.trim_end_matches('/');
        let base = if path.is_empty() {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}/{path}")
        };
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::NativeTls)
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .build();
        Ok(Self {
            agent: config.into(),
            base,
            authorization,
            ids: HashMap::new(),
        })
    }

    /// The id of `schema` (Avro JSON) under `subject`, registering it when this
    /// process has not yet.
    pub fn register(&mut self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let cache_key = (subject.to_owned(), schema.to_owned());
        if let Some(id) = self.ids.get(&cache_key) {
            return Ok(*id);
        }
        let id = self.post_version(subject, schema)?;
        tracing::info!(subject, id, "registered schema");
        self.ids.insert(cache_key, id);
        Ok(id)
    }

    /// Lists the registry's subjects, as `weir check` does to prove the URL, the
    /// network path and the credentials before a pipeline needs them. Returns how
    /// many subjects there are.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unreachable`] with the status and the registry's message.
    pub fn check(&self) -> Result<usize, RegistryError> {
        let request = self.authorized(self.agent.get(format!("{}/subjects", self.base)));
        read_answer::<Vec<String>>(request.call())
            .map(|subjects| subjects.len())
            .map_err(|failure| RegistryError::Unreachable {
                url: self.base.clone(),
                message: failure.message,
            })
    }

    fn post_version(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = format!(
            "{}/subjects/{}/versions",
            self.base,
            percent_encode(subject)
        );
        let body = serde_json::json!({ "schema": schema }).to_string();
        let request = self
            .authorized(self.agent.post(&url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json");
        read_answer::<Registered>(request.send(body.as_bytes()))
            .map(|registered| registered.id)
            .map_err(|failure| {
                let subject = subject.to_owned();
                let message = failure.message;
                if failure.status == Some(409) {
                    RegistryError::Incompatible { subject, message }
                } else {
                    RegistryError::Register { subject, message }
                }
            })
    }

    /// The latest schema registered under `subject`, if any.
    pub fn latest(&self, subject: &str) -> Result<Option<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Version {
            schema: String,
        }
        let url = format!(
            "{}/subjects/{}/versions/latest",
            self.base,
            percent_encode(subject)
        );
        match read_answer::<Version>(self.authorized(self.agent.get(&url)).call()) {
            Ok(version) => Ok(Some(version.schema)),
            Err(failure) if failure.status == Some(404) => Ok(None),
            Err(failure) => Err(RegistryError::Register {
                subject: subject.to_owned(),
                message: failure.message,
            }),
        }
    }

    /// The compatibility level that applies to `subject`: its own, else the
    /// registry's (`None` when the registry does not say).
    pub fn compatibility(&self, subject: &str) -> Option<String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Config {
            compatibility_level: String,
        }
        let url = format!(
            "{}/config/{}?defaultToGlobal=true",
            self.base,
            percent_encode(subject)
        );
        read_answer::<Config>(self.authorized(self.agent.get(&url)).call())
            .or_else(|_| {
                let global = format!("{}/config", self.base);
                read_answer::<Config>(self.authorized(self.agent.get(&global)).call())
            })
            .ok()
            .map(|config| config.compatibility_level)
    }

    /// `request` with the registry's media types and this client's credentials.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let request = request.header(
            "Accept",
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        match &self.authorization {
            Some(authorization) => request.header("Authorization", authorization),
            None => request,
        }
    }
}

/// Why a request failed: the HTTP status when there was one, and the message.
struct Failure {
    status: Option<u16>,
    message: String,
}

impl Failure {
    fn transport(error: impl std::fmt::Display) -> Self {
        Failure {
            status: None,
            message: error.to_string(),
        }
    }
}

/// The registry's answer as `T`, or why not: the transport's error, an error
/// status with the registry's message, or a body of another shape.
fn read_answer<T: serde::de::DeserializeOwned>(
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<T, Failure> {
    let mut response = sent.map_err(Failure::transport)?;
    let status = response.status();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(Failure::transport)?;
    if !status.is_success() {
        return Err(Failure {
            status: Some(status.as_u16()),
            message: format!("HTTP {}: {text}", status.as_u16()),
        });
    }
    serde_json::from_str(&text)
        .map_err(|e| Failure::transport(format!("unexpected answer {text:?}: {e}")))
}

/// Subjects come from topic names (letters, digits, `.`, `_`, `-`), which need no
/// escaping; anything else is percent-encoded.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"._-~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_basic_auth() {
        let registry = SchemaRegistry::new("https://user:pa%ss@registry:8081/base/").expect("url");
        assert_eq!(registry.base, "https://registry:8081/base");
        assert!(
            registry
                .authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))
        );
        assert!(SchemaRegistry::new("registry:8081").is_err());
        assert!(SchemaRegistry::new("ftp://registry").is_err());
    }

    #[test]
    fn subjects_are_escaped() {
        assert_eq!(
            percent_encode("shop.public.orders-value"),
            "shop.public.orders-value"
        );
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
