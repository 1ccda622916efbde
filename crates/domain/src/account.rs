//! The account an order is booked to and rate-limited per: today the name of the user or API key that sent it.
//!
//! A newtype so that an account is never confused with a symbol, a client order id or an actor's free-form name
//! (the journal's "who" may be `system` or `reconciler`; an account is whoever owns orders).

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// Cheap to clone (shared text): every order carries one and every rate-limit check looks one up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(from = "String")]
pub struct AccountId(Arc<str>);

impl From<String> for AccountId {
    fn from(name: String) -> AccountId {
        AccountId(Arc::from(name))
    }
}

impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl AccountId {
    pub fn new(name: &str) -> AccountId {
        AccountId(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for AccountId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AccountId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for AccountId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for AccountId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{RefOr, Schema};

    impl utoipa::PartialSchema for super::AccountId {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The account the order is booked to (the user or API key that sent it)"))
                .into()
        }
    }
    impl utoipa::ToSchema for super::AccountId {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_its_name_on_the_wire_and_in_lookups() {
        let a = AccountId::new("trader");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"trader\"");
        assert_eq!(serde_json::from_str::<AccountId>("\"trader\"").unwrap(), a);
        let mut m = std::collections::HashMap::new();
        m.insert(a.clone(), 1);
        assert_eq!(m.get("trader"), Some(&1));
        assert_eq!(a, "trader");
    }
}
