//! The systems registry of the Documentation API, with the status its health probes store.

use crate::kinds::{get_enum, SystemStatus, SystemType};
use crate::{fmt_ts, opt_ts, ts, unique, updated_one, Db, StoreError};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A system of the documentation registry.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemRow {
    pub id: String,
    pub name: String,
    /// api, webapp, docs or tool.
    pub system_type: SystemType,
    pub url: String,
    pub owner: String,
    pub tags: Vec<String>,
    /// online, offline, error or unknown.
    pub status: SystemStatus,
    pub last_check: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn system_from_row(r: &AnyRow) -> Result<SystemRow, sqlx::Error> {
    Ok(SystemRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        system_type: get_enum(r, "system_type", SystemType::parse)?,
        url: r.try_get("url")?,
        owner: r.try_get("owner")?,
        tags: crate::kinds::get_json(r, "tags")?,
        status: get_enum(r, "status", SystemStatus::parse)?,
        last_check: opt_ts(r, "last_check")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

impl Db {
    pub async fn create_system(&self, s: &SystemRow) -> Result<SystemRow, StoreError> {
        let res = sqlx::query(
            "INSERT INTO systems (id, name, system_type, url, owner, tags, status, last_check, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&s.id)
        .bind(&s.name)
        .bind(s.system_type.as_str())
        .bind(&s.url)
        .bind(&s.owner)
        .bind(serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".into()))
        .bind(s.status.as_str())
        .bind(s.last_check.map(|t| fmt_ts(&t)))
        .bind(fmt_ts(&s.created_at))
        .bind(fmt_ts(&s.updated_at))
        .execute(self.pool())
        .await;
        unique(res, || format!("system {}", s.name)).map(|_| s.clone())
    }

    pub async fn list_systems(&self) -> Result<Vec<SystemRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM systems ORDER BY name").fetch_all(self.pool()).await?;
        Ok(rows.iter().map(system_from_row).collect::<Result<_, _>>()?)
    }
}

impl Db {
    pub async fn system(&self, id: &str) -> Result<Option<SystemRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM systems WHERE id = $1").bind(id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(system_from_row).transpose()?)
    }

    pub async fn update_system(&self, s: &SystemRow) -> Result<SystemRow, StoreError> {
        let res = sqlx::query(
            "UPDATE systems SET name = $1, system_type = $2, url = $3, owner = $4, tags = $5, status = $6, \
             last_check = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&s.name)
        .bind(s.system_type.as_str())
        .bind(&s.url)
        .bind(&s.owner)
        .bind(serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".into()))
        .bind(s.status.as_str())
        .bind(s.last_check.map(|t| fmt_ts(&t)))
        .bind(fmt_ts(&s.updated_at))
        .bind(&s.id)
        .execute(self.pool())
        .await;
        updated_one(res, || format!("system {}", s.id), || format!("system {}", s.name))?;
        Ok(s.clone())
    }

    pub async fn delete_system(&self, id: &str) -> Result<(), StoreError> {
        self.delete_by_id("systems", id, "system").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The systems registry, on SQLite and PostgreSQL.
    #[tokio::test]
    async fn systems_on_every_backend() {
        crate::on_every_backend(async |db: &Db| {
            // Updates by id: a taken name is a conflict, a missing row is not found, both leave the rows as they were.
            let now = chrono::Utc::now();
            let sys = |id: &str, name: &str| SystemRow {
                id: id.into(),
                name: name.into(),
                system_type: SystemType::Api,
                url: "http://127.0.0.1:9/".into(),
                owner: "desk".into(),
                tags: vec![],
                status: SystemStatus::Unknown,
                last_check: None,
                created_at: now,
                updated_at: now,
            };
            db.create_system(&sys("s1", "One")).await.unwrap();
            db.create_system(&sys("s2", "Two")).await.unwrap();
            assert!(matches!(db.update_system(&sys("s2", "One")).await, Err(StoreError::Conflict(_))));
            assert!(matches!(db.update_system(&sys("s9", "Nine")).await, Err(StoreError::NotFound(_))));
            assert_eq!(db.update_system(&sys("s2", "Deux")).await.unwrap().name, "Deux");
        })
        .await;
    }
}
