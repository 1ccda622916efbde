//! The Documentation API's index: Markdown files with YAML front matter under one folder, searchable.
//!
//! The engine is tantivy, in memory: the index is derived from the files and rebuilt at will, so it needs no
//! storage of its own. Ranking is BM25 with a weight per field (title first), computed from term frequencies and
//! field norms kept in compact blocks, so even a word found in every document ranks 10,000 of them in about a
//! millisecond (BENCHMARKS.md).
//! Words are lower-cased and accent-folded on both sides, so "gestao" finds "Gestão" in Portuguese and English
//! text alike. Queries are built term by term from the user's words, so no user input reaches a query language.

mod engine;
mod front_matter;

use engine::Snapshot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

pub use front_matter::{parse_document, Document, FrontMatterError};

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("index: {0}")]
    Internal(String),
    #[error("docs folder {0}: {1}")]
    Io(String, std::io::Error),
    #[error("document {0} not found")]
    NotFound(String),
    #[error("a reindex ran {0} s ago; at most one a minute")]
    TooSoon(u64),
}

impl From<std::io::Error> for DocsError {
    fn from(e: std::io::Error) -> Self {
        DocsError::Io("index".into(), e)
    }
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
    current: RwLock<Arc<Snapshot>>,
    /// Held for the whole of a reindex: one at a time, and the fingerprint always describes the current snapshot.
    reindex: tokio::sync::Mutex<ReindexState>,
}

#[derive(Default)]
struct ReindexState {
    last: Option<Instant>,
    fingerprint: Vec<(PathBuf, SystemTime, u64)>,
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

/// Reads and parses the files and indexes them. Blocking.
fn load(root: &Path, files: &[(PathBuf, SystemTime, u64)]) -> Result<(Snapshot, ReindexReport), DocsError> {
    let started = Instant::now();
    let mut report = ReindexReport::default();
    let mut docs = Vec::with_capacity(files.len());
    for (path, _, _) in files {
        let rel = path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/");
        match std::fs::read_to_string(path) {
            Err(e) => report.skipped.push((rel, e.to_string())),
            Ok(text) => match parse_document(&text) {
                Err(e) => report.skipped.push((rel, e.to_string())),
                Ok(doc) => docs.push((rel, doc)),
            },
        }
    }
    report.documents = docs.len();
    let snapshot = Snapshot::build(docs)?;
    report.millis = started.elapsed().as_millis() as u64;
    Ok((snapshot, report))
}

/// Runs CPU-bound index work on the blocking pool, so a big reindex or search does not stall the runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DocsError> + Send + 'static,
) -> Result<T, DocsError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| DocsError::Internal(format!("index task failed: {e}")))?
}

impl DocsIndex {
    /// Indexes the Markdown files under `root` (none yet if it does not exist).
    pub async fn open(root: &Path) -> Result<DocsIndex, DocsError> {
        let root = root.to_path_buf();
        let empty = blocking(|| Snapshot::build(Vec::new())).await?;
        let idx = DocsIndex {
            root,
            current: RwLock::new(Arc::new(empty)),
            reindex: tokio::sync::Mutex::new(ReindexState::default()),
        };
        idx.reindex_now().await?;
        Ok(idx)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        // A poisoned lock still holds a whole snapshot: the swap is a single assignment.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A reindex asked for by a user: at most one a minute.
    pub async fn reindex_requested(&self) -> Result<ReindexReport, DocsError> {
        let mut state = self.reindex.lock().await;
        if let Some(t) = state.last {
            let ago = t.elapsed();
            if ago < Duration::from_secs(60) {
                return Err(DocsError::TooSoon(ago.as_secs()));
            }
        }
        self.rebuild(&mut state).await
    }

    /// Reindexes when a file was added, removed or changed since the last index; `None` when nothing changed.
    pub async fn reindex_if_changed(&self) -> Result<Option<ReindexReport>, DocsError> {
        let mut state = self.reindex.lock().await;
        let root = self.root.clone();
        // Walking the tree is file I/O: on the blocking pool, like the rebuild.
        if blocking(move || scan(&root)).await? == state.fingerprint {
            return Ok(None);
        }
        self.rebuild(&mut state).await.map(Some)
    }

    /// Rebuilds the index from the files and swaps it in whole (searches see the old or the new index, never half).
    pub async fn reindex_now(&self) -> Result<ReindexReport, DocsError> {
        let mut state = self.reindex.lock().await;
        self.rebuild(&mut state).await
    }

    async fn rebuild(&self, state: &mut ReindexState) -> Result<ReindexReport, DocsError> {
        let root = self.root.clone();
        let (files, snapshot, report) = blocking(move || {
            let files = scan(&root)?;
            let (snapshot, report) = load(&root, &files)?;
            Ok((files, snapshot, report))
        })
        .await?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        state.fingerprint = files;
        state.last = Some(Instant::now());
        tracing::info!(
            documents = report.documents,
            skipped = report.skipped.len(),
            ms = report.millis,
            "docs indexed"
        );
        Ok(report)
    }

    /// Ranked hits (at most `q.limit`, 1..100) and how many documents match in all.
    pub async fn search(&self, q: &Query) -> Result<(Vec<Hit>, u64), DocsError> {
        let snapshot = self.snapshot();
        let q = q.clone();
        blocking(move || snapshot.search(&q)).await
    }

    pub async fn facets(&self) -> Result<Facets, DocsError> {
        Ok(self.snapshot().facets.clone())
    }

    /// The front matter, the Markdown and the rendered HTML of one document.
    pub async fn document(&self, path: &str) -> Result<serde_json::Value, DocsError> {
        let snapshot = self.snapshot();
        let entry = snapshot.get(path.trim_start_matches('/')).ok_or_else(|| DocsError::NotFound(path.to_string()))?;
        let markdown = &entry.doc.body;
        let mut html = String::with_capacity(markdown.len() * 3 / 2);
        // Raw HTML in a document is shown as text, not run: the page shows documents, it does not trust them.
        let events =
            pulldown_cmark::Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES).map(|e| match e {
                pulldown_cmark::Event::Html(t) | pulldown_cmark::Event::InlineHtml(t) => pulldown_cmark::Event::Text(t),
                other => other,
            });
        pulldown_cmark::html::push_html(&mut html, events);
        Ok(serde_json::json!({
            "path": entry.path,
            "front_matter": entry.doc.front_matter,
            "markdown": markdown,
            "html": html,
        }))
    }

    pub async fn count(&self) -> Result<u64, DocsError> {
        Ok(self.snapshot().docs.len() as u64)
    }
}

#[cfg(test)]
mod tests;
