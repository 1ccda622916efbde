//! `tradingsystem import lowdb FILE`: the original system's LowDB JSON files into our tables.
//!
//! Three shapes: the Idea Bank's `{"items":[...]}`, its legacy `{"ideas":[...]}` (numeric ids, camelCase dates,
//! `updatedAt` may be null), and the documentation registry `{"systems":[...],"ideas":[...],...}`. Every record keeps
//! its original id (`legacy_id`, or the system's name), so a second run imports nothing twice. A malformed record is
//! reported with its id and the reason, and the rest still import.

use anyhow::{Context, Result};
use chrono::{DateTime, TimeZone, Utc};
use idea_bank::{Priority, Status};
use serde_json::Value;
use storage::{Db, IdeaRow, StoreError, SystemRow};

#[derive(Debug, Default, PartialEq)]
pub struct Counts {
    pub imported: usize,
    pub already: usize,
    pub rejected: Vec<String>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Report {
    pub ideas: Counts,
    pub systems: Counts,
    /// Top-level keys we do not import, with their record counts.
    pub ignored: Vec<(String, usize)>,
}

fn text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| v.get(*k)).and_then(|x| match x {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// RFC 3339, a plain date-time, or milliseconds since the epoch (LowDB stored `Date.now()` in places).
fn time(v: &Value, keys: &[&str]) -> Option<DateTime<Utc>> {
    let x = keys.iter().find_map(|k| v.get(*k)).filter(|x| !x.is_null())?;
    if let Some(ms) = x.as_i64() {
        return Utc.timestamp_millis_opt(ms).single();
    }
    let s = x.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok().map(|t| t.and_utc()))
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

fn record_id(v: &Value, i: usize) -> String {
    text(v, &["id", "_id", "name"]).unwrap_or_else(|| format!("#{}", i + 1))
}

/// One original idea as a row, or why it cannot be.
fn idea_row(v: &Value, categories: &[String]) -> Result<IdeaRow, String> {
    if !v.is_object() {
        return Err("not an object".into());
    }
    let legacy_id = text(v, &["id", "_id"]).filter(|s| !s.is_empty()).ok_or("no id")?;
    let title = idea_bank::check_title(&text(v, &["title"]).unwrap_or_default()).map_err(|e| e.message)?;
    let description = match text(v, &["description"]).filter(|d| !d.is_empty()) {
        Some(d) => idea_bank::check_description(&d).map_err(|e| e.message)?,
        None => return Err("description: empty".into()),
    };
    let category = text(v, &["category"]).unwrap_or_default().to_ascii_lowercase();
    if !categories.contains(&category) {
        return Err(format!("category: unknown category {category:?}"));
    }
    let priority = match text(v, &["priority"]) {
        None => Priority::Medium,
        Some(p) => Priority::parse(&p).ok_or_else(|| format!("priority: unknown priority {p:?}"))?,
    };
    let status = match text(v, &["status"]) {
        None => Status::New,
        Some(s) => Status::parse(&s).ok_or_else(|| format!("status: unknown status {s:?}"))?,
    };
    let tags: Vec<String> = match v.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect(),
        Some(_) => return Err("tags: not a list".into()),
    };
    let tags = idea_bank::check_tags(&tags).map_err(|e| e.message)?;
    let metadata = match v.get("metadata") {
        None | Some(Value::Null) => serde_json::json!({}),
        Some(m) if m.is_object() => m.clone(),
        Some(_) => return Err("metadata: not an object".into()),
    };
    let created_at = time(v, &["createdAt", "created_at"]).unwrap_or_else(Utc::now);
    let updated_at = time(v, &["updatedAt", "updated_at"]).unwrap_or(created_at);
    let created_by =
        text(v, &["createdBy", "created_by", "author"]).filter(|s| !s.is_empty()).unwrap_or_else(|| "import".into());
    let updated_by =
        text(v, &["updatedBy", "updated_by"]).filter(|s| !s.is_empty()).unwrap_or_else(|| created_by.clone());
    Ok(IdeaRow {
        id: uuid::Uuid::new_v4().to_string(),
        legacy_id: Some(legacy_id),
        title,
        description,
        category,
        priority,
        status,
        tags,
        metadata,
        created_by,
        updated_by,
        created_at,
        updated_at,
    })
}

fn system_row(v: &Value) -> Result<SystemRow, String> {
    if !v.is_object() {
        return Err("not an object".into());
    }
    let name = text(v, &["name"]).filter(|n| !n.is_empty() && n.len() <= 100).ok_or("name: 1 to 100 characters")?;
    let given = text(v, &["type", "system_type"]).unwrap_or_else(|| "tool".into()).to_ascii_lowercase();
    let system_type = storage::SystemType::parse(&given)
        .ok_or_else(|| format!("type: unknown type {given:?} ({})", storage::SystemType::choices()))?;
    let url = text(v, &["url"]).unwrap_or_default();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("url: {url:?} is not an http(s) URL"));
    }
    // A status the import does not know is a status nobody has checked yet.
    let status = text(v, &["status"])
        .and_then(|s| storage::SystemStatus::parse(&s.to_ascii_lowercase()))
        .unwrap_or(storage::SystemStatus::Unknown);
    let tags = match v.get("tags") {
        Some(Value::Array(a)) => a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    let created_at = time(v, &["createdAt", "created_at"]).unwrap_or_else(Utc::now);
    Ok(SystemRow {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        system_type,
        url,
        owner: text(v, &["owner"]).unwrap_or_default(),
        tags,
        status,
        last_check: None,
        created_at,
        updated_at: time(v, &["updatedAt", "updated_at"]).unwrap_or(created_at),
    })
}

