//! The Idea Bank's tables: categories, ideas and their audit log. Rules (workflow, validation) live in the
//! `idea-bank` crate; this is only storage.

use crate::kinds::{get_enum, get_json, IdeaAction};
use crate::{fmt_ts, get_bool, like_pattern, ts, unique, Db, Filters, StoreError};
use chrono::{DateTime, Utc};
use idea_bank::{Priority, Status};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub color: String,
    pub sort_order: i64,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdeaRow {
    pub id: String,
    /// The id in the system it was imported from.
    pub legacy_id: Option<String>,
    pub title: String,
    pub description: String,
    pub category: String,
    pub priority: Priority,
    pub status: Status,
    pub tags: Vec<String>,
    pub metadata: serde_json::Value,
    pub created_by: String,
    pub updated_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct IdeaFilter {
    pub category: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub tag: Option<String>,
    /// Case-insensitive, over title, description and tags.
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdeaAudit {
    pub id: i64,
    pub idea_id: String,
    pub actor: String,
    pub action: IdeaAction,
    pub changes: serde_json::Value,
    pub ts: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdeaStats {
    pub total: i64,
    pub by_category: Vec<(String, i64)>,
    pub by_status: Vec<(String, i64)>,
    pub by_priority: Vec<(String, i64)>,
}

fn category_from_row(r: &AnyRow) -> Result<Category, sqlx::Error> {
    Ok(Category {
        name: r.try_get("name")?,
        display_name: r.try_get("display_name")?,
        description: r.try_get("description")?,
        color: r.try_get("color")?,
        sort_order: r.try_get::<i64, _>("sort_order").or_else(|_| r.try_get::<i32, _>("sort_order").map(i64::from))?,
        active: get_bool(r, "active")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn idea_from_row(r: &AnyRow) -> Result<IdeaRow, sqlx::Error> {
    Ok(IdeaRow {
        id: r.try_get("id")?,
        legacy_id: r.try_get("legacy_id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        category: r.try_get("category")?,
        priority: get_enum(r, "priority", |t| Priority::ALL.into_iter().find(|p| p.as_str() == t))?,
        status: get_enum(r, "status", |t| Status::ALL.into_iter().find(|s| s.as_str() == t))?,
        tags: get_json(r, "tags")?,
        metadata: get_json(r, "metadata")?,
        created_by: r.try_get("created_by")?,
        updated_by: r.try_get("updated_by")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

const IDEA_COLUMNS: &str =
    "id, legacy_id, title, description, category, priority, status, tags, metadata, created_by, \
     updated_by, created_at, updated_at";

impl Db {
    // ---- categories ----

    pub async fn list_categories(&self, only_active: bool) -> Result<Vec<Category>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM idea_categories ORDER BY sort_order, name").fetch_all(self.pool()).await?;
        let all: Vec<Category> = rows.iter().map(category_from_row).collect::<Result<_, _>>()?;
        Ok(all.into_iter().filter(|c| c.active || !only_active).collect())
    }

    pub async fn category(&self, name: &str) -> Result<Option<Category>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM idea_categories WHERE name = $1").bind(name).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(category_from_row).transpose()?)
    }

    pub async fn create_category(&self, c: &Category) -> Result<Category, StoreError> {
        let res = sqlx::query(
            "INSERT INTO idea_categories (name, display_name, description, color, sort_order, active, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.name)
        .bind(&c.display_name)
        .bind(&c.description)
        .bind(&c.color)
        .bind(c.sort_order)
        .bind(c.active)
        .bind(fmt_ts(&c.created_at))
        .bind(fmt_ts(&c.updated_at))
        .execute(self.pool())
        .await;
        unique(res, || format!("category {}", c.name)).map(|_| c.clone())
    }

    pub async fn update_category(&self, c: &Category) -> Result<Category, StoreError> {
        let r = sqlx::query(
            "UPDATE idea_categories SET display_name = $1, description = $2, color = $3, sort_order = $4, active = $5, \
             updated_at = $6 WHERE name = $7",
        )
        .bind(&c.display_name)
        .bind(&c.description)
        .bind(&c.color)
        .bind(c.sort_order)
        .bind(c.active)
        .bind(fmt_ts(&c.updated_at))
        .bind(&c.name)
        .execute(self.pool())
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("category {}", c.name)));
        }
        Ok(c.clone())
    }

    /// Removes a category nobody uses; one with ideas is a conflict (deactivate it instead).
    pub async fn delete_category(&self, name: &str) -> Result<(), StoreError> {
        let used: i64 = sqlx::query("SELECT COUNT(*) FROM ideas WHERE category = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        if used > 0 {
            return Err(StoreError::Conflict(format!("ideas in category {name} ({used}); deactivate it instead")));
        }
        let r = sqlx::query("DELETE FROM idea_categories WHERE name = $1").bind(name).execute(self.pool()).await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("category {name}")));
        }
        Ok(())
    }

    // ---- ideas ----

    /// Inserts an idea and its audit entry in one transaction. A `legacy_id` already imported is a conflict.
    pub async fn create_idea(&self, i: &IdeaRow, actor: &str, action: IdeaAction) -> Result<IdeaRow, StoreError> {
        let mut tx = self.pool().begin().await?;
        unique(Self::insert_idea_row(&mut tx, i).await, || {
            format!("idea {}", i.legacy_id.as_deref().unwrap_or(&i.id))
        })?;
        let changes = serde_json::json!({ "created": { "title": i.title, "category": i.category, "priority": i.priority, "status": i.status } });
        Self::audit_idea(&mut tx, &i.id, actor, action, &changes).await?;
        tx.commit().await?;
        Ok(i.clone())
    }

    async fn insert_idea_row(tx: &mut sqlx::Transaction<'_, sqlx::Any>, i: &IdeaRow) -> Result<(), sqlx::Error> {
        sqlx::query(&format!(
            "INSERT INTO ideas ({IDEA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&i.id)
        .bind(&i.legacy_id)
        .bind(&i.title)
        .bind(&i.description)
        .bind(&i.category)
        .bind(i.priority.as_str())
        .bind(i.status.as_str())
        .bind(serde_json::to_string(&i.tags).unwrap_or_else(|_| "[]".into()))
        .bind(i.metadata.to_string())
        .bind(&i.created_by)
        .bind(&i.updated_by)
        .bind(fmt_ts(&i.created_at))
        .bind(fmt_ts(&i.updated_at))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn audit_idea(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        idea_id: &str,
        actor: &str,
        action: IdeaAction,
        changes: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO idea_audit (idea_id, actor, action, changes, ts) VALUES ($1, $2, $3, $4, $5)")
            .bind(idea_id)
            .bind(actor)
            .bind(action.as_str())
            .bind(changes.to_string())
            .bind(fmt_ts(&Utc::now()))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn idea(&self, id: &str) -> Result<Option<IdeaRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {IDEA_COLUMNS} FROM ideas WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(idea_from_row).transpose()?)
    }

    pub async fn idea_by_legacy_id(&self, legacy_id: &str) -> Result<Option<IdeaRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {IDEA_COLUMNS} FROM ideas WHERE legacy_id = $1"))
            .bind(legacy_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(idea_from_row).transpose()?)
    }

    /// Writes `new` over `old` if nobody changed it meanwhile (`updated_at` unchanged), with an audit entry of the
    /// fields that differ (old and new values). A concurrent change is a conflict.
    pub async fn update_idea(
        &self,
        old: &IdeaRow,
        new: &IdeaRow,
        actor: &str,
        action: IdeaAction,
    ) -> Result<IdeaRow, StoreError> {
        let mut changes = serde_json::Map::new();
        let mut diff = |field: &str, a: serde_json::Value, b: serde_json::Value| {
            if a != b {
                changes.insert(field.into(), serde_json::json!({ "old": a, "new": b }));
            }
        };
        diff("title", old.title.clone().into(), new.title.clone().into());
        diff("description", old.description.clone().into(), new.description.clone().into());
        diff("category", old.category.clone().into(), new.category.clone().into());
        diff("priority", old.priority.as_str().into(), new.priority.as_str().into());
        diff("status", old.status.as_str().into(), new.status.as_str().into());
        diff("tags", serde_json::json!(old.tags), serde_json::json!(new.tags));
        diff("metadata", old.metadata.clone(), new.metadata.clone());
        if changes.is_empty() {
            return Ok(old.clone());
        }
        let mut tx = self.pool().begin().await?;
        let r = sqlx::query(
            "UPDATE ideas SET title = $1, description = $2, category = $3, priority = $4, status = $5, tags = $6, \
             metadata = $7, updated_by = $8, updated_at = $9 WHERE id = $10 AND updated_at = $11",
        )
        .bind(&new.title)
        .bind(&new.description)
        .bind(&new.category)
        .bind(new.priority.as_str())
        .bind(new.status.as_str())
        .bind(serde_json::to_string(&new.tags).unwrap_or_else(|_| "[]".into()))
        .bind(new.metadata.to_string())
        .bind(&new.updated_by)
        .bind(fmt_ts(&new.updated_at))
        .bind(&old.id)
        .bind(fmt_ts(&old.updated_at))
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("idea {} was changed meanwhile; reload it", old.id)));
        }
        Self::audit_idea(&mut tx, &old.id, actor, action, &serde_json::Value::Object(changes)).await?;
        tx.commit().await?;
        Ok(new.clone())
    }

    pub async fn delete_idea(&self, id: &str, actor: &str) -> Result<IdeaRow, StoreError> {
        let old = self.idea(id).await?.ok_or_else(|| StoreError::NotFound(format!("idea {id}")))?;
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM ideas WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let changes = serde_json::json!({ "deleted": { "title": old.title, "status": old.status } });
        Self::audit_idea(&mut tx, id, actor, IdeaAction::Delete, &changes).await?;
        tx.commit().await?;
        Ok(old)
    }

    pub async fn list_ideas(&self, f: &IdeaFilter) -> Result<(Vec<IdeaRow>, i64), StoreError> {
        let mut w = Filters::default();
        if let Some(v) = &f.category {
            w.push("category = ?", v.clone());
        }
        if let Some(v) = f.status {
            w.push("status = ?", v.as_str().to_string());
        }
        if let Some(v) = f.priority {
            w.push("priority = ?", v.as_str().to_string());
        }
        if let Some(t) = &f.tag {
            // Tags are a JSON array of strings: match the quoted element.
            let quoted = serde_json::to_string(&t.to_lowercase()).unwrap_or_default();
            w.push("LOWER(tags) LIKE ? ESCAPE '\\'", like_pattern(&quoted));
        }
        if let Some(q) = &f.search {
            w.push("LOWER(title || ' ' || description || ' ' || tags) LIKE ? ESCAPE '\\'", like_pattern(q));
        }
        let (rows, total) =
            w.page(self, (IDEA_COLUMNS, "ideas", "created_at DESC, id DESC"), (f.limit, f.offset)).await?;
        Ok((rows.iter().map(idea_from_row).collect::<Result<_, _>>()?, total))
    }

    pub async fn idea_stats(&self) -> Result<IdeaStats, StoreError> {
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM ideas").fetch_one(self.pool()).await?.try_get(0)?;
        let mut stats = IdeaStats { total, ..Default::default() };
        for (col, out) in [
            ("category", &mut stats.by_category),
            ("status", &mut stats.by_status),
            ("priority", &mut stats.by_priority),
        ] {
            let rows = sqlx::query(&format!("SELECT {col}, COUNT(*) FROM ideas GROUP BY {col} ORDER BY {col}"))
                .fetch_all(self.pool())
                .await?;
            for r in rows {
                out.push((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?));
            }
        }
        Ok(stats)
    }

    pub async fn idea_audit(&self, idea_id: &str) -> Result<Vec<IdeaAudit>, StoreError> {
        let rows = sqlx::query("SELECT * FROM idea_audit WHERE idea_id = $1 ORDER BY id")
            .bind(idea_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(IdeaAudit {
                    id: r.try_get("id")?,
                    idea_id: r.try_get("idea_id")?,
                    actor: r.try_get("actor")?,
                    action: get_enum(r, "action", IdeaAction::parse)?,
                    changes: get_json(r, "changes")?,
                    ts: ts(r, "ts")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

impl Db {
    /// Many ideas in one transaction, each with its audit entry (imports and benchmarks); stops at the first error.
    pub async fn insert_ideas(&self, rows: &[IdeaRow], actor: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        for i in rows {
            Self::insert_idea_row(&mut tx, i).await?;
            let changes = serde_json::json!({ "created": { "title": i.title } });
            Self::audit_idea(&mut tx, &i.id, actor, IdeaAction::Import, &changes).await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Idea Bank's tables, on SQLite and PostgreSQL.
    #[tokio::test]
    async fn ideas_on_every_backend() {
        crate::on_every_backend(async |db: &Db| {
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
                priority: Priority::High,
                status: Status::New,
                tags: tags.iter().map(|t| t.to_string()).collect(),
                metadata: serde_json::json!({"k": 1}),
                created_by: "alice".into(),
                updated_by: "alice".into(),
                created_at: now,
                updated_at: now,
            };
            let a = db
                .create_idea(&idea("i1", "Painel de risco", &["risco", "ui_v2"], None), "alice", IdeaAction::Create)
                .await
                .unwrap();
            db.create_idea(&idea("i2", "Coletor B3", &["dados"], Some("7")), "import", IdeaAction::Import)
                .await
                .unwrap();
            assert!(matches!(
                db.create_idea(&idea("i3", "again", &[], Some("7")), "import", IdeaAction::Import).await,
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
                status: Status::Review,
                updated_by: "bob".into(),
                updated_at: now + chrono::Duration::seconds(1),
                ..a.clone()
            };
            db.update_idea(&a, &later, "bob", IdeaAction::Transition).await.unwrap();
            assert!(
                matches!(db.update_idea(&a, &later, "bob", IdeaAction::Update).await, Err(StoreError::Conflict(_))),
                "stale write"
            );
            let trail = db.idea_audit("i1").await.unwrap();
            assert_eq!(trail.len(), 2);
            assert_eq!(trail[1].changes["status"], serde_json::json!({"old": "new", "new": "review"}));
            assert_eq!(
                trail.iter().map(|a| a.action).collect::<Vec<_>>(),
                [IdeaAction::Create, IdeaAction::Transition]
            );
            let stats = db.idea_stats().await.unwrap();
            assert_eq!((stats.total, stats.by_status.len()), (2, 2));
            assert!(matches!(db.delete_category("dashboard").await, Err(StoreError::Conflict(_))));
            db.delete_idea("i1", "bob").await.unwrap();
            assert_eq!(db.idea_audit("i1").await.unwrap().len(), 3);
            // Stored text that is not what this version wrote is an error naming its column, never a default.
            sqlx::query("UPDATE idea_audit SET changes = 'not json' WHERE idea_id = 'i1'")
                .execute(db.pool())
                .await
                .unwrap();
            assert!(db.idea_audit("i1").await.unwrap_err().to_string().contains("changes"));
            sqlx::query("UPDATE idea_audit SET action = 'created' WHERE idea_id = 'i2'")
                .execute(db.pool())
                .await
                .unwrap();
            assert!(db.idea_audit("i2").await.unwrap_err().to_string().contains("action"));
            sqlx::query("UPDATE ideas SET tags = '{' WHERE id = 'i2'").execute(db.pool()).await.unwrap();
            assert!(db.idea("i2").await.unwrap_err().to_string().contains("tags"));
        })
        .await;
    }
}
