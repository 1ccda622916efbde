//! Secrets known to this process, and `redact`, which removes them from a text.
//!
//! The first line of defence is not to put a secret in a message at all (errors are stripped of URLs, configs
//! print masked). This is the second: the log formatter and the stores of user-visible messages pass every text
//! through [`redact`], so a secret that slips into an error message still never reaches a file, stderr or an API
//! answer.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Shorter strings are not treated as secrets: masking every "admin" or "1234" would mangle ordinary text, and
/// such a value is no secret anyway.
pub const MIN_LEN: usize = 8;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds a secret (and its JSON-escaped spelling, which is how it would appear inside a JSON log line).
pub fn register(secret: &str) {
    if secret.chars().count() < MIN_LEN {
        return;
    }
    let escaped = json_escaped(secret);
    let mut list = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for s in [secret.to_string(), escaped] {
        if !list.contains(&s) {
            list.push(s);
        }
    }
    // Longest first, so a secret that contains another is masked whole.
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Whether `secret` is already known (callers on a hot path check before taking the write lock).
pub fn is_registered(secret: &str) -> bool {
    SECRETS.read().unwrap_or_else(|e| e.into_inner()).iter().any(|s| s == secret)
}

/// `text` with every known secret replaced by [`MASK`]; borrowed when there was nothing to replace.
pub fn redact(text: &str) -> Cow<'_, str> {
    let list = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for s in list.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), MASK));
        }
    }
    out
}

fn json_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets_raw_and_json_escaped() {
        register("123456:ABCdefGHIjkl");
        register("pa\"ss\\word-long");
        register("short");
        let t = "GET https://api.telegram.org/bot123456:ABCdefGHIjkl/getUpdates failed";
        assert_eq!(redact(t), "GET https://api.telegram.org/bot[REDACTED]/getUpdates failed");
        assert_eq!(redact(r#"{"message":"password pa\"ss\\word-long"}"#), r#"{"message":"password [REDACTED]"}"#);
        assert_eq!(redact("short stays"), "short stays");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        assert!(is_registered("123456:ABCdefGHIjkl"));
    }
}
