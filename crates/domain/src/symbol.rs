//! Instrument symbols: B3 tickers such as `PETR4`, `BOVA11`, `WINZ25`, `PETRA370`.
//!
//! A symbol is checked once, where it enters (an API body, a signal, the journal), and is then a small `Copy` value:
//! the order path keys maps by it and copies it into every order without allocating. Lookups by `&str` still work
//! (`Borrow<str>`), so adapters that carry text (market data, the bus) can ask without converting.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The longest symbol held: B3's longest tickers (options on futures) have 13 characters.
pub const MAX_SYMBOL_LEN: usize = 15;

#[derive(Clone, Copy)]
pub struct Symbol {
    len: u8,
    bytes: [u8; MAX_SYMBOL_LEN],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_SYMBOL_LEN} characters")]
    TooLong,
    #[error("may hold only capital letters A-Z and digits")]
    BadCharacter,
}

impl Symbol {
    /// Checks a ticker exactly as given: 1 to 15 capital letters and digits (callers trim and upper-case user
    /// input first, so that `" petr4"` from a form is `PETR4`).
    pub const fn parse(text: &str) -> Result<Symbol, SymbolError> {
        let b = text.as_bytes();
        if b.is_empty() {
            return Err(SymbolError::Empty);
        }
        if b.len() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong);
        }
        let mut bytes = [0u8; MAX_SYMBOL_LEN];
        let mut i = 0;
        while i < b.len() {
            if !(b[i].is_ascii_uppercase() || b[i].is_ascii_digit()) {
                return Err(SymbolError::BadCharacter);
            }
            bytes[i] = b[i];
            i += 1;
        }
        Ok(Symbol { len: b.len() as u8, bytes })
    }

    /// A symbol written in the code (tables of defaults, tests): a literal that is not a symbol is a programming
    /// error, caught the first time the line runs (at compile time in a `const`).
    pub const fn lit(text: &'static str) -> Symbol {
        match Symbol::parse(text) {
            Ok(s) => s,
            Err(_) => panic!("not a symbol literal"),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `parse`), so this cannot fail.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

impl std::ops::Deref for Symbol {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Symbol {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

// Equality, order and hash are those of the text, as `Borrow<str>` requires. `parse` (the only constructor) zeroes
// the bytes past `len`, so comparing the whole array is comparing the text, without a UTF-8 check per call (the
// backtest compares symbols on every tick).
impl PartialEq for Symbol {
    #[inline]
    fn eq(&self, other: &Symbol) -> bool {
        self.len == other.len && self.bytes == other.bytes
    }
}
impl Eq for Symbol {}

impl PartialOrd for Symbol {
    fn partial_cmp(&self, other: &Symbol) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Symbol {
    fn cmp(&self, other: &Symbol) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Symbol {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq<str> for Symbol {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}
impl PartialEq<&str> for Symbol {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Symbol, SymbolError> {
        Symbol::parse(s)
    }
}

impl TryFrom<&str> for Symbol {
    type Error = SymbolError;
    fn try_from(s: &str) -> Result<Symbol, SymbolError> {
        Symbol::parse(s)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Symbol, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Symbol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a symbol (1 to 15 capital letters and digits)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Symbol, E> {
                let shown: String = v.chars().take(20).collect();
                Symbol::parse(v).map_err(|e| E::custom(format!("symbol {shown:?} {e}")))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{RefOr, Schema};

    impl utoipa::PartialSchema for super::Symbol {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Z0-9]{1,15}$"))
                .description(Some("A B3 ticker, e.g. PETR4 or WINZ25"))
                .into()
        }
    }
    impl utoipa::ToSchema for super::Symbol {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tickers_and_refuses_the_rest() {
        for ok in ["PETR4", "BOVA11", "WINZ25", "PETRA370", "A", "WDOF26C5000AB12"] {
            assert_eq!(Symbol::parse(ok).map(|s| s.to_string()), Ok(ok.to_string()));
        }
        assert_eq!(Symbol::parse(""), Err(SymbolError::Empty));
        assert_eq!(Symbol::parse("WDOF26C5000AB123"), Err(SymbolError::TooLong));
        for bad in ["petr4", "PETR 4", " PETR4", "PETR4\n", "PÉTR4", "PETR-4"] {
            assert_eq!(Symbol::parse(bad), Err(SymbolError::BadCharacter), "{bad:?}");
        }
    }

    #[test]
    fn behaves_as_its_text() {
        let s = Symbol::lit("PETR4");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"PETR4\"");
        assert_eq!(serde_json::from_str::<Symbol>("\"PETR4\"").unwrap(), s);
        assert!(serde_json::from_str::<Symbol>("\"petr 4\"").is_err());
        let mut m = std::collections::BTreeMap::new();
        m.insert(s, 1);
        assert_eq!(m.get("PETR4"), Some(&1));
        let mut h = std::collections::HashMap::new();
        h.insert(s, 2);
        assert_eq!(h.get("PETR4"), Some(&2));
        assert!(Symbol::lit("PETR4") < Symbol::lit("VALE3"));
        assert_eq!(s, "PETR4");
        assert_eq!(format!("{s:?}"), "\"PETR4\"");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused_and_round_trips(text in "\\PC{0,20}") {
            if let Ok(s) = Symbol::parse(&text) {
                proptest::prop_assert_eq!(s.as_str(), text.as_str());
            }
        }
    }
}
