//! TP-Capital: trading signals posted in Telegram channels become stored, structured signals.
//!
//! Updates arrive by long polling (`getUpdates`) or by the webhook; both go through [`Ingestor::handle`], which
//! keeps only messages of registered, active source channels, parses their text or caption, and stores a signal
//! once per (channel, message id): a repeat is a duplicate, an edit updates the stored signal. Polling acknowledges
//! an update to Telegram (the next offset, persisted) only after it has been handled, so a crash re-reads it and
//! the idempotent store makes that harmless.

pub mod csv;
pub mod telegram;

use bus::{Bus, Event};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use storage::{Db, IngestOutcome, LogLevel, SignalRow, SignalSource, SignalType, StoreError, Stored};
use telegram::{Message, Update};

/// How a message ended up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Parsed {
        signal_id: i64,
    },
    Updated {
        signal_id: i64,
    },
    Duplicate {
        signal_id: i64,
    },
    /// Not a signal (commentary, a status update), or no text at all.
    Ignored {
        reason: String,
    },
    /// From a chat that is not a registered, active source channel.
    Unregistered {
        chat_id: String,
    },
}

impl Outcome {
    pub fn kind(&self) -> IngestOutcome {
        match self {
            Outcome::Parsed { .. } => IngestOutcome::Parsed,
            Outcome::Updated { .. } => IngestOutcome::Updated,
            Outcome::Duplicate { .. } => IngestOutcome::Duplicate,
            Outcome::Ignored { .. } => IngestOutcome::Ignored,
            Outcome::Unregistered { .. } => IngestOutcome::Unregistered,
        }
    }

    pub fn label(&self) -> &'static str {
        self.kind().as_str()
    }
}

/// Called with each new signal of a channel whose `auto_trade` is on.
pub type AutoTrade = std::sync::Arc<dyn Fn(SignalView) + Send + Sync>;

#[derive(Clone)]
pub struct Ingestor {
    db: Db,
    bus: Bus,
    auto_trade: Option<AutoTrade>,
}

pub const OFFSET_KEY: &str = "tp.telegram.offset";

/// The row a parsed signal becomes.
pub fn row(
    sig: &signal_parser::Signal,
    channel_id: &str,
    message_id: i64,
    source: SignalSource,
    ts: DateTime<Utc>,
) -> SignalRow {
    let units = |p: Option<domain::Price>| p.map(|p| p.units());
    let now = Utc::now();
    SignalRow {
        id: 0,
        channel_id: channel_id.to_string(),
        message_id,
        source,
        ts,
        ingested_at: now,
        updated_at: now,
        asset: sig.asset.clone(),
        side: match sig.side {
            signal_parser::Side::Buy => domain::order::Side::Buy,
            signal_parser::Side::Sell => domain::order::Side::Sell,
        },
        signal_type: sig.signal_type,
        buy_min: units(sig.buy_min),
        buy_max: units(sig.buy_max),
        target_1: units(sig.target_1),
        target_2: units(sig.target_2),
        target_final: units(sig.target_final),
        stop: units(sig.stop),
        targets: sig.targets.iter().map(|p| p.units()).collect(),
        raw_message: sig.raw_message.clone(),
    }
}

/// A stored signal as the API and the WebSocket show it (prices as decimal numbers).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignalView {
    pub id: i64,
    pub channel_id: String,
    pub telegram_message_id: i64,
    pub source: SignalSource,
    pub ts: DateTime<Utc>,
    pub ingested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub asset: String,
    pub side: domain::order::Side,
    pub signal_type: SignalType,
    pub buy_min: Option<domain::Price>,
    pub buy_max: Option<domain::Price>,
    pub target_1: Option<domain::Price>,
    pub target_2: Option<domain::Price>,
    pub target_final: Option<domain::Price>,
    pub stop: Option<domain::Price>,
    pub targets: Vec<domain::Price>,
    pub raw_message: String,
}

impl From<SignalRow> for SignalView {
    fn from(r: SignalRow) -> Self {
        let p = |u: Option<i64>| u.map(domain::Price::from_units);
        SignalView {
            id: r.id,
            channel_id: r.channel_id,
            telegram_message_id: r.message_id,
            source: r.source,
            ts: r.ts,
            ingested_at: r.ingested_at,
            updated_at: r.updated_at,
            asset: r.asset,
            side: r.side,
            signal_type: r.signal_type,
            buy_min: p(r.buy_min),
            buy_max: p(r.buy_max),
            target_1: p(r.target_1),
            target_2: p(r.target_2),
            target_final: p(r.target_final),
            stop: p(r.stop),
            targets: r.targets.into_iter().map(domain::Price::from_units).collect(),
            raw_message: r.raw_message,
        }
    }
}

