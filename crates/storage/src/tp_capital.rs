//! TP-Capital's tables: channels, bots, signals (idempotent on channel + Telegram message id), the deleted
//! archive and the ingestion log. Prices are stored as integer 1/10,000 units, like everywhere else.

use crate::kinds::{get_enum, Activity, BotType, ChannelType, IngestOutcome, LogLevel, SignalSource};
use crate::{fmt_ts, get_bool, like_pattern, opt_ts, ts, unique, updated_one, Db, Filters, StoreError};
use chrono::{DateTime, Utc};
use signal_parser::SignalType;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: String,
    pub label: String,
    pub channel_id: String,
    pub channel_type: ChannelType,
    pub description: String,
    pub status: Activity,
    /// Orders from this channel's signals (off by default).
    pub auto_trade: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bot {
    pub id: String,
    pub username: String,
    /// `sha256:<hex>` of the token: a registered bot's token is never stored (see [`BotToken`]).
    pub token_sha256: String,
    /// The bot id and the last four characters: `123456789:…Dsaw`.
    pub token_hint: String,
    pub bot_type: BotType,
    pub description: String,
    pub status: Activity,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What is kept of a bot token: its SHA-256 (enough to tell whether a token given later is this bot's) and a
/// hint a person recognises. The token itself would be a credential sitting in the database and its backups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotToken {
    pub sha256: String,
    pub hint: String,
}

impl BotToken {
    pub fn new(token: &str) -> BotToken {
        use sha2::Digest;
        let token = token.trim();
        BotToken {
            sha256: format!("sha256:{}", hex::encode(sha2::Sha256::digest(token.as_bytes()))),
            hint: token_hint(token),
        }
    }
}

/// `123456:ABC…wxyz` → `123456:…wxyz`; nothing of a secret part of eight characters or fewer.
pub fn token_hint(token: &str) -> String {
    let (id, secret) = token.split_once(':').unwrap_or(("", token));
    if secret.chars().count() <= 8 {
        return format!("{id}:…");
    }
    let tail: String = secret.chars().skip(secret.chars().count() - 4).collect();
    format!("{id}:…{tail}")
}

/// A parsed signal as stored. Prices in 1/10,000 units.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalRow {
    pub id: i64,
    pub channel_id: String,
    pub message_id: i64,
    pub source: SignalSource,
    pub ts: DateTime<Utc>,
    pub ingested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub asset: String,
    pub side: domain::order::Side,
    pub signal_type: SignalType,
    pub buy_min: Option<i64>,
    pub buy_max: Option<i64>,
    pub target_1: Option<i64>,
    pub target_2: Option<i64>,
    pub target_final: Option<i64>,
    pub stop: Option<i64>,
    pub targets: Vec<i64>,
    pub raw_message: String,
}

#[derive(Debug, Clone, Default)]
pub struct SignalFilter {
    pub channel_id: Option<String>,
    pub asset: Option<String>,
    pub signal_type: Option<SignalType>,
    /// Case-insensitive substring of the message.
    pub search: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub id: i64,
    pub ts: DateTime<Utc>,
    pub level: LogLevel,
    pub channel_id: Option<String>,
    pub message_id: Option<i64>,
    pub outcome: IngestOutcome,
    pub message: String,
}

/// What storing a signal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Inserted(i64),
    /// An edit of a message already stored: its signal now says what the edit says.
    Updated(i64),
    /// The same message again, unchanged.
    Duplicate(i64),
}

const SIGNAL_COLUMNS: &str =
    "id, channel_id, message_id, source, ts, ingested_at, updated_at, asset, side, signal_type, \
     buy_min, buy_max, target_1, target_2, target_final, stop, targets, raw_message";

fn signal_from_row(r: &AnyRow) -> Result<SignalRow, sqlx::Error> {
    let targets: String = r.try_get("targets")?;
    Ok(SignalRow {
        id: r.try_get("id")?,
        channel_id: r.try_get("channel_id")?,
        message_id: r.try_get("message_id")?,
        source: get_enum(r, "source", SignalSource::parse)?,
        ts: ts(r, "ts")?,
        ingested_at: ts(r, "ingested_at")?,
        updated_at: ts(r, "updated_at")?,
        asset: r.try_get("asset")?,
        side: get_enum(r, "side", crate::kinds::parse_side)?,
        signal_type: get_enum(r, "signal_type", SignalType::parse)?,
        buy_min: r.try_get("buy_min")?,
        buy_max: r.try_get("buy_max")?,
        target_1: r.try_get("target_1")?,
        target_2: r.try_get("target_2")?,
        target_final: r.try_get("target_final")?,
        stop: r.try_get("stop")?,
        targets: targets
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.parse().map_err(|_| crate::kinds::bad_value("targets", format!("{t:?} is not a price"))))
            .collect::<Result<_, _>>()?,
        raw_message: r.try_get("raw_message")?,
    })
}

