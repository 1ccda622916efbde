//! Closed sets of values stored as text: enums at the storage edge, so a value the code does not know is an error
//! when it is read (naming the column), never a string compared somewhere later. The HTTP edge uses the same
//! types: a body with another value is a 422 naming the field.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Declares a text enum: its variants with their stored spelling, `as_str`, `parse` and the row reader.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The values, as a person reads them in an error message.
            pub fn choices() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Whether a channel's messages are read as signals or one is written to.
    ChannelType { Source = "source", Destination = "destination" }
}

text_enum! {
    /// What a user or an API key may do, in increasing order: each role can do what the ones before it can.
    Role { Viewer = "viewer", Trader = "trader", Admin = "admin" }
}

text_enum! {
    /// What a system of the documentation registry is.
    SystemType { Api = "api", Webapp = "webapp", Docs = "docs", Tool = "tool" }
}

text_enum! {
    /// What a system's last health probe found.
    SystemStatus { Online = "online", Offline = "offline", Error = "error", Unknown = "unknown" }
}

text_enum! {
    /// Whether a registered channel or bot is in use.
    Activity { Active = "active", Inactive = "inactive" }
}

text_enum! {
    /// What a registered Telegram bot does.
    BotType { Sender = "sender", Forwarder = "forwarder", Ingestion = "ingestion", Monitor = "monitor" }
}

text_enum! {
    /// How much an ingestion-log line matters.
    LogLevel { Debug = "debug", Info = "info", Warn = "warn", Error = "error" }
}

text_enum! {
    /// What the ingestion of one Telegram update came to.
    IngestOutcome {
        Parsed = "parsed",
        Updated = "updated",
        Duplicate = "duplicate",
        Ignored = "ignored",
        Unregistered = "unregistered",
        /// An update that could not be read.
        Failed = "failed",
        /// Polling the Bot API failed.
        PollError = "poll_error",
    }
}

text_enum! {
    /// Where a TP-Capital signal came in.
    SignalSource {
        TelegramPolling = "telegram-polling",
        TelegramWebhook = "telegram-webhook",
        /// Stored through the programmatic interface (imports, tests).
        Api = "api",
    }
}

text_enum! {
    /// What was done to an idea, as its audit trail records it.
    IdeaAction {
        Create = "create",
        Update = "update",
        /// A status change only.
        Transition = "transition",
        Delete = "delete",
        /// Brought over from the original system.
        Import = "import",
    }
}

text_enum! {
    /// What a strategy/ML signal asks for.
    SignalAction { Buy = "BUY", Sell = "SELL", Hold = "HOLD" }
}

impl SignalAction {
    /// The side it trades; HOLD trades none.
    pub fn side(self) -> Option<domain::order::Side> {
        match self {
            SignalAction::Buy => Some(domain::order::Side::Buy),
            SignalAction::Sell => Some(domain::order::Side::Sell),
            SignalAction::Hold => None,
        }
    }
}

/// What became of a strategy/ML signal. Stored and shown as one text: `pending`, `hold`, `below_threshold`,
/// `ordered`, `rejected: why` (the plan was refused whole before any order) or `not_traded: why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelDecision {
    /// Above the threshold; its bracket is being opened.
    Pending,
    Hold,
    BelowThreshold,
    Ordered,
    Rejected(String),
    NotTraded(String),
}

impl ModelDecision {
    const REJECTED: &'static str = "rejected: ";
    const NOT_TRADED: &'static str = "not_traded: ";

    pub fn parse(text: &str) -> Option<ModelDecision> {
        Some(match text {
            "pending" => ModelDecision::Pending,
            "hold" => ModelDecision::Hold,
            "below_threshold" => ModelDecision::BelowThreshold,
            "ordered" => ModelDecision::Ordered,
            _ => {
                if let Some(why) = text.strip_prefix(Self::REJECTED) {
                    ModelDecision::Rejected(why.to_string())
                } else {
                    ModelDecision::NotTraded(text.strip_prefix(Self::NOT_TRADED)?.to_string())
                }
            }
        })
    }

    pub fn is_pending(&self) -> bool {
        *self == ModelDecision::Pending
    }
}

impl std::fmt::Display for ModelDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelDecision::Pending => f.write_str("pending"),
            ModelDecision::Hold => f.write_str("hold"),
            ModelDecision::BelowThreshold => f.write_str("below_threshold"),
            ModelDecision::Ordered => f.write_str("ordered"),
            ModelDecision::Rejected(why) => write!(f, "{}{why}", Self::REJECTED),
            ModelDecision::NotTraded(why) => write!(f, "{}{why}", Self::NOT_TRADED),
        }
    }
}

impl Serialize for ModelDecision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A side as stored: `BUY` or `SELL` (the domain's own spelling).
pub fn parse_side(text: &str) -> Option<domain::order::Side> {
    match text {
        "BUY" => Some(domain::order::Side::Buy),
        "SELL" => Some(domain::order::Side::Sell),
        _ => None,
    }
}

pub fn side_str(side: domain::order::Side) -> &'static str {
    match side {
        domain::order::Side::Buy => "BUY",
        domain::order::Side::Sell => "SELL",
    }
}

/// Reads a text enum column; a value outside the set is a decode error naming the column.
pub(crate) fn get_enum<T>(r: &AnyRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    let text: String = r.try_get(col)?;
    parse(&text).ok_or_else(|| {
        bad_value(
            col,
            format!("stored value {:?} is not one this version knows", text.chars().take(40).collect::<String>()),
        )
    })
}

/// Reads a JSON text column; text that is not the expected JSON is a decode error naming the column.
pub(crate) fn get_json<T: serde::de::DeserializeOwned>(r: &AnyRow, col: &str) -> Result<T, sqlx::Error> {
    let text: String = r.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| bad_value(col, format!("stored JSON does not read: {e}")))
}

pub(crate) fn bad_value(col: &str, why: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: col.to_string(), source: why.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_and_serializes_as_stored() {
        for v in BotType::ALL {
            assert_eq!(BotType::parse(v.as_str()), Some(*v));
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(v.as_str()));
        }
        assert_eq!(ChannelType::parse("Source"), None);
        assert_eq!(Activity::choices(), "active, inactive");
    }

    #[test]
    fn model_decisions_read_back_as_written() {
        let all = [
            ModelDecision::Pending,
            ModelDecision::Hold,
            ModelDecision::BelowThreshold,
            ModelDecision::Ordered,
            ModelDecision::Rejected("stop above entry; limit".into()),
            ModelDecision::NotTraded("entry: kill switch".into()),
        ];
        for d in all {
            assert_eq!(ModelDecision::parse(&d.to_string()), Some(d.clone()));
            assert_eq!(serde_json::to_value(&d).unwrap(), serde_json::json!(d.to_string()));
        }
        assert_eq!(ModelDecision::parse("rejected: x").unwrap().to_string(), "rejected: x");
        for bad in ["", "Ordered", "rejected:", "traded", "not_traded"] {
            assert_eq!(ModelDecision::parse(bad), None, "{bad:?}");
        }
    }
}