impl Ingestor {
    pub fn new(db: Db, bus: Bus) -> Ingestor {
        Ingestor { db, bus, auto_trade: None }
    }

    /// Hands new signals of auto-trading channels to `f` (which should not block: it runs on the ingestion path).
    pub fn with_auto_trade(mut self, f: AutoTrade) -> Ingestor {
        self.auto_trade = Some(f);
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Handles one update. `Err` only when storage failed: the caller must not acknowledge the update then.
    pub async fn handle(&self, update: &Update, source: SignalSource) -> Result<Outcome, StoreError> {
        let Some((msg, edited)) = update.message() else {
            let outcome = Outcome::Ignored { reason: "an update without a message".into() };
            metrics::counter!("ts_tp_messages_total", "outcome" => outcome.label(), "channel" => "none").increment(1);
            self.db.log_ingest(LogLevel::Info, None, None, outcome.kind(), "an update without a message").await?;
            return Ok(outcome);
        };
        let chat_id = msg.chat.id.to_string();
        let outcome = self.handle_message(msg, edited, &chat_id, source).await?;
        let (level, text) = match &outcome {
            Outcome::Parsed { signal_id } => (LogLevel::Info, format!("signal {signal_id} stored")),
            Outcome::Updated { signal_id } => (LogLevel::Info, format!("signal {signal_id} updated by an edit")),
            Outcome::Duplicate { signal_id } => (LogLevel::Debug, format!("already stored as signal {signal_id}")),
            Outcome::Ignored { reason } => (LogLevel::Info, reason.clone()),
            Outcome::Unregistered { chat_id } => {
                (LogLevel::Warn, format!("chat {chat_id} is not a registered active source channel"))
            }
        };
        // Any chat can message the bot: only registered channels get a label of their own, the rest share one, so
        // strangers cannot grow the metrics without bound.
        let channel_label = match &outcome {
            Outcome::Unregistered { .. } => "unregistered".to_string(),
            _ => chat_id.clone(),
        };
        metrics::counter!("ts_tp_messages_total", "outcome" => outcome.label(), "channel" => channel_label)
            .increment(1);
        self.db.log_ingest(level, Some(&chat_id), Some(msg.message_id), outcome.kind(), &text).await?;
        tracing::info!(chat_id = %chat_id, message_id = msg.message_id, outcome = outcome.label(), source = source.as_str(), "telegram message");
        Ok(outcome)
    }

    async fn handle_message(
        &self,
        msg: &Message,
        edited: bool,
        chat_id: &str,
        source: SignalSource,
    ) -> Result<Outcome, StoreError> {
        let channel = self.db.channel_by_telegram_id(chat_id).await?;
        let Some(channel) =
            channel.filter(|c| c.status == storage::Activity::Active && c.channel_type == storage::ChannelType::Source)
        else {
            return Ok(Outcome::Unregistered { chat_id: chat_id.to_string() });
        };
        let Some(text) = msg.text.as_deref().or(msg.caption.as_deref()) else {
            return Ok(Outcome::Ignored { reason: "no text or caption".into() });
        };
        // Telegram's text is stored as it came, but for NUL, which no backend stores alike (PostgreSQL refuses it):
        // a channel's message must not be lost, nor stall the updates behind it, for one invisible character.
        let cleaned;
        let text = if text.contains('\0') {
            cleaned = text.replace('\0', "");
            cleaned.as_str()
        } else {
            text
        };
        let started = std::time::Instant::now();
        let parsed = signal_parser::parse(text);
        metrics::histogram!("ts_signal_parse_seconds").record(started.elapsed().as_secs_f64());
        let Some(sig) = parsed else {
            let what = if edited { "an edit that is not a signal" } else { "not a signal" };
            return Ok(Outcome::Ignored { reason: what.into() });
        };
        let ts = Utc.timestamp_opt(msg.date, 0).single().unwrap_or_else(Utc::now);
        let lag = (Utc::now() - ts).num_milliseconds().max(0) as f64 / 1e3;
        metrics::histogram!("ts_tp_ingest_lag_seconds", "source" => source.to_string()).record(lag);
        let stored = self.db.store_signal(&row(&sig, chat_id, msg.message_id, source, ts)).await?;
        let outcome = match stored {
            Stored::Inserted(id) => Outcome::Parsed { signal_id: id },
            Stored::Updated(id) => Outcome::Updated { signal_id: id },
            Stored::Duplicate(id) => Outcome::Duplicate { signal_id: id },
        };
        if let Outcome::Parsed { signal_id } | Outcome::Updated { signal_id } = outcome {
            if let Some(s) = self.db.signal(signal_id).await? {
                let view = SignalView::from(s);
                let data = serde_json::to_value(&view).unwrap_or_default();
                self.bus.publish(bus::subjects::SIGNALS, Event::Signal { data });
                // Only a new signal trades: an edit of one already traded must not open a second position.
                if let (Outcome::Parsed { .. }, true, Some(f)) = (&outcome, channel.auto_trade, &self.auto_trade) {
                    f(view);
                }
            }
        }
        Ok(outcome)
    }
}

/// What a retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    pub exported: usize,
    pub export_file: Option<std::path::PathBuf>,
    pub removed_live: u64,
    pub removed_archived: u64,
    pub removed_log_lines: u64,
}

