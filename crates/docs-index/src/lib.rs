//! The Documentation API's index: Markdown files with YAML front matter under one folder, searchable.
//!
//! The engine is SQLite's FTS5, in a SQLite file of its own beside the data (the index is derived from the files
//! and rebuilt at will, so it does not belong in the main database, whichever that is). FTS5 is compiled into the
//! SQLite we already ship, ranks with BM25 with a weight per column (title first), highlights snippets, and its
//! `unicode61 remove_diacritics 2` tokenizer folds accents, so "gestao" finds "Gestão" in Portuguese and English
//! text alike. Queries are built from words only (each quoted, prefix-matched), so no user input reaches FTS5's
//! query syntax.

mod front_matter;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

pub use front_matter::{parse_document, Document, FrontMatterError};

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("index: {0}")]
    Db(#[from] sqlx::Error),
    #[error("docs folder {0}: {1}")]
    Io(String, std::io::Error),
    #[error("document {0} not found")]
    NotFound(String),
    #[error("a reindex ran {0} s ago; at most one a minute")]
    TooSoon(u64),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    pub path: String,
    pub title: String,
    pub summary: String,
    pub domain: Option<String>,
    #[serde(rename = "type")]
    pub doc_type: Option<String>,
    pub tags: Vec<String>,
    pub status: String,
    /// Higher is better.
    pub score: f64,
    /// Matching text with `<mark>` around the hits (HTML-escaped otherwise).
    pub snippet: String,
}

