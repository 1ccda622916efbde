//! SQL storage through sqlx: SQLite by default, PostgreSQL when the URL says `postgres://`.
//!
//! One code path serves both (sqlx's `Any` driver); only the migrations differ in dialect, and they live in
//! `migrations/sqlite` and `migrations/postgres`. Timestamps are RFC 3339 text so both backends store the same
//! thing. The Order Manager's orders are not here: the journal is their source of truth.

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::time::Duration;

// One module per domain, each adding its methods to `Db`.
pub mod accounts;
pub mod ideas;
pub mod kinds;
pub mod settings;
pub mod systems;
pub mod tp_capital;
pub mod trading;
pub use accounts::{ApiKey, User};
pub use ideas::{Category, IdeaAudit, IdeaFilter, IdeaRow, IdeaStats};
pub use kinds::{
    Activity, BotType, ChannelType, IdeaAction, IngestOutcome, LogLevel, ModelDecision, Role, SignalAction,
    SignalSource, SystemStatus, SystemType,
};
pub use signal_parser::SignalType;
pub use systems::SystemRow;
pub use tp_capital::{token_hint, Bot, BotToken, Channel, LogEntry, SignalFilter, SignalRow, Stored};
pub use trading::ModelSignal;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// The database refused a value itself (PostgreSQL's class 22, "data exception": a NUL in text, a number out
    /// of range, a string too long), as opposed to being unreachable or broken: the caller sent bad input.
    pub fn is_bad_input(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => e.code().is_some_and(|c| c.starts_with("22")),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// How every timestamp is stored: RFC 3339 text (the `Any` driver has no date type on both backends), in UTC with
/// nine fraction digits, so that text order is time order for `ORDER BY` and range filters.
pub(crate) fn fmt_ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, false)
}

/// A stored timestamp. Text that is not RFC 3339 is an error naming its column, never a made-up time.
pub(crate) fn ts(r: &AnyRow, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    let text: String = r.try_get(col)?;
    parse_ts(col, &text)
}

pub(crate) fn opt_ts(r: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    r.try_get::<Option<String>, _>(col)?.map(|text| parse_ts(col, &text)).transpose()
}

fn parse_ts(col: &str, text: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: format!("stored value {:?} is not an RFC 3339 time: {e}", text.chars().take(40).collect::<String>())
            .into(),
    })
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// A write where a unique key may already exist: that case is a `Conflict` naming `what`.
pub(crate) fn unique<T>(res: Result<T, sqlx::Error>, what: impl FnOnce() -> String) -> Result<T, StoreError> {
    match res {
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(what())),
        other => other.map_err(Into::into),
    }
}

/// An update of one row by id: no such row is `NotFound` (naming `missing`), a taken unique key is `Conflict`.
pub(crate) fn updated_one(
    res: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    missing: impl FnOnce() -> String,
    taken: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    if unique(res, taken)?.rows_affected() == 0 {
        return Err(StoreError::NotFound(missing()));
    }
    Ok(())
}

/// Booleans come back as bool from PostgreSQL and as integers from SQLite.
pub(crate) fn get_bool(r: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    r.try_get::<bool, _>(col).or_else(|_| r.try_get::<i64, _>(col).map(|v| v != 0))
}