fn channel_from_row(r: &AnyRow) -> Result<Channel, sqlx::Error> {
    Ok(Channel {
        id: r.try_get("id")?,
        label: r.try_get("label")?,
        channel_id: r.try_get("channel_id")?,
        channel_type: get_enum(r, "channel_type", ChannelType::parse)?,
        description: r.try_get("description")?,
        status: get_enum(r, "status", Activity::parse)?,
        auto_trade: get_bool(r, "auto_trade")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn bot_from_row(r: &AnyRow) -> Result<Bot, sqlx::Error> {
    Ok(Bot {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        token_sha256: r.try_get("token")?,
        token_hint: r.try_get("token_hint")?,
        bot_type: get_enum(r, "bot_type", BotType::parse)?,
        description: r.try_get("description")?,
        status: get_enum(r, "status", Activity::parse)?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn targets_text(t: &[i64]) -> String {
    t.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

impl Db {
    // ---- channels ----

    pub async fn create_channel(&self, c: &Channel) -> Result<Channel, StoreError> {
        let res = sqlx::query(
            "INSERT INTO tp_channels (id, label, channel_id, channel_type, description, status, created_at, updated_at, \
             auto_trade) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.id)
        .bind(&c.label)
        .bind(&c.channel_id)
        .bind(c.channel_type.as_str())
        .bind(&c.description)
        .bind(c.status.as_str())
        .bind(fmt_ts(&c.created_at))
        .bind(fmt_ts(&c.updated_at))
        .bind(c.auto_trade)
        .execute(self.pool())
        .await;
        unique(res, || format!("channel {}", c.channel_id)).map(|_| c.clone())
    }

    pub async fn update_channel(&self, c: &Channel) -> Result<Channel, StoreError> {
        let res = sqlx::query(
            "UPDATE tp_channels SET label = $1, channel_id = $2, channel_type = $3, description = $4, status = $5, \
             updated_at = $6, auto_trade = $7 WHERE id = $8",
        )
        .bind(&c.label)
        .bind(&c.channel_id)
        .bind(c.channel_type.as_str())
        .bind(&c.description)
        .bind(c.status.as_str())
        .bind(fmt_ts(&c.updated_at))
        .bind(c.auto_trade)
        .bind(&c.id)
        .execute(self.pool())
        .await;
        updated_one(res, || format!("channel {}", c.id), || format!("channel {}", c.channel_id))?;
        Ok(c.clone())
    }

    pub async fn delete_channel(&self, id: &str) -> Result<(), StoreError> {
        self.delete_by_id("tp_channels", id, "channel").await
    }

    pub async fn channel(&self, id: &str) -> Result<Option<Channel>, StoreError> {
        let row = sqlx::query("SELECT * FROM tp_channels WHERE id = $1").bind(id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(channel_from_row).transpose()?)
    }

    pub async fn channel_by_telegram_id(&self, channel_id: &str) -> Result<Option<Channel>, StoreError> {
        let row = sqlx::query("SELECT * FROM tp_channels WHERE channel_id = $1")
            .bind(channel_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(channel_from_row).transpose()?)
    }

    pub async fn list_channels(&self) -> Result<Vec<Channel>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tp_channels ORDER BY label").fetch_all(self.pool()).await?;
        Ok(rows.iter().map(channel_from_row).collect::<Result<_, _>>()?)
    }

    /// Signals per channel and the time of the newest one.
    pub async fn channel_stats(&self) -> Result<Vec<(String, i64, Option<DateTime<Utc>>)>, StoreError> {
        let rows = sqlx::query("SELECT channel_id, COUNT(*) AS n, MAX(ts) AS last FROM tp_signals GROUP BY channel_id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("channel_id")?, r.try_get::<i64, _>("n")?, opt_ts(r, "last")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    // ---- bots ----

    pub async fn create_bot(&self, b: &Bot) -> Result<Bot, StoreError> {
        let res = sqlx::query(
            "INSERT INTO tp_bots (id, username, token, token_hint, bot_type, description, status, created_at, \
             updated_at) VALUES ($1, $2, $3, $9, $4, $5, $6, $7, $8)",
        )
        .bind(&b.id)
        .bind(&b.username)
        .bind(&b.token_sha256)
        .bind(b.bot_type.as_str())
        .bind(&b.description)
        .bind(b.status.as_str())
        .bind(fmt_ts(&b.created_at))
        .bind(fmt_ts(&b.updated_at))
        .bind(&b.token_hint)
        .execute(self.pool())
        .await;
        unique(res, || format!("bot {}", b.username)).map(|_| b.clone())
    }

    pub async fn update_bot(&self, b: &Bot) -> Result<Bot, StoreError> {
        let res = sqlx::query(
            "UPDATE tp_bots SET username = $1, token = $2, bot_type = $3, description = $4, status = $5, \
             updated_at = $6, token_hint = $8 WHERE id = $7",
        )
        .bind(&b.username)
        .bind(&b.token_sha256)
        .bind(b.bot_type.as_str())
        .bind(&b.description)
        .bind(b.status.as_str())
        .bind(fmt_ts(&b.updated_at))
        .bind(&b.id)
        .bind(&b.token_hint)
        .execute(self.pool())
        .await;
        updated_one(res, || format!("bot {}", b.id), || format!("bot {}", b.username))?;
        Ok(b.clone())
    }

    pub async fn delete_bot(&self, id: &str) -> Result<(), StoreError> {
        self.delete_by_id("tp_bots", id, "bot").await
    }

    pub async fn bot(&self, id: &str) -> Result<Option<Bot>, StoreError> {
        let row = sqlx::query("SELECT * FROM tp_bots WHERE id = $1").bind(id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(bot_from_row).transpose()?)
    }

    /// Rewrites any bot token stored in plaintext (by a version before tokens were fingerprinted) as its
    /// fingerprint. Idempotent; [`Db::migrate`] runs it.
    pub(crate) async fn fingerprint_bot_tokens(&self) -> Result<u64, StoreError> {
        let rows =
            sqlx::query("SELECT id, token FROM tp_bots WHERE token NOT LIKE 'sha256:%'").fetch_all(self.pool()).await?;
        for r in &rows {
            let id: String = r.try_get("id")?;
            let t = BotToken::new(&r.try_get::<String, _>("token")?);
            sqlx::query("UPDATE tp_bots SET token = $1, token_hint = $2 WHERE id = $3")
                .bind(t.sha256)
                .bind(t.hint)
                .bind(&id)
                .execute(self.pool())
                .await?;
        }
        Ok(rows.len() as u64)
    }

    pub async fn list_bots(&self) -> Result<Vec<Bot>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tp_bots ORDER BY username").fetch_all(self.pool()).await?;
        Ok(rows.iter().map(bot_from_row).collect::<Result<_, _>>()?)
    }

    // ---- signals ----

    /// Stores a signal once per (channel, message id). A repeat with the same content is a duplicate; an edit
    /// (different text) replaces the stored signal's fields and keeps its id.
    pub async fn store_signal(&self, s: &SignalRow) -> Result<Stored, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO tp_signals (channel_id, message_id, source, ts, ingested_at, updated_at, asset, side, \
             signal_type, buy_min, buy_max, target_1, target_2, target_final, stop, targets, raw_message) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (channel_id, message_id) DO NOTHING RETURNING id",
        )
        .bind(&s.channel_id)
        .bind(s.message_id)
        .bind(s.source.as_str())
        .bind(fmt_ts(&s.ts))
        .bind(fmt_ts(&s.ingested_at))
        .bind(fmt_ts(&s.updated_at))
        .bind(&s.asset)
        .bind(crate::kinds::side_str(s.side))
        .bind(s.signal_type.as_str())
        .bind(s.buy_min)
        .bind(s.buy_max)
        .bind(s.target_1)
        .bind(s.target_2)
        .bind(s.target_final)
        .bind(s.stop)
        .bind(targets_text(&s.targets))
        .bind(&s.raw_message)
        .fetch_optional(self.pool())
        .await?;
        if let Some(r) = inserted {
            return Ok(Stored::Inserted(r.try_get::<i64, _>(0)?));
        }
        let existing = self
            .signal_by_message(&s.channel_id, s.message_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("signal for message {}", s.message_id)))?;
        if existing.raw_message == s.raw_message {
            return Ok(Stored::Duplicate(existing.id));
        }
        sqlx::query(
            "UPDATE tp_signals SET updated_at = $1, asset = $2, side = $3, signal_type = $4, buy_min = $5, \
             buy_max = $6, target_1 = $7, target_2 = $8, target_final = $9, stop = $10, targets = $11, \
             raw_message = $12 WHERE id = $13",
        )
        .bind(fmt_ts(&s.updated_at))
        .bind(&s.asset)
        .bind(crate::kinds::side_str(s.side))
        .bind(s.signal_type.as_str())
        .bind(s.buy_min)
        .bind(s.buy_max)
        .bind(s.target_1)
        .bind(s.target_2)
        .bind(s.target_final)
        .bind(s.stop)
        .bind(targets_text(&s.targets))
        .bind(&s.raw_message)
        .bind(existing.id)
        .execute(self.pool())
        .await?;
        Ok(Stored::Updated(existing.id))
    }

    pub async fn signal_by_message(&self, channel_id: &str, message_id: i64) -> Result<Option<SignalRow>, StoreError> {
        let row =
            sqlx::query(&format!("SELECT {SIGNAL_COLUMNS} FROM tp_signals WHERE channel_id = $1 AND message_id = $2"))
                .bind(channel_id)
                .bind(message_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.as_ref().map(signal_from_row).transpose()?)
    }

    pub async fn signal(&self, id: i64) -> Result<Option<SignalRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {SIGNAL_COLUMNS} FROM tp_signals WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(signal_from_row).transpose()?)
    }

    /// A page of signals, newest first, and the total matching the filter.
    pub async fn list_signals(&self, f: &SignalFilter) -> Result<(Vec<SignalRow>, i64), StoreError> {
        let mut w = Filters::default();
        if let Some(c) = &f.channel_id {
            w.push("channel_id = ?", c.clone());
        }
        if let Some(a) = &f.asset {
            w.push("asset = ?", a.to_ascii_uppercase());
        }
        if let Some(t) = f.signal_type {
            w.push("signal_type = ?", t.as_str().to_string());
        }
        if let Some(q) = &f.search {
            w.push("LOWER(raw_message) LIKE ? ESCAPE '\\'", like_pattern(q));
        }
        if let Some(from) = f.from {
            w.push("ts >= ?", fmt_ts(&from));
        }
        if let Some(to) = f.to {
            w.push("ts <= ?", fmt_ts(&to));
        }
        let (rows, total) =
            w.page(self, (SIGNAL_COLUMNS, "tp_signals", "ts DESC, id DESC"), (f.limit, f.offset)).await?;
        Ok((rows.iter().map(signal_from_row).collect::<Result<_, _>>()?, total))
    }

    /// Moves a signal to the deleted archive (in one transaction).
    pub async fn delete_signal(&self, id: i64, by: &str) -> Result<SignalRow, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(&format!("SELECT {SIGNAL_COLUMNS} FROM tp_signals WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let s = row
            .as_ref()
            .map(signal_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("signal {id}")))?;
        sqlx::query(&format!(
            "INSERT INTO tp_signals_deleted ({SIGNAL_COLUMNS}, deleted_at, deleted_by) SELECT {SIGNAL_COLUMNS}, $1, $2 \
             FROM tp_signals WHERE id = $3"
        ))
        .bind(fmt_ts(&Utc::now()))
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM tp_signals WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Signals older than `before` (for export before removal).
    pub async fn signals_before(&self, before: DateTime<Utc>) -> Result<Vec<SignalRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {SIGNAL_COLUMNS} FROM tp_signals WHERE ts < $1 ORDER BY ts"))
            .bind(fmt_ts(&before))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(signal_from_row).collect::<Result<_, _>>()?)
    }

    /// Removes exactly these live signals, each only if it is unchanged since it was read (an edit in between
    /// keeps it for the next run), in one transaction. Returns how many were removed. Whatever was not in
    /// `exported` stays, so a signal stored after the export was read is never removed unarchived.
    pub async fn purge_exported_signals(&self, exported: &[SignalRow]) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut removed = 0;
        for r in exported {
            let res = sqlx::query("DELETE FROM tp_signals WHERE id = $1 AND updated_at = $2")
                .bind(r.id)
                .bind(fmt_ts(&r.updated_at))
                .execute(&mut *tx)
                .await?;
            removed += res.rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Removes archived (deleted) signals deleted before `archive_before` and ingestion-log lines older than
    /// `log_before`. Returns (archived, log lines) removed.
    pub async fn purge_signal_archive_and_log(
        &self,
        archive_before: DateTime<Utc>,
        log_before: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let archived = sqlx::query("DELETE FROM tp_signals_deleted WHERE deleted_at < $1")
            .bind(fmt_ts(&archive_before))
            .execute(self.pool())
            .await?;
        let log = sqlx::query("DELETE FROM tp_ingest_log WHERE ts < $1")
            .bind(fmt_ts(&log_before))
            .execute(self.pool())
            .await?;
        Ok((archived.rows_affected(), log.rows_affected()))
    }

    // ---- ingestion log ----

    /// Stores one line of the ingestion log, which any viewer reads: known secrets are masked first.
    pub async fn log_ingest(
        &self,
        level: LogLevel,
        channel_id: Option<&str>,
        message_id: Option<i64>,
        outcome: IngestOutcome,
        message: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tp_ingest_log (ts, level, channel_id, message_id, outcome, message) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(fmt_ts(&Utc::now()))
        .bind(level.as_str())
        .bind(channel_id)
        .bind(message_id)
        .bind(outcome.as_str())
        .bind(redact::redact(message).as_ref())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The newest `limit` entries, newest first; `level` filters when given.
    pub async fn ingest_log(&self, level: Option<LogLevel>, limit: i64) -> Result<Vec<LogEntry>, StoreError> {
        let rows = match level {
            Some(l) => {
                sqlx::query("SELECT * FROM tp_ingest_log WHERE level = $1 ORDER BY id DESC LIMIT $2")
                    .bind(l.as_str())
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM tp_ingest_log ORDER BY id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(LogEntry {
                    id: r.try_get("id")?,
                    ts: ts(r, "ts")?,
                    level: get_enum(r, "level", LogLevel::parse)?,
                    channel_id: r.try_get("channel_id")?,
                    message_id: r.try_get("message_id")?,
                    outcome: get_enum(r, "outcome", IngestOutcome::parse)?,
                    message: r.try_get("message")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BotToken;

    /// TP-Capital's tables (channels, bots, signals, the archive, the log), on SQLite and PostgreSQL.
    #[tokio::test]
    async fn tp_capital_on_every_backend() {
        crate::on_every_backend(async |db: &Db| {
            let now = Utc::now();
            let ch = Channel {
                id: "c1".into(),
                label: "TP".into(),
                channel_id: "-1001".into(),
                channel_type: ChannelType::Source,
                description: String::new(),
                status: Activity::Active,
                auto_trade: false,
                created_at: now,
                updated_at: now,
            };
            db.create_channel(&ch).await.unwrap();
            db.update_channel(&Channel { auto_trade: true, ..ch.clone() }).await.unwrap();
            assert!(db.channel("c1").await.unwrap().unwrap().auto_trade);
            assert!(matches!(
                db.create_channel(&Channel { id: "c2".into(), ..ch.clone() }).await,
                Err(StoreError::Conflict(_))
            ));
            assert_eq!(db.channel_by_telegram_id("-1001").await.unwrap().unwrap().id, "c1");

            let row = |msg: i64, asset: &str, text: &str, ts: DateTime<Utc>| SignalRow {
                id: 0,
                channel_id: "-1001".into(),
                message_id: msg,
                source: SignalSource::TelegramWebhook,
                ts,
                ingested_at: now,
                updated_at: now,
                asset: asset.into(),
                side: domain::order::Side::Buy,
                signal_type: SignalType::Swing,
                buy_min: Some(10_400),
                buy_max: Some(10_600),
                target_1: None,
                target_2: None,
                target_final: Some(35_000),
                stop: Some(7_000),
                targets: vec![35_000],
                raw_message: text.into(),
            };
            let a = db.store_signal(&row(1, "BOVAW32", "Compra 1,04 100% off_", now)).await.unwrap();
            let Stored::Inserted(id) = a else { panic!("{a:?}") };
            assert_eq!(
                db.store_signal(&row(1, "BOVAW32", "Compra 1,04 100% off_", now)).await.unwrap(),
                Stored::Duplicate(id)
            );
            assert_eq!(db.store_signal(&row(1, "BOVAW32", "edited", now)).await.unwrap(), Stored::Updated(id));
            let old = now - chrono::Duration::days(40);
            db.store_signal(&row(2, "PETR4", "Compra 38,50", old)).await.unwrap();
            let got = db.signal(id).await.unwrap().unwrap();
            assert_eq!(
                (got.raw_message.as_str(), got.targets.as_slice(), got.buy_min),
                ("edited", &[35_000][..], Some(10_400))
            );

            let all = SignalFilter { limit: 10, ..Default::default() };
            let (rows, total) = db.list_signals(&all).await.unwrap();
            assert_eq!((rows.len(), total, rows[0].asset.as_str()), (2, 2, "BOVAW32"), "newest first");
            let f = SignalFilter { signal_type: Some(SignalType::Swing), ..all.clone() };
            assert_eq!(db.list_signals(&f).await.unwrap().1, 2);
            let f = SignalFilter { signal_type: Some(SignalType::Day), ..all.clone() };
            assert_eq!(db.list_signals(&f).await.unwrap().1, 0);
            let f = SignalFilter { search: Some("COMPRA 38".into()), ..all.clone() };
            assert_eq!(db.list_signals(&f).await.unwrap().1, 1);
            // LIKE wildcards in the search are literal.
            let f = SignalFilter { search: Some("%".into()), ..all.clone() };
            assert_eq!(db.list_signals(&f).await.unwrap().1, 0);
            let f = SignalFilter { from: Some(now - chrono::Duration::days(1)), ..all.clone() };
            assert_eq!(db.list_signals(&f).await.unwrap().1, 1);
            let f = SignalFilter { limit: 1, offset: 1, ..all.clone() };
            let (page, total) = db.list_signals(&f).await.unwrap();
            assert_eq!((page.len(), total, page[0].asset.as_str()), (1, 2, "PETR4"));
            assert_eq!(db.channel_stats().await.unwrap()[0].1, 2);

            let deleted = db.delete_signal(id, "alice").await.unwrap();
            assert_eq!(deleted.asset, "BOVAW32");
            assert!(db.signal(id).await.unwrap().is_none());
            assert!(matches!(db.delete_signal(id, "alice").await, Err(StoreError::NotFound(_))));
            let old = db.signals_before(now - chrono::Duration::days(30)).await.unwrap();
            assert_eq!(old.len(), 1);
            // Only what was exported, and only if unchanged since: an edited row waits for the next run.
            let mut edited = old.clone();
            edited[0].updated_at -= chrono::Duration::seconds(1);
            assert_eq!(db.purge_exported_signals(&edited).await.unwrap(), 0);
            assert_eq!(db.purge_exported_signals(&old).await.unwrap(), 1);

            db.log_ingest(LogLevel::Warn, Some("-1001"), Some(3), IngestOutcome::Unregistered, "x").await.unwrap();
            db.log_ingest(LogLevel::Info, None, None, IngestOutcome::Ignored, "y").await.unwrap();
            assert_eq!(db.ingest_log(None, 10).await.unwrap()[0].outcome, IngestOutcome::Ignored);
            assert_eq!(db.ingest_log(Some(LogLevel::Warn), 10).await.unwrap().len(), 1);
            // A level this version does not know is an error naming the column, not a string passed along.
            sqlx::query("UPDATE tp_ingest_log SET level = 'loud'").execute(db.pool()).await.unwrap();
            let err = db.ingest_log(None, 10).await.unwrap_err().to_string();
            assert!(err.contains("level"), "{err}");
            let later = now + chrono::Duration::days(1);
            assert_eq!(db.purge_signal_archive_and_log(later, now - chrono::Duration::days(1)).await.unwrap(), (1, 0));
            assert_eq!(db.purge_signal_archive_and_log(later, later).await.unwrap(), (0, 2));

            // A bot token stored in plaintext by an older version is replaced by its fingerprint at the next migrate.
            sqlx::query(
                "INSERT INTO tp_bots (id, username, token, bot_type, status, created_at, updated_at) \
                 VALUES ('b1', 'old_bot', '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw', 'ingestion', 'active', \
                 '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00')",
            )
            .execute(db.pool())
            .await
            .unwrap();
            db.migrate().await.unwrap();
            let bot = db.bot("b1").await.unwrap().unwrap();
            assert_eq!(bot.token_sha256, BotToken::new("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw").sha256);
            assert_eq!(bot.token_hint, "123456789:…Dsaw");
            db.delete_bot("b1").await.unwrap();

            // The schema keeps a status outside the enum's set out of the table in the first place.
            let refused =
                sqlx::query("UPDATE tp_channels SET status = 'paused' WHERE id = 'c1'").execute(db.pool()).await;
            assert!(refused.is_err());
            assert_eq!(db.channel("c1").await.unwrap().unwrap().status, crate::Activity::Active);
        })
        .await;
    }
}
