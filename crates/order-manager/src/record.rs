//! What the journal holds: one [`Record`] per command or event, JSON-encoded.
//!
//! Prices and amounts are written as exact decimal strings (`"37.12"`, see `domain::price::with_exact_strings`)
//! so that a replay reproduces state bit for bit; journals written before that carry JSON numbers, which still
//! replay exactly (each is read through the decimal text it was printed as).

use chrono::{DateTime, NaiveDate, Utc};
use domain::order::{Amendment, Order, OrderEvent, OrderId};
use domain::risk::{RiskCheck, RiskLimits};
use domain::{AccountId, Money};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub ts: DateTime<Utc>,
    /// Who caused it: a user name, an API key's name, `broker`, `system`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(flatten)]
    pub entry: Entry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// Passed validation and every risk check; PENDING_NEW until the broker answers.
    OrderSubmitted {
        order: Order,
    },
    /// Refused by a risk check; recorded as an order in REJECTED.
    OrderRejected {
        order: Order,
        check: RiskCheck,
        code: String,
        reason: String,
    },
    /// Failed validation (no order is created); kept for the audit trail.
    OrderInvalid {
        request: serde_json::Value,
        field: String,
        message: String,
    },
    /// A lifecycle event of an existing order (broker reports, cancel requests).
    OrderEvent {
        order_id: OrderId,
        event: OrderEvent,
    },
    /// A modify refused by a risk check (the order keeps its terms); kept for the audit trail.
    ModifyRejected {
        order_id: OrderId,
        amendment: Amendment,
        check: RiskCheck,
        code: String,
        reason: String,
    },
    LimitsChanged {
        limits: RiskLimits,
        reason: String,
    },
    KillSwitch {
        active: bool,
        reason: String,
        cancel_open_orders: bool,
        flatten: bool,
        automatic: bool,
        /// One account's switch; `None` is the global one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<AccountId>,
    },
    /// The daily P&L crossed 80 % of the loss limit.
    LossWarning {
        daily_pnl: Money,
        limit: Money,
    },
    /// A new trading date began: realized-today resets.
    SessionStarted {
        date: NaiveDate,
    },
    /// A difference found between our books and the broker's, and what was done about it.
    Reconciled {
        order_id: Option<OrderId>,
        finding: String,
        action: String,
    },
    /// Something a person must look at now (a filled position left without its protective stop, say).
    Alert {
        order_id: Option<OrderId>,
        kind: String,
        message: String,
    },
    /// The server started and finished recovery.
    Started {
        recovered_records: u64,
        truncated_bytes: u64,
    },
}

/// Fields kept of a refused request, characters kept of each string, and of the message: the audit trail says what
/// was refused and why in about 1 KiB, whatever size the request had (the body limit is 1 MiB).
const SUMMARY_FIELDS: usize = 8;
const SUMMARY_STRING_CHARS: usize = 40;
const SUMMARY_KEY_CHARS: usize = 24;
pub const SUMMARY_MESSAGE_CHARS: usize = 200;

/// `s` cut to `max` characters, saying how much was left out.
pub fn truncated(s: &str, max: usize) -> String {
    let total = s.chars().count();
    if total <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    format!("{head}…(+{} chars)", total - max)
}

fn summary_scalar(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(truncated(s, SUMMARY_STRING_CHARS)),
        Value::Array(a) => Value::String(format!("<array of {}>", a.len())),
        Value::Object(o) => Value::String(format!("<object with {} fields>", o.len())),
        other => other.clone(),
    }
}

/// A bounded summary of a refused request for the journal: the first fields with truncated values, nested values
/// replaced by their shape, and the count of fields left out.
pub fn request_summary(v: &serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(o) = v else { return summary_scalar(v) };
    let mut out = serde_json::Map::new();
    for (k, v) in o.iter().take(SUMMARY_FIELDS) {
        out.insert(truncated(k, SUMMARY_KEY_CHARS), summary_scalar(v));
    }
    if o.len() > SUMMARY_FIELDS {
        out.insert("…".into(), serde_json::Value::String(format!("{} more fields", o.len() - SUMMARY_FIELDS)));
    }
    serde_json::Value::Object(out)
}

impl Entry {
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::OrderSubmitted { .. } => "order_submitted",
            Entry::OrderRejected { .. } => "order_rejected",
            Entry::OrderInvalid { .. } => "order_invalid",
            Entry::OrderEvent { .. } => "order_event",
            Entry::ModifyRejected { .. } => "modify_rejected",
            Entry::LimitsChanged { .. } => "limits_changed",
            Entry::KillSwitch { .. } => "kill_switch",
            Entry::LossWarning { .. } => "loss_warning",
            Entry::SessionStarted { .. } => "session_started",
            Entry::Reconciled { .. } => "reconciled",
            Entry::Alert { .. } => "alert",
            Entry::Started { .. } => "started",
        }
    }

    pub fn order_id(&self) -> Option<OrderId> {
        match self {
            Entry::OrderSubmitted { order } | Entry::OrderRejected { order, .. } => Some(order.id),
            Entry::OrderEvent { order_id, .. } | Entry::ModifyRejected { order_id, .. } => Some(*order_id),
            Entry::Reconciled { order_id, .. } | Entry::Alert { order_id, .. } => *order_id,
            _ => None,
        }
    }
}

/// A modify's terms as the audit trail shows them.
fn terms(a: &Amendment) -> String {
    let mut t = format!("quantity {}", a.quantity);
    if let Some(p) = a.price {
        t.push_str(&format!(", price {p}"));
    }
    if let Some(p) = a.stop_price {
        t.push_str(&format!(", stop {p}"));
    }
    t
}