#[derive(Debug, Clone, Default)]
pub struct Query {
    pub q: String,
    pub domain: Option<String>,
    pub doc_type: Option<String>,
    pub tags: Vec<String>,
    pub status: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Facets {
    pub domain: BTreeMap<String, u64>,
    #[serde(rename = "type")]
    pub doc_type: BTreeMap<String, u64>,
    pub tags: BTreeMap<String, u64>,
    pub status: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReindexReport {
    pub documents: usize,
    /// Files skipped, with why (no front matter, no title, unreadable).
    pub skipped: Vec<(String, String)>,
    pub millis: u64,
}

pub struct DocsIndex {
    root: PathBuf,
    pool: SqlitePool,
    last_reindex: tokio::sync::Mutex<Option<Instant>>,
    fingerprint: tokio::sync::Mutex<Vec<(PathBuf, SystemTime, u64)>>,
}

/// Words of a query, folded the way the index folds them, each quoted and prefix-matched.
/// The last word is prefix-matched (people type words partly), the others must match whole.
fn fts_query(q: &str) -> Option<String> {
    let words: Vec<&str> = q.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).take(16).collect();
    let last = words.len().checked_sub(1)?;
    let terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let w = w.to_lowercase();
            if i == last && w.chars().count() >= 2 {
                format!("\"{w}\"*")
            } else {
                format!("\"{w}\"")
            }
        })
        .collect();
    Some(terms.join(" "))
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Markdown files under `root`, sorted, with their modification time and size.
fn scan(root: &Path) -> Result<Vec<(PathBuf, SystemTime, u64)>, DocsError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if dir == root && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(DocsError::Io(dir.display().to_string(), e)),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("md")) {
                out.push((path, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl DocsIndex {
    /// Opens (creating) the index file and indexes `root` once.
    pub async fn open(root: &Path, index_file: &Path) -> Result<DocsIndex, DocsError> {
        if let Some(parent) = index_file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DocsError::Io(parent.display().to_string(), e))?;
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", index_file.display()))?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Off);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        // The index is derived from the files: start from a fresh schema every time.
        for stmt in [
            "DROP TABLE IF EXISTS docs",
            "DROP TABLE IF EXISTS docs_fts",
            "CREATE TABLE IF NOT EXISTS docs (path TEXT PRIMARY KEY, title TEXT NOT NULL, summary TEXT NOT NULL, \
             domain TEXT, doc_type TEXT, tags TEXT NOT NULL, status TEXT NOT NULL, last_review TEXT, \
             sidebar_position INTEGER, markdown TEXT NOT NULL, front_matter TEXT NOT NULL)",
            // Prefix indexes make "gest*" a lookup rather than a scan of every term starting with it.
            // The filter columns ride along unindexed, so a filtered search is one FTS5 query, not a join.
            "CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(path UNINDEXED, domain UNINDEXED, \
             doc_type UNINDEXED, status UNINDEXED, tags UNINDEXED, title, summary, headings, body, \
             tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4')",
        ] {
            sqlx::query(stmt).execute(&pool).await?;
        }
        // The weights of `rank`: title ten times the body, summary and tags four, headings three.
        sqlx::query("INSERT INTO docs_fts (docs_fts, rank) VALUES ('rank', 'bm25(0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 4.0, 3.0, 1.0)')")
            .execute(&pool)
            .await?;
        let idx = DocsIndex {
            root: root.to_path_buf(),
            pool,
            last_reindex: tokio::sync::Mutex::new(None),
            fingerprint: tokio::sync::Mutex::new(Vec::new()),
        };
        idx.reindex_now().await?;
        Ok(idx)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A reindex asked for by a user: at most one a minute.
    pub async fn reindex_requested(&self) -> Result<ReindexReport, DocsError> {
        {
            let last = self.last_reindex.lock().await;
            if let Some(t) = *last {
                let ago = t.elapsed();
                if ago < Duration::from_secs(60) {
                    return Err(DocsError::TooSoon(ago.as_secs()));
                }
            }
        }
        self.reindex_now().await
    }

    /// Reindexes when a file was added, removed or changed since the last index; `None` when nothing changed.
    pub async fn reindex_if_changed(&self) -> Result<Option<ReindexReport>, DocsError> {
        let now = scan(&self.root)?;
        if *self.fingerprint.lock().await == now {
            return Ok(None);
        }
        self.reindex_now().await.map(Some)
    }

    /// Rebuilds the index from the files, in one transaction (searches see the old or the new index, never half).
    pub async fn reindex_now(&self) -> Result<ReindexReport, DocsError> {
        let started = Instant::now();
        let files = scan(&self.root)?;
        let mut report = ReindexReport::default();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM docs").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM docs_fts").execute(&mut *tx).await?;
        for (path, _, _) in &files {
            let rel = path.strip_prefix(&self.root).unwrap_or(path).to_string_lossy().replace('\\', "/");
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    report.skipped.push((rel, e.to_string()));
                    continue;
                }
            };
            let doc = match parse_document(&text) {
                Ok(d) => d,
                Err(e) => {
                    report.skipped.push((rel, e.to_string()));
                    continue;
                }
            };
            sqlx::query(
                "INSERT INTO docs (path, title, summary, domain, doc_type, tags, status, last_review, sidebar_position, \
                 markdown, front_matter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&rel)
            .bind(&doc.title)
            .bind(&doc.summary)
            .bind(&doc.domain)
            .bind(&doc.doc_type)
            .bind(serde_json::to_string(&doc.tags).unwrap_or_else(|_| "[]".into()))
            .bind(&doc.status)
            .bind(&doc.last_review)
            .bind(doc.sidebar_position)
            .bind(&doc.body)
            .bind(doc.front_matter.to_string())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO docs_fts (path, domain, doc_type, status, tags, title, summary, headings, body) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&rel)
            .bind(&doc.domain)
            .bind(&doc.doc_type)
            .bind(&doc.status)
            .bind(serde_json::to_string(&doc.tags).unwrap_or_else(|_| "[]".into()))
            .bind(&doc.title)
            .bind(format!("{} {}", doc.summary, doc.tags.join(" ")))
            .bind(doc.headings.join("\n"))
            .bind(&doc.body)
            .execute(&mut *tx)
            .await?;
            report.documents += 1;
        }
        tx.commit().await?;
        *self.fingerprint.lock().await = files;
        *self.last_reindex.lock().await = Some(Instant::now());
        report.millis = started.elapsed().as_millis() as u64;
        tracing::info!(
            documents = report.documents,
            skipped = report.skipped.len(),
            ms = report.millis,
            "docs indexed"
        );
        Ok(report)
    }

    pub async fn search(&self, q: &Query) -> Result<(Vec<Hit>, u64), DocsError> {
        let mut filters: Vec<String> = Vec::new();
        let mut args: Vec<String> = Vec::new();
        for (col, v) in [("domain", &q.domain), ("doc_type", &q.doc_type), ("status", &q.status)] {
            if let Some(v) = v {
                filters.push(format!("{col} = ?"));
                args.push(v.clone());
            }
        }
        for t in &q.tags {
            filters.push("tags LIKE ? ESCAPE '\\'".into());
            let quoted = serde_json::to_string(t).unwrap_or_default();
            args.push(format!("%{}%", quoted.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
        }
        let limit = q.limit.clamp(1, 100) as i64;
        let Some(matched) = fts_query(&q.q) else {
            return self.browse(&filters, &args, limit).await;
        };
        let restrict: String = filters.iter().map(|f| format!(" AND {f}")).collect();
        // Ranking first, over row ids only: snippets are the costly part, so they are made for the page alone.
        // Title counts ten times the body, the summary and tags four times, headings three times.
        let rank_sql = format!(
            "SELECT rowid, -rank AS score FROM docs_fts WHERE docs_fts MATCH ?{restrict} ORDER BY rank LIMIT ?"
        );
        let count_sql = format!("SELECT COUNT(*) FROM docs_fts WHERE docs_fts MATCH ?{restrict}");
        let mut rank = sqlx::query(&rank_sql).bind(&matched);
        let mut count = sqlx::query(&count_sql).bind(&matched);
        for a in &args {
            rank = rank.bind(a);
            count = count.bind(a);
        }
        let top = rank.bind(limit).fetch_all(&self.pool).await?;
        let total: i64 = count.fetch_one(&self.pool).await?.try_get(0)?;
        if top.is_empty() {
            return Ok((Vec::new(), total as u64));
        }
        let ids: Vec<i64> = top.iter().map(|r| r.try_get::<i64, _>(0)).collect::<Result<_, _>>()?;
        let scores: std::collections::HashMap<i64, f64> = top
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<f64, _>(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let placeholders = vec!["?"; ids.len()].join(", ");
        let page_sql = format!(
            "SELECT f.rowid AS id, d.path, d.title, d.summary, d.domain, d.doc_type, d.tags, d.status, \
             snippet(docs_fts, -1, char(1), char(2), '…', 24) AS snippet \
             FROM docs_fts f JOIN docs d ON d.path = f.path WHERE docs_fts MATCH ? AND f.rowid IN ({placeholders})"
        );
        let mut page = sqlx::query(&page_sql).bind(&matched);
        for id in &ids {
            page = page.bind(id);
        }
        let rows = page.fetch_all(&self.pool).await?;
        let mut hits: Vec<(usize, Hit)> = rows
            .iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let score = scores.get(&id).copied().unwrap_or_default();
                let order = ids.iter().position(|x| *x == id).unwrap_or(usize::MAX);
                Ok((order, Self::hit(r, score)?))
            })
            .collect::<Result<_, sqlx::Error>>()?;
        hits.sort_by_key(|(order, _)| *order);
        Ok((hits.into_iter().map(|(_, h)| h).collect(), total as u64))
    }

    /// No words: the filtered documents by title, with their summaries.
    async fn browse(&self, filters: &[String], args: &[String], limit: i64) -> Result<(Vec<Hit>, u64), DocsError> {
        let filter = if filters.is_empty() { String::new() } else { format!(" WHERE {}", filters.join(" AND ")) };
        let sql = format!(
            "SELECT path, title, summary, domain, doc_type, tags, status, summary AS snippet FROM docs{filter} \
             ORDER BY title LIMIT ?"
        );
        let count_sql = format!("SELECT COUNT(*) FROM docs{filter}");
        let mut query = sqlx::query(&sql);
        let mut count = sqlx::query(&count_sql);
        for a in args {
            query = query.bind(a);
            count = count.bind(a);
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        let total: i64 = count.fetch_one(&self.pool).await?.try_get(0)?;
        let hits = rows.iter().map(|r| Self::hit(r, 0.0)).collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((hits, total as u64))
    }

    fn hit(r: &sqlx::sqlite::SqliteRow, score: f64) -> Result<Hit, sqlx::Error> {
        let tags: String = r.try_get("tags")?;
        let raw: String = r.try_get("snippet")?;
        // Escape the text, then turn the markers FTS5 put around matches into <mark>.
        let snippet = escape_html(&raw).replace('\u{1}', "<mark>").replace('\u{2}', "</mark>");
        Ok(Hit {
            path: r.try_get("path")?,
            title: r.try_get("title")?,
            summary: r.try_get("summary")?,
            domain: r.try_get("domain")?,
            doc_type: r.try_get("doc_type")?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            status: r.try_get("status")?,
            score,
            snippet,
        })
    }

    pub async fn facets(&self) -> Result<Facets, DocsError> {
        let rows = sqlx::query("SELECT domain, doc_type, tags, status FROM docs").fetch_all(&self.pool).await?;
        let mut f = Facets::default();
        for r in rows {
            if let Some(d) = r.try_get::<Option<String>, _>("domain")? {
                *f.domain.entry(d).or_default() += 1;
            }
            if let Some(t) = r.try_get::<Option<String>, _>("doc_type")? {
                *f.doc_type.entry(t).or_default() += 1;
            }
            *f.status.entry(r.try_get::<String, _>("status")?).or_default() += 1;
            let tags: Vec<String> = serde_json::from_str(&r.try_get::<String, _>("tags")?).unwrap_or_default();
            for t in tags {
                *f.tags.entry(t).or_default() += 1;
            }
        }
        Ok(f)
    }

    /// The front matter, the Markdown and the rendered HTML of one document.
    pub async fn document(&self, path: &str) -> Result<serde_json::Value, DocsError> {
        let row = sqlx::query("SELECT path, front_matter, markdown FROM docs WHERE path = ?")
            .bind(path.trim_start_matches('/'))
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DocsError::NotFound(path.to_string()))?;
        let markdown: String = row.try_get("markdown")?;
        let mut html = String::with_capacity(markdown.len() * 3 / 2);
        // Raw HTML in a document is shown as text, not run: the page shows documents, it does not trust them.
        let events =
            pulldown_cmark::Parser::new_ext(&markdown, pulldown_cmark::Options::ENABLE_TABLES).map(|e| match e {
                pulldown_cmark::Event::Html(t) | pulldown_cmark::Event::InlineHtml(t) => pulldown_cmark::Event::Text(t),
                other => other,
            });
        pulldown_cmark::html::push_html(&mut html, events);
        let front: serde_json::Value =
            serde_json::from_str(&row.try_get::<String, _>("front_matter")?).unwrap_or_default();
        Ok(serde_json::json!({
            "path": row.try_get::<String, _>("path")?,
            "front_matter": front,
            "markdown": markdown,
            "html": html,
        }))
    }

    pub async fn count(&self) -> Result<u64, DocsError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM docs").fetch_one(&self.pool).await?.try_get::<i64, _>(0)? as u64)
    }
}

#[cfg(test)]
mod tests;