/// Imports what `doc` holds. Errors only when the database fails; bad records are counted and named.
pub async fn import_lowdb(db: &Db, doc: &Value) -> Result<Report> {
    let obj = doc.as_object().context("the file is JSON but not a LowDB object ({\"items\":[...]} and the like)")?;
    let mut report = Report::default();
    let categories: Vec<String> = db.list_categories(true).await?.into_iter().map(|c| c.name).collect();
    for key in ["items", "ideas"] {
        let Some(list) = obj.get(key) else { continue };
        let list = list.as_array().with_context(|| format!("\"{key}\" is not a list"))?;
        for (i, v) in list.iter().enumerate() {
            let rid = record_id(v, i);
            let row = match idea_row(v, &categories) {
                Ok(r) => r,
                Err(why) => {
                    report.ideas.rejected.push(format!("{key} record {rid}: {why}"));
                    continue;
                }
            };
            let legacy = row.legacy_id.clone().unwrap_or_default();
            if db.idea_by_legacy_id(&legacy).await?.is_some() {
                report.ideas.already += 1;
                continue;
            }
            match db.create_idea(&row, "import", storage::IdeaAction::Import).await {
                Ok(_) => report.ideas.imported += 1,
                Err(StoreError::Conflict(_)) => report.ideas.already += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
    if let Some(list) = obj.get("systems") {
        let list = list.as_array().context("\"systems\" is not a list")?;
        let existing: Vec<String> = db.list_systems().await?.into_iter().map(|s| s.name).collect();
        for (i, v) in list.iter().enumerate() {
            let rid = record_id(v, i);
            match system_row(v) {
                Err(why) => report.systems.rejected.push(format!("systems record {rid}: {why}")),
                Ok(s) if existing.contains(&s.name) => report.systems.already += 1,
                Ok(s) => match db.create_system(&s).await {
                    Ok(_) => report.systems.imported += 1,
                    Err(StoreError::Conflict(_)) => report.systems.already += 1,
                    Err(e) => return Err(e.into()),
                },
            }
        }
    }
    for (k, v) in obj {
        if !["items", "ideas", "systems"].contains(&k.as_str()) {
            report.ignored.push((k.clone(), v.as_array().map_or(1, Vec::len)));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
        db.migrate().await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn all_three_shapes_idempotently_with_bad_records_named() {
        let (_dir, db) = db().await;
        let items = json!({"items": [
            {"id": "0b6f4c3e-1", "title": "Painel", "description": "d", "category": "dashboard", "priority": "high", "status": "review", "tags": ["ui"], "created_at": "2025-03-01T10:00:00Z"},
            {"id": "0b6f4c3e-2", "title": "", "description": "d", "category": "dashboard", "priority": "low"},
            {"id": "0b6f4c3e-3", "title": "t", "description": "d", "category": "dashboard", "priority": "urgent"},
        ]});
        let r = import_lowdb(&db, &items).await.unwrap();
        assert_eq!((r.ideas.imported, r.ideas.already), (1, 0));
        assert_eq!(r.ideas.rejected.len(), 2);
        assert!(r.ideas.rejected[0].contains("0b6f4c3e-2") && r.ideas.rejected[0].contains("title"));
        assert!(r.ideas.rejected[1].contains("0b6f4c3e-3") && r.ideas.rejected[1].contains("priority"));

        let legacy = json!({"ideas": [
            {"id": 1, "title": "Coletor", "description": "d", "category": "coleta-dados", "priority": "medium", "status": "in_progress", "createdAt": "2024-11-02T12:00:00.000Z", "updatedAt": null},
            {"id": 2, "title": "Sem categoria", "description": "d", "category": "marketing"},
        ]});
        let r = import_lowdb(&db, &legacy).await.unwrap();
        assert_eq!((r.ideas.imported, r.ideas.rejected.len()), (1, 1));
        let row = db.idea_by_legacy_id("1").await.unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.updated_at), ("in-progress", row.created_at), "updatedAt null → created");

        let registry = json!({"systems": [
            {"name": "Order Manager", "type": "api", "url": "http://localhost:5000/health", "owner": "desk"},
            {"name": "Broken", "type": "mainframe", "url": "http://x"},
        ], "ideas": [{"id": 9, "title": "Docs", "description": "d", "category": "documentacao"}], "settings": {"theme": "dark"}});
        let r = import_lowdb(&db, &registry).await.unwrap();
        assert_eq!((r.systems.imported, r.systems.rejected.len(), r.ideas.imported), (1, 1, 1));
        assert_eq!(r.ignored, vec![("settings".to_string(), 1)]);

        // Twice: nothing new.
        for doc in [&items, &legacy, &registry] {
            let again = import_lowdb(&db, doc).await.unwrap();
            assert_eq!((again.ideas.imported, again.systems.imported), (0, 0));
        }
        assert_eq!(db.idea_stats().await.unwrap().total, 3);
        assert!(import_lowdb(&db, &json!([1, 2])).await.is_err());
    }
}