/// One line of the audit trail: who, what, when, why, result, correlation id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    pub details: serde_json::Value,
}

impl Record {
    pub fn audit(&self, seq: u64) -> AuditEntry {
        let (action, result, reason): (String, String, Option<String>) = match &self.entry {
            Entry::OrderSubmitted { order } => ("submit_order".into(), "accepted".into(), order.justification.clone()),
            Entry::OrderRejected { code, reason, .. } => {
                ("submit_order".into(), format!("rejected:{code}"), Some(reason.clone()))
            }
            Entry::OrderInvalid { field, message, .. } => {
                ("submit_order".into(), "invalid".into(), Some(format!("{field}: {message}")))
            }
            Entry::OrderEvent { event, .. } => match event {
                OrderEvent::Accepted { .. } => ("broker_ack".into(), "new".into(), None),
                OrderEvent::Rejected { code, reason } => {
                    ("broker_reject".into(), format!("rejected:{code}"), Some(reason.clone()))
                }
                OrderEvent::Filled(f) => ("fill".into(), format!("filled {} @ {}", f.quantity, f.price), None),
                OrderEvent::CancelRequested => ("cancel_order".into(), "pending_cancel".into(), None),
                OrderEvent::Canceled { reason } => ("canceled".into(), "canceled".into(), Some(reason.clone())),
                OrderEvent::CancelRejected { reason } => {
                    ("cancel_rejected".into(), "cancel_rejected".into(), Some(reason.clone()))
                }
                OrderEvent::Expired { reason } => ("expired".into(), "expired".into(), Some(reason.clone())),
                OrderEvent::ReplaceRequested(a) => ("modify_order".into(), "pending_replace".into(), Some(terms(a))),
                OrderEvent::Replaced(a) => ("replaced".into(), "replaced".into(), Some(terms(a))),
                OrderEvent::ReplaceRejected { reason } => {
                    ("replace_rejected".into(), "replace_rejected".into(), Some(reason.clone()))
                }
            },
            Entry::ModifyRejected { code, reason, .. } => {
                ("modify_order".into(), format!("rejected:{code}"), Some(reason.clone()))
            }
            Entry::LimitsChanged { reason, .. } => ("change_limits".into(), "applied".into(), Some(reason.clone())),
            Entry::KillSwitch { active, reason, automatic, .. } => (
                if *active { "kill_switch_activate" } else { "kill_switch_release" }.into(),
                if *automatic { "automatic".into() } else { "applied".into() },
                Some(reason.clone()),
            ),
            Entry::LossWarning { .. } => {
                ("loss_warning".into(), "warned".into(), Some("daily loss at 80% of the limit".into()))
            }
            Entry::SessionStarted { .. } => ("session_start".into(), "reset".into(), None),
            Entry::Reconciled { finding, action, .. } => ("reconcile".into(), action.clone(), Some(finding.clone())),
            Entry::Alert { kind, message, .. } => ("alert".into(), kind.clone(), Some(message.clone())),
            Entry::Started { .. } => ("start".into(), "recovered".into(), None),
        };
        AuditEntry {
            seq,
            ts: self.ts,
            actor: self.actor.clone(),
            action,
            order_id: self.entry.order_id(),
            result,
            reason,
            correlation_id: self.correlation_id.clone(),
            details: serde_json::to_value(&self.entry).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_requests_are_summarised_in_about_a_kibibyte() {
        let huge = "X".repeat(500_000);
        let mut wide = serde_json::Map::new();
        for i in 0..1000 {
            wide.insert(format!("{i}{}", "k".repeat(100)), serde_json::Value::String(huge.clone()));
        }
        for v in [
            serde_json::json!({"symbol": huge, "side": "BUY", "quantity": 1, "nested": {"a": [1, 2, 3]}, "list": [huge]}),
            serde_json::Value::Object(wide),
            serde_json::Value::String(huge.clone()),
            serde_json::json!([huge, huge]),
        ] {
            let summary = request_summary(&v);
            let len = serde_json::to_string(&summary).unwrap().len();
            assert!(len <= 1100, "{len} bytes: {summary}");
        }
        let s = request_summary(&serde_json::json!({"symbol": huge, "quantity": 100, "x": {"y": 1}}));
        assert_eq!(s["quantity"], 100);
        assert_eq!(s["x"], "<object with 1 fields>");
        assert!(s["symbol"].as_str().unwrap().ends_with("…(+499960 chars)"));
        assert_eq!(truncated("short", 10), "short");
    }

    #[test]
    fn amounts_are_written_as_exact_strings_and_old_float_journals_still_replay() {
        let record = Record {
            ts: DateTime::parse_from_rfc3339("2026-12-01T13:00:00Z").unwrap().with_timezone(&Utc),
            actor: "system".into(),
            correlation_id: None,
            entry: Entry::LossWarning { daily_pnl: Money(-8_005_001), limit: Money(10_000_000) },
        };
        let json = domain::price::with_exact_strings(|| serde_json::to_string(&record)).unwrap();
        assert!(json.contains(r#""daily_pnl":"-800.5001""#), "{json}");
        assert!(json.contains(r#""limit":"1000.00""#), "{json}");
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), record);
        // The format journals were written in before: JSON numbers.
        let legacy = r#"{"ts":"2026-12-01T13:00:00Z","actor":"system","type":"loss_warning","daily_pnl":-800.5001,"limit":1000.0}"#;
        assert_eq!(serde_json::from_str::<Record>(legacy).unwrap(), record);
    }
}
