//! Settings: small named values shared by every process on the database (the JWT secret, the Telegram offset).

use crate::{is_unique_violation, Db, StoreError};
use sqlx::Row;

impl Db {
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

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $3")
            .bind(key)
            .bind(value)
            .bind(value)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings, on SQLite and PostgreSQL.
    #[tokio::test]
    async fn settings_on_every_backend() {
        crate::on_every_backend(async |db: &Db| {
            let s1 = db.setting_or_insert("jwt_secret", || "first".into()).await.unwrap();
            let s2 = db.setting_or_insert("jwt_secret", || "second".into()).await.unwrap();
            assert_eq!((s1.as_str(), s2.as_str()), ("first", "first"));
            db.set_setting("offset", "5").await.unwrap();
            db.set_setting("offset", "6").await.unwrap();
            assert_eq!(db.setting("offset").await.unwrap().as_deref(), Some("6"));
        })
        .await;
    }
}
