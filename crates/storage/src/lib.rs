//! SQL storage through sqlx: SQLite by default, PostgreSQL when the URL says `postgres://`.
//!
//! One code path serves both (sqlx's `Any` driver); only the migrations differ in dialect, and they live in
//! `migrations/sqlite` and `migrations/postgres`. Timestamps are RFC 3339 text so both backends store the same
//! thing. The Order Manager's orders are not here: the journal is their source of truth.

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::time::Duration;

pub mod ideas;
pub mod signals;
pub use ideas::{Category, IdeaAudit, IdeaFilter, IdeaRow, IdeaStats, SystemRow};
pub use signals::{token_hint, Bot, BotToken, Channel, LogEntry, ModelSignal, SignalFilter, SignalRow, Stored};

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

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    /// Bearer tokens issued at another version are no longer valid (see `set_password`, `update_user`).
    pub token_version: i64,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    pub prefix: String,
    pub role: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

pub(crate) fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
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

    // ---- settings ----

    /// Returns the stored value, or stores `make()` and returns it (first writer wins across processes).
    pub async fn setting_or_insert(&self, key: &str, make: impl FnOnce() -> String) -> Result<String, StoreError> {
        if let Some(v) = self.setting(key).await? {
            return Ok(v);
        }
        let value = make();
        let inserted = sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2)")
            .bind(key)
            .bind(&value)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(value),
            Err(e) if is_unique_violation(&e) => {
                self.setting(key).await?.ok_or_else(|| StoreError::NotFound(key.into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    // ---- users ----

    fn user_from_row(r: &AnyRow) -> Result<User, sqlx::Error> {
        Ok(User {
            id: r.try_get("id")?,
            username: r.try_get("username")?,
            password_hash: r.try_get("password_hash")?,
            role: r.try_get("role")?,
            created_at: parse_ts(&r.try_get::<String, _>("created_at")?),
            disabled: r.try_get::<bool, _>("disabled").or_else(|_| r.try_get::<i64, _>("disabled").map(|v| v != 0))?,
            token_version: r.try_get("token_version")?,
        })
    }

    pub async fn create_user(&self, username: &str, password_hash: &str, role: &str) -> Result<User, StoreError> {
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            username: username.to_string(),
            password_hash: password_hash.to_string(),
            role: role.to_string(),
            created_at: Utc::now(),
            disabled: false,
            token_version: 0,
        };
        let res = sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.role)
        .bind(user.created_at.to_rfc3339())
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(user),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!("user {username:?}"))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "SELECT id, username, password_hash, role, created_at, disabled, token_version FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Self::user_from_row).transpose()?)
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows =
            sqlx::query("SELECT id, username, password_hash, role, created_at, disabled, token_version FROM users ORDER BY username")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(Self::user_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Sets the password and ends every session opened with the old one.
    pub async fn set_password(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        let res =
            sqlx::query("UPDATE users SET password_hash = $1, token_version = token_version + 1 WHERE username = $2")
                .bind(password_hash)
                .bind(username)
                .execute(&self.pool)
                .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {username:?}")));
        }
        Ok(())
    }

    /// A user by id or, failing that, by name.
    pub async fn user_by_id_or_name(&self, id_or_name: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "SELECT id, username, password_hash, role, created_at, disabled, token_version FROM users \
             WHERE id = $1 OR username = $2 ORDER BY CASE WHEN id = $3 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(id_or_name)
        .bind(id_or_name)
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Self::user_from_row).transpose()?)
    }

    /// Disables or enables a user and/or changes its role. Disabling ends every session (its tokens stay
    /// invalid after a later enable); a role change applies to existing sessions from their next request.
    pub async fn update_user(&self, id: &str, disabled: Option<bool>, role: Option<&str>) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("SELECT id FROM users WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        if found.is_none() {
            return Err(StoreError::NotFound(format!("user {id:?}")));
        }
        if let Some(d) = disabled {
            sqlx::query("UPDATE users SET disabled = $1, token_version = token_version + $2 WHERE id = $3")
                .bind(d)
                .bind(i64::from(d))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(r) = role {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2").bind(r).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.user_by_id_or_name(id).await?.ok_or_else(|| StoreError::NotFound(format!("user {id:?}")))
    }

    // ---- API keys ----

    fn key_from_row(r: &AnyRow) -> Result<ApiKey, sqlx::Error> {
        Ok(ApiKey {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            key_hash: r.try_get("key_hash")?,
            prefix: r.try_get("prefix")?,
            role: r.try_get("role")?,
            created_by: r.try_get("created_by")?,
            created_at: parse_ts(&r.try_get::<String, _>("created_at")?),
            revoked_at: r.try_get::<Option<String>, _>("revoked_at")?.map(|s| parse_ts(&s)),
        })
    }

    pub async fn create_api_key(
        &self,
        name: &str,
        key_hash: &str,
        prefix: &str,
        role: &str,
        created_by: &str,
    ) -> Result<ApiKey, StoreError> {
        let key = ApiKey {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_string(),
            key_hash: key_hash.to_string(),
            prefix: prefix.to_string(),
            role: role.to_string(),
            created_by: created_by.to_string(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        sqlx::query("INSERT INTO api_keys (id, name, key_hash, prefix, role, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.key_hash)
            .bind(&key.prefix)
            .bind(&key.role)
            .bind(&key.created_by)
            .bind(key.created_at.to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(key)
    }

    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT id, name, key_hash, prefix, role, created_by, created_at, revoked_at FROM api_keys WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(Self::key_from_row).transpose()?)
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query("SELECT id, name, key_hash, prefix, role, created_by, created_at, revoked_at FROM api_keys ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(Self::key_from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes the key with this id, and only it (names are not unique). Revoking twice is not an error.
    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKey, StoreError> {
        let now = Utc::now().to_rfc3339();
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(&now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query(
            "SELECT id, name, key_hash, prefix, role, created_by, created_at, revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Self::key_from_row(&r)?),
            None => Err(StoreError::NotFound(format!("API key {id:?}"))),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(db: Db) {
        db.migrate().await.unwrap();
        db.migrate().await.unwrap();
        db.ping().await.unwrap();
        assert_eq!(db.count_users().await.unwrap(), 0);
        let u = db.create_user("alice", "hash1", "trader").await.unwrap();
        assert!(matches!(db.create_user("alice", "x", "viewer").await, Err(StoreError::Conflict(_))));
        let got = db.user_by_name("alice").await.unwrap().unwrap();
        assert_eq!((got.id.as_str(), got.role.as_str(), got.disabled), (u.id.as_str(), "trader", false));
        db.set_password("alice", "hash2").await.unwrap();
        assert_eq!(db.user_by_name("alice").await.unwrap().unwrap().password_hash, "hash2");
        assert!(matches!(db.set_password("bob", "h").await, Err(StoreError::NotFound(_))));
        assert!(db.user_by_name("bob").await.unwrap().is_none());
        assert_eq!(db.list_users().await.unwrap().len(), 1);

        let k = db.create_api_key("bot", "deadbeef", "ts_dead", "trader", "admin").await.unwrap();
        assert_eq!(db.api_key_by_hash("deadbeef").await.unwrap().unwrap().id, k.id);
        let twin = db.create_api_key("bot", "cafebabe", "ts_cafe", "trader", "admin").await.unwrap();
        assert!(matches!(db.revoke_api_key("bot").await, Err(StoreError::NotFound(_))), "by id only");
        let revoked = db.revoke_api_key(&k.id).await.unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(db.api_key_by_hash("cafebabe").await.unwrap().unwrap().revoked_at.is_none(), "a same-named key stays");
        db.revoke_api_key(&twin.id).await.unwrap();
        assert!(matches!(db.revoke_api_key("nope").await, Err(StoreError::NotFound(_))));
        assert_eq!(db.list_api_keys().await.unwrap().len(), 2);

        // Disabling ends sessions (the version moves); a role change does not; a password change does.
        let v0 = db.user_by_name("alice").await.unwrap().unwrap().token_version;
        let d = db.update_user(&u.id, Some(true), Some("viewer")).await.unwrap();
        assert_eq!((d.disabled, d.role.as_str(), d.token_version), (true, "viewer", v0 + 1));
        let e = db.update_user(&u.id, Some(false), None).await.unwrap();
        assert_eq!((e.disabled, e.role.as_str(), e.token_version), (false, "viewer", v0 + 1));
        db.set_password("alice", "hash3").await.unwrap();
        assert_eq!(db.user_by_id_or_name("alice").await.unwrap().unwrap().token_version, v0 + 2);
        assert!(matches!(db.update_user("nobody", Some(true), None).await, Err(StoreError::NotFound(_))));

        // A bot token stored in plaintext by an older version is replaced by its fingerprint at the next migrate.
        sqlx::query(
            "INSERT INTO tp_bots (id, username, token, bot_type, status, created_at, updated_at) \
             VALUES ('b1', 'old_bot', '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw', 'ingestion', 'active', '', '')",
        )
        .execute(db.pool())
        .await
        .unwrap();
        db.migrate().await.unwrap();
        let bot = db.bot("b1").await.unwrap().unwrap();
        assert_eq!(bot.token_sha256, BotToken::new("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw").sha256);
        assert_eq!(bot.token_hint, "123456789:…Dsaw");
        db.delete_bot("b1").await.unwrap();

        let s1 = db.setting_or_insert("jwt_secret", || "first".into()).await.unwrap();
        let s2 = db.setting_or_insert("jwt_secret", || "second".into()).await.unwrap();
        assert_eq!((s1.as_str(), s2.as_str()), ("first", "first"));
        db.set_setting("offset", "5").await.unwrap();
        db.set_setting("offset", "6").await.unwrap();
        assert_eq!(db.setting("offset").await.unwrap().as_deref(), Some("6"));

        signals(&db).await;
    }

    /// TP-Capital's tables on either backend.
    async fn signals(db: &Db) {
        let now = Utc::now();
        let ch = Channel {
            id: "c1".into(),
            label: "TP".into(),
            channel_id: "-1001".into(),
            channel_type: "source".into(),
            description: String::new(),
            status: "active".into(),
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
            source: "telegram-webhook".into(),
            ts,
            ingested_at: now,
            updated_at: now,
            asset: asset.into(),
            side: "BUY".into(),
            signal_type: "Swing Trade".into(),
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

        db.log_ingest("warn", Some("-1001"), Some(3), "unregistered", "x").await.unwrap();
        db.log_ingest("info", None, None, "ignored", "y").await.unwrap();
        assert_eq!(db.ingest_log(None, 10).await.unwrap()[0].outcome, "ignored");
        assert_eq!(db.ingest_log(Some("warn"), 10).await.unwrap().len(), 1);
        let later = now + chrono::Duration::days(1);
        assert_eq!(db.purge_signal_archive_and_log(later, now - chrono::Duration::days(1)).await.unwrap(), (1, 0));
        assert_eq!(db.purge_signal_archive_and_log(later, later).await.unwrap(), (0, 2));

        let m = ModelSignal {
            id: 0,
            symbol: "PETR4".into(),
            action: "BUY".into(),
            confidence: 0.72,
            price_target: Some(400_000),
            stop_loss: None,
            model_version: "v1".into(),
            decision: "pending".into(),
            created_by: "bot".into(),
            created_at: now,
        };
        let id = db.insert_model_signal(&m).await.unwrap();
        db.set_model_signal_decision(id, "ordered").await.unwrap();
        let (list, total) = db.list_model_signals(10, 0).await.unwrap();
        assert_eq!((total, list[0].decision.as_str(), list[0].confidence), (1, "ordered", 0.72));
        db.save_bracket("tp-1", false, "{}").await.unwrap();
        db.save_bracket("tp-1", false, "{\"a\":1}").await.unwrap();
        db.save_bracket("tp-2", true, "{}").await.unwrap();
        assert_eq!(db.open_brackets().await.unwrap(), vec!["{\"a\":1}".to_string()]);
        assert_eq!(db.bracket("tp-2").await.unwrap().as_deref(), Some("{}"));

        ideas(db).await;
    }

    async fn ideas(db: &Db) {
        let cats = db.list_categories(true).await.unwrap();
        assert_eq!(cats.len(), 6, "the original's six categories are seeded");
        assert_eq!(cats[0].name, "documentacao");
        let now = Utc::now();
        let idea = |id: &str, title: &str, tags: &[&str], legacy: Option<&str>| IdeaRow {
            id: id.into(),
            legacy_id: legacy.map(str::to_string),
            title: title.into(),
            description: "d".into(),
            category: "dashboard".into(),
            priority: "high".into(),
            status: "new".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            metadata: serde_json::json!({"k": 1}),
            created_by: "alice".into(),
            updated_by: "alice".into(),
            created_at: now,
            updated_at: now,
        };
        let a =
            db.create_idea(&idea("i1", "Painel de risco", &["risco", "ui_v2"], None), "alice", "create").await.unwrap();
        db.create_idea(&idea("i2", "Coletor B3", &["dados"], Some("7")), "import", "import").await.unwrap();
        assert!(matches!(
            db.create_idea(&idea("i3", "again", &[], Some("7")), "import", "import").await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(db.idea_by_legacy_id("7").await.unwrap().unwrap().id, "i2");
        let f = IdeaFilter { limit: 10, ..Default::default() };
        assert_eq!(db.list_ideas(&f).await.unwrap().1, 2);
        assert_eq!(db.list_ideas(&IdeaFilter { tag: Some("RISCO".into()), ..f.clone() }).await.unwrap().1, 1);
        assert_eq!(
            db.list_ideas(&IdeaFilter { tag: Some("ui_".into()), ..f.clone() }).await.unwrap().1,
            0,
            "whole tags only"
        );
        assert_eq!(db.list_ideas(&IdeaFilter { search: Some("coletor".into()), ..f.clone() }).await.unwrap().1, 1);
        assert_eq!(db.list_ideas(&IdeaFilter { limit: 1, offset: 1, ..f.clone() }).await.unwrap().0.len(), 1);
        let later = IdeaRow {
            status: "review".into(),
            updated_by: "bob".into(),
            updated_at: now + chrono::Duration::seconds(1),
            ..a.clone()
        };
        db.update_idea(&a, &later, "bob", "transition").await.unwrap();
        assert!(
            matches!(db.update_idea(&a, &later, "bob", "update").await, Err(StoreError::Conflict(_))),
            "stale write"
        );
        let trail = db.idea_audit("i1").await.unwrap();
        assert_eq!(trail.len(), 2);
        assert_eq!(trail[1].changes["status"], serde_json::json!({"old": "new", "new": "review"}));
        let stats = db.idea_stats().await.unwrap();
        assert_eq!((stats.total, stats.by_status.len()), (2, 2));
        assert!(matches!(db.delete_category("dashboard").await, Err(StoreError::Conflict(_))));
        db.delete_idea("i1", "bob").await.unwrap();
        assert_eq!(db.idea_audit("i1").await.unwrap().len(), 3);

        // Updates by id: a taken name is a conflict, a missing row is not found, both leave the rows as they were.
        let now = chrono::Utc::now();
        let sys = |id: &str, name: &str| SystemRow {
            id: id.into(),
            name: name.into(),
            system_type: "api".into(),
            url: "http://127.0.0.1:9/".into(),
            owner: "desk".into(),
            tags: vec![],
            status: "unknown".into(),
            last_check: None,
            created_at: now,
            updated_at: now,
        };
        db.create_system(&sys("s1", "One")).await.unwrap();
        db.create_system(&sys("s2", "Two")).await.unwrap();
        assert!(matches!(db.update_system(&sys("s2", "One")).await, Err(StoreError::Conflict(_))));
        assert!(matches!(db.update_system(&sys("s9", "Nine")).await, Err(StoreError::NotFound(_))));
        assert_eq!(db.update_system(&sys("s2", "Deux")).await.unwrap().name, "Deux");
    }

    #[tokio::test]
    async fn sqlite_round_trip() {
        let dir = std::env::temp_dir().join(format!("ts-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.display())).await.unwrap();
        assert_eq!(db.backend(), Backend::Sqlite);
        exercise(db).await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn postgres_round_trip() {
        let Some(url) = testing::fresh_postgres_url().await else {
            eprintln!("skipped: TS_TEST_DATABASE_URL is not set");
            return;
        };
        let db = Db::connect(&url).await.unwrap();
        assert_eq!(db.backend(), Backend::Postgres);
        exercise(db).await;
    }

    #[tokio::test]
    async fn rejects_unknown_urls() {
        assert!(matches!(Db::connect("mysql://x").await, Err(StoreError::UnsupportedUrl(_))));
    }
}