/// A `LIKE ... ESCAPE '\'` pattern matching `s` literally anywhere, lower-cased.
pub(crate) fn like_pattern(s: &str) -> String {
    format!("%{}%", s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// `WHERE` clauses with numbered placeholders, built up one filter at a time.
#[derive(Default)]
pub(crate) struct Filters {
    clauses: Vec<String>,
    pub(crate) args: Vec<String>,
}

impl Filters {
    /// `clause` holds one `?`, replaced by the next placeholder number.
    pub(crate) fn push(&mut self, clause: &str, value: String) {
        self.args.push(value);
        self.clauses.push(clause.replace('?', &format!("${}", self.args.len())));
    }

    /// One page of `SELECT columns FROM table` under these filters, in `order`, and the total matching.
    pub(crate) async fn page(
        self,
        db: &Db,
        (columns, table, order): (&str, &str, &str),
        (limit, offset): (i64, i64),
    ) -> Result<(Vec<AnyRow>, i64), StoreError> {
        let filter = self.where_sql();
        let count_sql = format!("SELECT COUNT(*) FROM {table}{filter}");
        let mut count = sqlx::query(&count_sql);
        for a in &self.args {
            count = count.bind(a);
        }
        let total: i64 = count.fetch_one(db.pool()).await?.try_get(0)?;
        let n = self.args.len();
        let page_sql =
            format!("SELECT {columns} FROM {table}{filter} ORDER BY {order} LIMIT ${} OFFSET ${}", n + 1, n + 2);
        let mut page = sqlx::query(&page_sql);
        for a in &self.args {
            page = page.bind(a);
        }
        let rows = page.bind(limit).bind(offset).fetch_all(db.pool()).await?;
        Ok((rows, total))
    }

    pub(crate) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

impl Db {
    /// Connects (creating a SQLite file if needed). Does not migrate: call [`Db::migrate`].
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let mut u = format!("sqlite:{rest}");
            if !rest.contains("mode=") && !rest.contains(":memory:") {
                u.push_str(if rest.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
            }
            (Backend::Sqlite, u)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let max = if backend == Backend::Sqlite { 4 } else { 10 };
        let pool =
            AnyPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(5)).connect(&url).await?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while a writer commits; the setting is persistent in the file.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        }
        Ok(Db { pool, backend })
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Deletes the row of `table` whose `id` is `id`; none is `NotFound(what id)`.
    pub(crate) async fn delete_by_id(&self, table: &str, id: &str, what: &str) -> Result<(), StoreError> {
        let r = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1")).bind(id).execute(self.pool()).await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("{what} {id}")));
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&self.pool).await?,
        }
        let rewritten = self.fingerprint_bot_tokens().await?;
        if rewritten > 0 {
            tracing::info!(bots = rewritten, "stored bot tokens replaced by their fingerprints");
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Test support: a fresh database per test on the PostgreSQL server named by `TS_TEST_DATABASE_URL`.
pub mod testing {
    use super::*;

    /// Creates a uniquely named database and returns its URL, or `None` when `TS_TEST_DATABASE_URL` is unset.
    ///
    /// Panics when the variable is set but the server cannot be used: a test that was asked to run against
    /// PostgreSQL fails rather than passing without having run.
    pub async fn fresh_postgres_url() -> Option<String> {
        let base = std::env::var("TS_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty())?;
        sqlx::any::install_default_drivers();
        let name = format!("ts_test_{}", uuid::Uuid::new_v4().simple());
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .unwrap_or_else(|e| panic!("TS_TEST_DATABASE_URL is set but cannot be connected to: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("TS_TEST_DATABASE_URL is set but CREATE DATABASE failed: {e}"));
        pool.close().await;
        let (prefix, _) = base
            .rsplit_once('/')
            .unwrap_or_else(|| panic!("TS_TEST_DATABASE_URL has no database name: {}", redact_url(&base)));
        Some(format!("{prefix}/{name}"))
    }

    fn redact_url(url: &str) -> String {
        match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(a)) if a > s => format!("{}://…{}", &url[..s], &url[a..]),
            _ => url.to_string(),
        }
    }
}

/// Runs a test on a migrated SQLite database in a temporary directory, then, when `TS_TEST_DATABASE_URL` is set, on
/// a fresh PostgreSQL database (an unreachable server there is a failure, not a skip).
#[cfg(test)]
pub(crate) async fn on_every_backend(test: impl AsyncFn(&Db)) {
    let dir = std::env::temp_dir().join(format!("ts-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let db = Db::connect(&format!("sqlite://{}/t.db", dir.display())).await.expect("SQLite");
    assert_eq!(db.backend(), Backend::Sqlite);
    db.migrate().await.expect("migrations");
    db.migrate().await.expect("migrations run twice");
    db.ping().await.expect("ping");
    test(&db).await;
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    match testing::fresh_postgres_url().await {
        None => eprintln!("PostgreSQL half skipped: TS_TEST_DATABASE_URL is not set"),
        Some(url) => {
            let db = Db::connect(&url).await.expect("PostgreSQL");
            assert_eq!(db.backend(), Backend::Postgres);
            db.migrate().await.expect("migrations");
            db.migrate().await.expect("migrations run twice");
            test(&db).await;
            db.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejects_unknown_urls() {
        assert!(matches!(Db::connect("mysql://x").await, Err(StoreError::UnsupportedUrl(_))));
    }
}
