//! Accounts: users (roles, disabling, token versions) and API keys (stored as hashes).

use crate::kinds::{get_enum, Role};
use crate::{fmt_ts, is_unique_violation, opt_ts, ts, Db, StoreError};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
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
    pub role: Role,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Db {
    fn user_from_row(r: &AnyRow) -> Result<User, sqlx::Error> {
        Ok(User {
            id: r.try_get("id")?,
            username: r.try_get("username")?,
            password_hash: r.try_get("password_hash")?,
            role: get_enum(r, "role", Role::parse)?,
            created_at: ts(r, "created_at")?,
            disabled: r.try_get::<bool, _>("disabled").or_else(|_| r.try_get::<i64, _>("disabled").map(|v| v != 0))?,
            token_version: r.try_get("token_version")?,
        })
    }

    pub async fn create_user(&self, username: &str, password_hash: &str, role: Role) -> Result<User, StoreError> {
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            username: username.to_string(),
            password_hash: password_hash.to_string(),
            role,
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
        .bind(user.role.as_str())
        .bind(fmt_ts(&user.created_at))
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
    pub async fn update_user(&self, id: &str, disabled: Option<bool>, role: Option<Role>) -> Result<User, StoreError> {
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
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2").bind(r.as_str()).bind(id).execute(&mut *tx).await?;
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
            role: get_enum(r, "role", Role::parse)?,
            created_by: r.try_get("created_by")?,
            created_at: ts(r, "created_at")?,
            revoked_at: opt_ts(r, "revoked_at")?,
        })
    }

    pub async fn create_api_key(
        &self,
        name: &str,
        key_hash: &str,
        prefix: &str,
        role: Role,
        created_by: &str,
    ) -> Result<ApiKey, StoreError> {
        let key = ApiKey {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_string(),
            key_hash: key_hash.to_string(),
            prefix: prefix.to_string(),
            role,
            created_by: created_by.to_string(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        sqlx::query("INSERT INTO api_keys (id, name, key_hash, prefix, role, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.key_hash)
            .bind(&key.prefix)
            .bind(key.role.as_str())
            .bind(&key.created_by)
            .bind(fmt_ts(&key.created_at))
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
        let now = fmt_ts(&Utc::now());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Users and API keys, on SQLite and PostgreSQL.
    #[tokio::test]
    async fn accounts_on_every_backend() {
        crate::on_every_backend(async |db: &Db| {
            assert_eq!(db.count_users().await.unwrap(), 0);
            let u = db.create_user("alice", "hash1", Role::Trader).await.unwrap();
            assert!(matches!(db.create_user("alice", "x", Role::Viewer).await, Err(StoreError::Conflict(_))));
            let got = db.user_by_name("alice").await.unwrap().unwrap();
            assert_eq!((got.id.as_str(), got.role.as_str(), got.disabled), (u.id.as_str(), "trader", false));
            db.set_password("alice", "hash2").await.unwrap();
            assert_eq!(db.user_by_name("alice").await.unwrap().unwrap().password_hash, "hash2");
            assert!(matches!(db.set_password("bob", "h").await, Err(StoreError::NotFound(_))));
            assert!(db.user_by_name("bob").await.unwrap().is_none());
            assert_eq!(db.list_users().await.unwrap().len(), 1);

            let k = db.create_api_key("bot", "deadbeef", "ts_dead", Role::Trader, "admin").await.unwrap();
            assert_eq!(db.api_key_by_hash("deadbeef").await.unwrap().unwrap().id, k.id);
            let twin = db.create_api_key("bot", "cafebabe", "ts_cafe", Role::Trader, "admin").await.unwrap();
            assert!(matches!(db.revoke_api_key("bot").await, Err(StoreError::NotFound(_))), "by id only");
            let revoked = db.revoke_api_key(&k.id).await.unwrap();
            assert!(revoked.revoked_at.is_some());
            assert!(
                db.api_key_by_hash("cafebabe").await.unwrap().unwrap().revoked_at.is_none(),
                "a same-named key stays"
            );
            db.revoke_api_key(&twin.id).await.unwrap();
            assert!(matches!(db.revoke_api_key("nope").await, Err(StoreError::NotFound(_))));
            assert_eq!(db.list_api_keys().await.unwrap().len(), 2);

            // Disabling ends sessions (the version moves); a role change does not; a password change does.
            let v0 = db.user_by_name("alice").await.unwrap().unwrap().token_version;
            let d = db.update_user(&u.id, Some(true), Some(Role::Viewer)).await.unwrap();
            assert_eq!((d.disabled, d.role.as_str(), d.token_version), (true, "viewer", v0 + 1));
            let e = db.update_user(&u.id, Some(false), None).await.unwrap();
            assert_eq!((e.disabled, e.role.as_str(), e.token_version), (false, "viewer", v0 + 1));
            db.set_password("alice", "hash3").await.unwrap();
            assert_eq!(db.user_by_id_or_name("alice").await.unwrap().unwrap().token_version, v0 + 2);
            assert!(matches!(db.update_user("nobody", Some(true), None).await, Err(StoreError::NotFound(_))));

            // A stored time that is not a time is an error naming the column, not 1970.
            sqlx::query("UPDATE users SET created_at = 'yesterday' WHERE username = 'alice'")
                .execute(db.pool())
                .await
                .unwrap();
            let err = db.list_users().await.unwrap_err();
            assert!(err.to_string().contains("created_at") && err.to_string().contains("yesterday"), "{err}");
            sqlx::query("UPDATE users SET created_at = $1 WHERE username = 'alice'")
                .bind(fmt_ts(&Utc::now()))
                .execute(db.pool())
                .await
                .unwrap();
            assert_eq!(db.list_users().await.unwrap().len(), 1);
        })
        .await;
    }
}
