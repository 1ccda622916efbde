//! Strategy parameters: a name → value map from the TOML configuration, a JSON body or `--param name=value`,
//! read into each strategy's own typed struct. A name the strategy does not have, or a value of the wrong type, is
//! an error that says which, never ignored.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub type Params = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter {0:?}: expected name=value")]
    Malformed(String),
    #[error("parameters of {strategy}: {message}")]
    Invalid { strategy: String, message: String },
}

/// `name=value` from a command line: numbers and booleans are read as such, anything else is text.
pub fn parse_assignment(text: &str) -> Result<(String, Value), ParamError> {
    let (name, value) = text.split_once('=').ok_or_else(|| ParamError::Malformed(text.to_string()))?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ParamError::Malformed(text.to_string()));
    }
    let value = value.trim();
    let parsed = match serde_json::from_str::<Value>(value) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(value.to_string()),
    };
    Ok((name.to_string(), parsed))
}

/// Reads `params` into a strategy's parameter struct (which should `deny_unknown_fields` and give defaults).
pub fn typed<T: DeserializeOwned>(strategy: &str, params: &Params) -> Result<T, ParamError> {
    serde_json::from_value(Value::Object(params.clone()))
        .map_err(|e| ParamError::Invalid { strategy: strategy.to_string(), message: e.to_string() })
}

/// A check a strategy makes of its parameters after reading them.
pub fn invalid(strategy: &str, message: impl Into<String>) -> ParamError {
    ParamError::Invalid { strategy: strategy.to_string(), message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct P {
        #[serde(default = "ten")]
        fast: usize,
        #[serde(default)]
        label: String,
    }

    fn ten() -> usize {
        10
    }

    #[test]
    fn assignments_and_typed_reads() {
        assert_eq!(parse_assignment("fast=5").unwrap(), ("fast".into(), Value::from(5)));
        assert_eq!(parse_assignment(" k = 0.5 ").unwrap(), ("k".into(), Value::from(0.5)));
        assert_eq!(parse_assignment("label=abc").unwrap(), ("label".into(), Value::from("abc")));
        assert!(
            parse_assignment("fast").is_err() && parse_assignment("=3").is_err() && parse_assignment("a b=1").is_err()
        );

        let mut p = Params::new();
        assert_eq!(typed::<P>("x", &p).unwrap(), P { fast: 10, label: String::new() });
        p.insert("fast".into(), Value::from(3));
        assert_eq!(typed::<P>("x", &p).unwrap().fast, 3);
        p.insert("fsat".into(), Value::from(3));
        let e = typed::<P>("x", &p).unwrap_err().to_string();
        assert!(e.contains("unknown field `fsat`") && e.contains("fast"), "{e}");
        let mut p = Params::new();
        p.insert("fast".into(), Value::from("many"));
        assert!(typed::<P>("x", &p).unwrap_err().to_string().contains("invalid type"));
    }
}
