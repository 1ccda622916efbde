//! The Documentation API: search, facets and documents from the indexed Markdown folder, reindexing, and the
//! systems registry with health probes.

use crate::auth::{AsTrader, AsViewer, Authorized};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::query::{text, Limit, Q};
use crate::views::List;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use docs_index::{DocsError, Facets, Hit, Query, ReindexReport};
use serde::{Deserialize, Serialize};
use serde_json::Value;

impl From<DocsError> for ApiError {
    fn from(e: DocsError) -> Self {
        match e {
            DocsError::NotFound(p) => ApiError::not_found(format!("document {p} not found")),
            DocsError::TooSoon(s) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "REINDEX_TOO_SOON",
                format!("the index was rebuilt {s} s ago; at most one reindex a minute (changed files are picked up on their own)"),
            )
            .with_details(serde_json::json!({ "retry_after_seconds": 60 - s.min(60) })),
            other => {
                tracing::error!(error = %other, "documentation index");
                ApiError::unavailable("the documentation index is unavailable")
            }
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HitView {
    path: String,
    title: String,
    summary: String,
    domain: Option<String>,
    #[serde(rename = "type")]
    doc_type: Option<String>,
    tags: Vec<String>,
    status: String,
    /// Higher is better (BM25, title weighted ten times the body).
    score: f64,
    /// HTML: escaped text with `<mark>` around the matches.
    snippet: String,
}

impl From<Hit> for HitView {
    fn from(h: Hit) -> Self {
        HitView {
            path: h.path,
            title: h.title,
            summary: h.summary,
            domain: h.domain,
            doc_type: h.doc_type,
            tags: h.tags,
            status: h.status,
            score: h.score,
            snippet: h.snippet,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words (accents do not matter; each is prefix-matched).
    q: Option<String>,
    domain: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    doc_type: Option<String>,
    /// Comma-separated; all must be present.
    tags: Option<String>,
    status: Option<String>,
    /// 1..100, default 20.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit<20, 100>,
}

#[utoipa::path(get, path = "/api/v1/docs/search", tag = "docs", summary = "Full-text search, ranked, with highlighted snippets",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(SearchQuery),
    responses((status = 200, body = List<HitView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn search(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<SearchQuery>,
) -> ApiResult<Json<List<HitView>>> {
    let query = Query {
        q: text(&q.q).unwrap_or_default(),
        domain: text(&q.domain),
        doc_type: text(&q.doc_type),
        tags: text(&q.tags)
            .map(|t| t.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
            .unwrap_or_default(),
        status: text(&q.status),
        limit: q.limit.0,
    };
    if query.q.len() > 500 {
        return Err(ApiError::invalid("q", "q: at most 500 characters"));
    }
    let started = std::time::Instant::now();
    let (hits, total) = st.docs.search(&query).await?;
    metrics::histogram!("ts_docs_search_seconds").record(started.elapsed().as_secs_f64());
    Ok(Json(List { data: hits.into_iter().map(HitView::from).collect(), total }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FacetsView {
    #[schema(value_type = Object)]
    domain: Value,
    #[serde(rename = "type")]
    #[schema(value_type = Object)]
    doc_type: Value,
    #[schema(value_type = Object)]
    tags: Value,
    #[schema(value_type = Object)]
    status: Value,
}

#[utoipa::path(get, path = "/api/v1/docs/facets", tag = "docs", summary = "Document counts per domain, type, tag and status",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    responses((status = 200, body = FacetsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn facets(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<FacetsView>> {
    let f: Facets = st.docs.facets().await?;
    let j = |m| serde_json::to_value(m).unwrap_or_default();
    Ok(Json(FacetsView { domain: j(f.domain), doc_type: j(f.doc_type), tags: j(f.tags), status: j(f.status) }))
}

#[utoipa::path(get, path = "/api/v1/docs/documents/{path}", tag = "docs", summary = "One document: front matter, Markdown and rendered HTML",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("path" = String, Path, description = "Relative path, such as ops/backup.md")),
    responses((status = 200, description = "{path, front_matter, markdown, html}"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn document(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Path(path): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(st.docs.document(&path).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReindexView {
    documents: usize,
    /// [path, why] for files left out.
    #[schema(value_type = Vec<Vec<String>>)]
    skipped: Vec<(String, String)>,
    millis: u64,
}

#[utoipa::path(post, path = "/api/v1/docs/reindex", tag = "docs", summary = "Rebuild the index now (at most once a minute)",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])),
    responses((status = 200, body = ReindexView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 429, description = "A reindex ran less than a minute ago", body = ErrorBody)))]
pub async fn reindex(State(st): State<AppState>, Authorized(_): AsTrader) -> ApiResult<Response> {
    match st.docs.reindex_requested().await {
        Ok(ReindexReport { documents, skipped, millis }) => {
            Ok(Json(ReindexView { documents, skipped, millis }).into_response())
        }
        Err(DocsError::TooSoon(s)) => {
            let mut resp = ApiError::from(DocsError::TooSoon(s)).into_response();
            if let Ok(v) = http::HeaderValue::from_str(&(60 - s.min(59)).to_string()) {
                resp.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}
