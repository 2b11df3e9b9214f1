//! Credentials out of text that people read: errors and logs.
//!
//! A URL's password (`scheme://user:password@host`) and a conninfo's
//! `password=…` are replaced by `***` wherever they appear, so that a typo in a
//! spec, a registry that cannot be reached or a verbose log line never prints a
//! secret. The user name stays: it helps and is rarely secret.

use std::borrow::Cow;

/// What replaces a secret.
pub const MASK: &str = "***";

/// `text` with every URL password and `password=` value masked.
///
/// ```
/// use weir::redact::credentials;
/// assert_eq!(
///     credentials("bad registry http://u:s3cret@reg:8081/x"),
///     "bad registry http://u:***@reg:8081/x"
/// );
/// assert_eq!(credentials("host=db password=s3cret user=u"), "host=db password=*** user=u");
/// ```
pub fn credentials(text: &str) -> Cow<'_, str> {
    if !text.contains("://") && !text.contains("password=") {
        return Cow::Borrowed(text);
    }
    let masked = mask_url_passwords(text);
    Cow::Owned(mask_password_settings(&masked))
}

fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        // The authority ends at the path, the query or anything that cannot be in
        // a URL written in running text.
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                    out.push('@');
                    out.push_str(host);
                }
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn mask_password_settings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("password=") {
        let value_start = at + "password=".len();
        out.push_str(&rest[..value_start]);
        let after = &rest[value_start..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\''))
            .unwrap_or(after.len());
        if end > 0 {
            out.push_str(MASK);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// An error and its causes, `outer: cause: root`, with credentials masked: for a
/// log line or a report that shows one string.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // `#[error(transparent)]` wrappers repeat their cause's text.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    credentials(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_the_rest_kept() {
        let cases = [
            (
                "postgres://weir:pa:ss@db:5432/shop?sslmode=require",
                "postgres://weir:***@db:5432/shop?sslmode=require",
            ),
            ("see \"https://u:p@r\" now", "see \"https://u:***@r\" now"),
            ("http://reg:8081/subjects", "http://reg:8081/subjects"),
            ("http://user@reg", "http://user@reg"),
            (
                "a postgres://u:x@h and http://v:y@k",
                "a postgres://u:***@h and http://v:***@k",
            ),
            (
                "postgres://u@h/db?password=abc&sslmode=disable",
                "postgres://u@h/db?password=***&sslmode=disable",
            ),
            ("no secrets here", "no secrets here"),
            ("password= empty", "password= empty"),
        ];
        for (text, expected) in cases {
            assert_eq!(credentials(text), expected, "{text}");
        }
    }
}