/// Signals older than `keep_days` are exported to `archive/tp-capital/signals-until-<date>.csv` (written to a
/// temporary file, synced and renamed, so a crash leaves no half file) and then exactly the exported rows are
/// removed (a signal stored or edited meanwhile stays for the next run); deleted signals leave the archive table
/// after `archive_days`, ingestion-log lines after `keep_days`.
pub async fn apply_retention(
    db: &Db,
    data_dir: &std::path::Path,
    now: DateTime<Utc>,
    keep_days: i64,
    archive_days: i64,
) -> Result<Retention, RetentionError> {
    let cutoff = now - chrono::Duration::days(keep_days);
    let old = db.signals_before(cutoff).await?;
    let mut out = Retention { exported: old.len(), ..Default::default() };
    if !old.is_empty() {
        let dir = data_dir.join("archive").join("tp-capital");
        let name = format!("signals-until-{}-{}.csv", cutoff.format("%Y-%m-%d"), now.timestamp());
        let text = csv::export(&old);
        // File work on the blocking pool, not on an async worker.
        let path = tokio::task::spawn_blocking(move || write_synced(&dir, &name, text.as_bytes()))
            .await
            .map_err(|e| RetentionError::Io(std::io::Error::other(e.to_string())))??;
        out.export_file = Some(path);
        out.removed_live = db.purge_exported_signals(&old).await?;
    }
    let (archived, log) = db.purge_signal_archive_and_log(now - chrono::Duration::days(archive_days), cutoff).await?;
    out.removed_archived = archived;
    out.removed_log_lines = log;
    Ok(out)
}

/// Writes `dir/name` whole or not at all: a temporary file, synced, renamed.
fn write_synced(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("export file: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh SQLite store and one parsed signal to store in it.
    async fn store() -> (tempfile::TempDir, Db, signal_parser::Signal) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
        db.migrate().await.unwrap();
        let sig = signal_parser::parse("Ativo: PETR4\nCompra: 38,50\nStop: 37,90").unwrap();
        (dir, db, sig)
    }

    #[tokio::test]
    async fn old_signals_are_exported_before_they_are_removed() {
        let (dir, db, sig) = store().await;
        let now = Utc::now();
        db.store_signal(&row(&sig, "-1", 1, SignalSource::Api, now - chrono::Duration::days(31))).await.unwrap();
        db.store_signal(&row(&sig, "-1", 2, SignalSource::Api, now - chrono::Duration::days(1))).await.unwrap();
        let r = apply_retention(&db, dir.path(), now, 30, 90).await.unwrap();
        assert_eq!((r.exported, r.removed_live), (1, 1));
        let text = std::fs::read_to_string(r.export_file.unwrap()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().nth(1).unwrap().contains(";PETR4;38,50;38,50;;;;37,90"));
        assert_eq!(db.list_signals(&storage::SignalFilter { limit: 10, ..Default::default() }).await.unwrap().1, 1);
        // Nothing old any more: nothing exported, no empty file.
        let again = apply_retention(&db, dir.path(), now, 30, 90).await.unwrap();
        assert_eq!((again.exported, again.export_file), (0, None));
    }

    /// A signal stored between the export's read and the removal is neither lost nor removed: the removal takes
    /// exactly the rows exported.
    #[tokio::test]
    async fn a_signal_stored_during_retention_is_kept_for_the_next_run() {
        let (dir, db, sig) = store().await;
        let now = Utc::now();
        db.store_signal(&row(&sig, "-1", 1, SignalSource::Api, now - chrono::Duration::days(31))).await.unwrap();
        let exported = db.signals_before(now - chrono::Duration::days(30)).await.unwrap();
        // Between the read and the removal, an old-dated signal arrives (a late edit or a backfill).
        db.store_signal(&row(&sig, "-1", 2, SignalSource::Api, now - chrono::Duration::days(40))).await.unwrap();
        assert_eq!(db.purge_exported_signals(&exported).await.unwrap(), 1);
        let r = apply_retention(&db, dir.path(), now, 30, 90).await.unwrap();
        assert_eq!((r.exported, r.removed_live), (1, 1), "the late one is exported, then removed");
        let text = std::fs::read_to_string(r.export_file.unwrap()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
