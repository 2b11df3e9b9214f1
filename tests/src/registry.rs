//! The test Schema Registry (`tests/registry/weir_dev_registry.py`) as a child
//! process, and an independent Avro reader: Python's fastavro, fetching each
//! message's schema from the registry by the id in its Confluent header.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::error::HarnessError;

/// The registry script.
pub fn registry_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("registry/weir_dev_registry.py")
}

/// A running registry; stopped when dropped.
#[derive(Debug)]
pub struct SchemaRegistry {
    child: Child,
    /// Held open: the registry exits when it closes.
    _stdin: ChildStdin,
    url: String,
}

impl SchemaRegistry {
    /// Starts one on a free loopback port. It stores compatibility levels but
    /// does not enforce them.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_with(&[])
    }

    /// Starts one that enforces compatibility levels (BACKWARD unless set) as
    /// Confluent's registry does, with Avro's own `SchemaCompatibility` (the JVM
    /// judges must be built: `scripts/fetch-judges.sh`).
    pub fn start_enforcing() -> Result<Self, HarnessError> {
        let judge = crate::judges::avro_compatibility_command()?;
        Self::start_with(&["--avro-judge", &judge])
    }

    fn start_with(args: &[&str]) -> Result<Self, HarnessError> {
        let mut child = Command::new("python3")
            .arg(registry_script())
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| HarnessError::io("spawn python3 weir_dev_registry.py", e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(HarnessError::Broker("registry: no stdio pipes".to_owned()));
        };
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let url = match (read, line.trim().strip_prefix("listening on ")) {
            (Ok(_), Some(url)) => url.to_owned(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HarnessError::Broker(format!(
                    "the schema registry did not start: {line:?}"
                )));
            }
        };
        Ok(Self {
            child,
            _stdin: stdin,
            url,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET path`, as JSON (any status: errors have a JSON body too).
    pub fn get(&self, path: &str) -> Result<serde_json::Value, HarnessError> {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body, as JSON.
    pub fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, HarnessError> {
        self.request("POST", path, Some(&body.to_string()))
    }

    /// Sets the compatibility level of `subject`, or the registry's default.
    pub fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: &str,
    ) -> Result<serde_json::Value, HarnessError> {
        let path = match subject {
            Some(subject) => format!("/config/{subject}"),
            None => "/config".to_owned(),
        };
        let body = serde_json::json!({ "compatibility": level }).to_string();
        self.request("PUT", &path, Some(&body))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<serde_json::Value, HarnessError> {
        let address = self.url.trim_start_matches("http://");
        let (status, text) = crate::http::http_request(address, method, path, body)
            .map_err(|e| HarnessError::io("ask the registry", e))?;
        serde_json::from_str(&text).map_err(|e| HarnessError::Command {
            what: "reading the registry's answer",
            detail: format!("{status}: {e}: {text}"),
        })
    }

    /// The newest schema registered under `subject`, as its JSON text.
    pub fn latest_schema(&self, subject: &str) -> Result<String, HarnessError> {
        let address = self.url.trim_start_matches("http://");
        let (status, body) =
            crate::http_get(address, &format!("/subjects/{subject}/versions/latest"))
                .map_err(|e| HarnessError::io("ask the registry", e))?;
        let failed = |detail: String| HarnessError::Command {
            what: "reading a schema from the registry",
            detail,
        };
        if !status.contains(" 200 ") {
            return Err(failed(format!("{status}: {body}")));
        }
        let version: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| failed(format!("{e}: {body}")))?;
        version["schema"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| failed(format!("no schema in {body}")))
    }
}

impl Drop for SchemaRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message's key and value as read from Kafka (`None`: null).
pub type FramedMessage = (Option<Vec<u8>>, Option<Vec<u8>>);

const FASTAVRO_READER: &str = r#"
import io, json, struct, sys, urllib.request
import fastavro

registry = sys.argv[1]
schemas = {}

def schema(schema_id):
    if schema_id not in schemas:
        with urllib.request.urlopen(f"{registry}/schemas/ids/{schema_id}") as answer:
            text = json.load(answer)["schema"]
        schemas[schema_id] = fastavro.parse_schema(json.loads(text))
    return schemas[schema_id]

def decode(hex_text):
    if hex_text == "-":
        return None
    data = bytes.fromhex(hex_text)
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0, f"magic byte {magic}"
    buffer = io.BytesIO(data[5:])
    datum = fastavro.schemaless_reader(buffer, schema(schema_id))
    assert buffer.read() == b"", "bytes left after the datum"
    return {"schema_id": schema_id, "datum": datum}

def plain(value):
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value != value:
        return {"float": "NaN"}
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return {"float": str(value)}
    if hasattr(value, "as_tuple"):
        return {"decimal": str(value)}
    return value

for line in sys.stdin:
    key, value = line.split()
    print(json.dumps({"key": plain(decode(key)), "value": plain(decode(value))}), flush=True)
"#;

/// Decodes Confluent-framed Avro keys and values with fastavro, schemas fetched
/// from `registry_url`. Returns per message `{"key": {"schema_id", "datum"} | null,
/// "value": … | null}`; bytes come back as `{"bytes": hex}`, decimals as
/// `{"decimal": text}` and non-finite floats as `{"float": "NaN"}`.
pub fn fastavro_decode(
    registry_url: &str,
    messages: &[FramedMessage],
) -> Result<Vec<serde_json::Value>, HarnessError> {
    let mut child = Command::new("python3")
        .args(["-c", FASTAVRO_READER, registry_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::io("spawn python3 (fastavro)", e))?;
    let hex = |bytes: &Option<Vec<u8>>| match bytes {
        Some(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        None => "-".to_owned(),
    };
    let Some(mut stdin) = child.stdin.take() else {
        return Err(HarnessError::Broker("fastavro: no stdin".to_owned()));
    };
    // Written from a thread of its own while the output is read: fastavro
    // answers line by line, and with both pipes full each side would wait for
    // the other for ever (thousands of messages did).
    let input: String = messages
        .iter()
        .map(|(key, value)| format!("{} {}\n", hex(key), hex(value)))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| HarnessError::io("wait for fastavro", e))?;
    writer
        .join()
        .map_err(|_| HarnessError::Broker("fastavro: the writing thread panicked".to_owned()))?
        .map_err(|e| HarnessError::io("write to fastavro", e))?;
    if !output.status.success() {
        return Err(HarnessError::Broker(format!(
            "fastavro failed (is it installed? scripts/setup.sh): {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| HarnessError::Broker(format!("fastavro printed {line:?}: {e}")))
        })
        .collect()
}
