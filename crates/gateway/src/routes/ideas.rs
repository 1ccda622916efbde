//! The Idea Bank: ideas (CRUD, filters, real pagination, the status workflow on every change path, stats, the
//! audit trail) and categories.

use crate::auth::{AsAdmin, AsTrader, AsViewer, Authorized};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::query::{text, Limit, Offset, Q};
use crate::views::List;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use idea_bank::{Invalid, Priority, Status};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use storage::{Category, IdeaAction, IdeaFilter, IdeaRow};

fn invalid(e: Invalid) -> ApiError {
    ApiError::invalid(e.field, e.message)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IdeaView {
    id: String,
    title: String,
    description: String,
    category: String,
    priority: Priority,
    status: Status,
    tags: Vec<String>,
    #[schema(value_type = Object)]
    metadata: Value,
    created_by: String,
    updated_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<IdeaRow> for IdeaView {
    fn from(i: IdeaRow) -> Self {
        IdeaView {
            id: i.id,
            title: i.title,
            description: i.description,
            category: i.category,
            priority: i.priority,
            status: i.status,
            tags: i.tags,
            metadata: i.metadata,
            created_by: i.created_by,
            updated_by: i.updated_by,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIdea {
    title: String,
    description: String,
    category: String,
    #[serde(default = "medium")]
    priority: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    metadata: Value,
}

fn medium() -> String {
    "medium".into()
}

fn empty_object() -> Value {
    json!({})
}

/// A partial update: fields left out keep their values. A `status` here goes through the same workflow as
/// `POST /ideas/{id}/transition`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdeaPatch {
    title: Option<String>,
    description: Option<String>,
    category: Option<String>,
    priority: Option<String>,
    status: Option<String>,
    tags: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// The status to move to.
    status: String,
}

async fn check_category(st: &AppState, name: &str) -> ApiResult<String> {
    let name = name.trim().to_ascii_lowercase();
    match st.db.category(&name).await? {
        Some(c) if c.active => Ok(name),
        Some(_) => Err(ApiError::invalid("category", format!("category: {name:?} is inactive"))),
        None => Err(ApiError::invalid("category", format!("category: unknown category {name:?}"))),
    }
}

fn priority(p: &str) -> ApiResult<Priority> {
    Priority::parse(p).ok_or_else(|| ApiError::invalid("priority", "priority: low, medium, high or critical"))
}

fn status(s: &str) -> ApiResult<Status> {
    Status::parse(s)
        .ok_or_else(|| ApiError::invalid("status", "status: new, review, in-progress, completed or rejected"))
}

/// 409 naming the allowed moves.
fn moved(from: Status, to: Status) -> ApiResult<()> {
    idea_bank::check_transition(from, to).map_err(|e| {
        ApiError::new(StatusCode::CONFLICT, "ILLEGAL_TRANSITION", e.to_string())
            .with_details(json!({ "from": from.as_str(), "to": to.as_str(), "allowed": e.allowed() }))
    })
}

async fn load(st: &AppState, id: &str) -> ApiResult<IdeaRow> {
    st.db.idea(id).await?.ok_or_else(|| ApiError::not_found(format!("idea {id} not found")))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdeasQuery {
    category: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    tag: Option<String>,
    /// Text in title, description or tags.
    search: Option<String>,
    /// 1..1000, default 100.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit<100, 1000>,
    /// Default 0.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    offset: Offset,
}

#[utoipa::path(get, path = "/api/v1/ideas", tag = "ideas", summary = "Ideas, newest first",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(IdeasQuery),
    responses((status = 200, body = List<IdeaView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<IdeasQuery>,
) -> ApiResult<Json<List<IdeaView>>> {
    let f = IdeaFilter {
        category: text(&q.category).map(|c| c.to_ascii_lowercase()),
        status: text(&q.status).map(|s| status(&s)).transpose()?,
        priority: text(&q.priority).map(|p| priority(&p)).transpose()?,
        tag: text(&q.tag),
        search: text(&q.search),
        limit: q.limit.0 as i64,
        offset: q.offset.0 as i64,
    };
    let (rows, total) = st.db.list_ideas(&f).await?;
    Ok(Json(List { data: rows.into_iter().map(IdeaView::from).collect(), total: total as u64 }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IdeaStatsView {
    total: i64,
    #[schema(value_type = Object)]
    by_category: serde_json::Map<String, Value>,
    #[schema(value_type = Object)]
    by_status: serde_json::Map<String, Value>,
    #[schema(value_type = Object)]
    by_priority: serde_json::Map<String, Value>,
}

#[utoipa::path(get, path = "/api/v1/ideas/stats", tag = "ideas", summary = "Counts: total, by category, status and priority",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    responses((status = 200, body = IdeaStatsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn stats(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<IdeaStatsView>> {
    let s = st.db.idea_stats().await?;
    let map = |v: Vec<(String, i64)>| v.into_iter().map(|(k, n)| (k, json!(n))).collect();
    // Every status and priority appears, with 0 when none.
    let mut by_status: serde_json::Map<String, Value> =
        Status::ALL.iter().map(|s| (s.as_str().to_string(), json!(0))).collect();
    by_status.extend(map(s.by_status));
    let mut by_priority: serde_json::Map<String, Value> =
        Priority::ALL.iter().map(|p| (p.as_str().to_string(), json!(0))).collect();
    by_priority.extend(map(s.by_priority));
    Ok(Json(IdeaStatsView { total: s.total, by_category: map(s.by_category), by_status, by_priority }))
}

#[utoipa::path(post, path = "/api/v1/ideas", tag = "ideas", summary = "Create an idea (status new)",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), request_body = NewIdea,
    responses((status = 201, body = IdeaView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    Authorized(p): AsTrader,
    JsonBody(b, _): JsonBody<NewIdea>,
) -> ApiResult<(StatusCode, Json<IdeaView>)> {
    let title = idea_bank::check_title(&b.title).map_err(invalid)?;
    let description = idea_bank::check_description(&b.description).map_err(invalid)?;
    let category = check_category(&st, &b.category).await?;
    let priority = priority(&b.priority)?;
    let tags = idea_bank::check_tags(&b.tags).map_err(invalid)?;
    idea_bank::check_metadata(&b.metadata).map_err(invalid)?;
    let now = Utc::now();
    let idea = IdeaRow {
        id: uuid::Uuid::new_v4().to_string(),
        legacy_id: None,
        title,
        description,
        category,
        priority,
        status: Status::New,
        tags,
        metadata: b.metadata,
        created_by: p.name.clone(),
        updated_by: p.name.clone(),
        created_at: now,
        updated_at: now,
    };
    let idea = st.db.create_idea(&idea, &p.name, IdeaAction::Create).await?;
    Ok((StatusCode::CREATED, Json(idea.into())))
}

#[utoipa::path(get, path = "/api/v1/ideas/{id}", tag = "ideas", summary = "One idea",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("id" = String, Path)),
    responses((status = 200, body = IdeaView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<IdeaView>> {
    Ok(Json(load(&st, &id).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/ideas/{id}", tag = "ideas", summary = "Change an idea (partial; a status change follows the workflow)",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), params(("id" = String, Path)), request_body = IdeaPatch,
    responses((status = 200, body = IdeaView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "An illegal status move (details.allowed), or a concurrent change", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    Authorized(p): AsTrader,
    Path(id): Path<String>,
    JsonBody(b, _): JsonBody<IdeaPatch>,
) -> ApiResult<Json<IdeaView>> {
    let old = load(&st, &id).await?;
    let mut new = old.clone();
    if let Some(t) = &b.title {
        new.title = idea_bank::check_title(t).map_err(invalid)?;
    }
    if let Some(d) = &b.description {
        new.description = idea_bank::check_description(d).map_err(invalid)?;
    }
    if let Some(c) = &b.category {
        new.category = check_category(&st, c).await?;
    }
    if let Some(pr) = &b.priority {
        new.priority = priority(pr)?;
    }
    if let Some(t) = &b.tags {
        new.tags = idea_bank::check_tags(t).map_err(invalid)?;
    }
    if let Some(m) = b.metadata {
        idea_bank::check_metadata(&m).map_err(invalid)?;
        new.metadata = m;
    }
    if let Some(s) = &b.status {
        let to = status(s)?;
        moved(old.status, to)?;
        new.status = to;
    }
    new.updated_by = p.name.clone();
    new.updated_at = Utc::now();
    Ok(Json(st.db.update_idea(&old, &new, &p.name, IdeaAction::Update).await?.into()))
}

#[utoipa::path(post, path = "/api/v1/ideas/{id}/transition", tag = "ideas", summary = "Move an idea along the workflow",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), params(("id" = String, Path)), request_body = TransitionBody,
    responses((status = 200, body = IdeaView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Not allowed from the current status; details.allowed lists the moves that are", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn transition(
    State(st): State<AppState>,
    Authorized(p): AsTrader,
    Path(id): Path<String>,
    JsonBody(b, _): JsonBody<TransitionBody>,
) -> ApiResult<Json<IdeaView>> {
    let to = status(&b.status)?;
    let old = load(&st, &id).await?;
    moved(old.status, to)?;
    let new = IdeaRow { status: to, updated_by: p.name.clone(), updated_at: Utc::now(), ..old.clone() };
    Ok(Json(st.db.update_idea(&old, &new, &p.name, IdeaAction::Transition).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/ideas/{id}", tag = "ideas", summary = "Delete an idea (the audit trail keeps it)",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), params(("id" = String, Path)),
    responses((status = 200, body = IdeaView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    Authorized(p): AsTrader,
    Path(id): Path<String>,
) -> ApiResult<Json<IdeaView>> {
    Ok(Json(st.db.delete_idea(&id, &p.name).await?.into()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IdeaAuditView {
    id: i64,
    actor: String,
    action: IdeaAction,
    /// `{field: {old, new}}`.
    #[schema(value_type = Object)]
    changes: Value,
    ts: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/v1/ideas/{id}/audit", tag = "ideas", summary = "Every change of an idea: who, what, old and new values",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("id" = String, Path)),
    responses((status = 200, body = List<IdeaAuditView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn audit(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<List<IdeaAuditView>>> {
    let data: Vec<IdeaAuditView> = st
        .db
        .idea_audit(&id)
        .await?
        .into_iter()
        .map(|a| IdeaAuditView { id: a.id, actor: a.actor, action: a.action, changes: a.changes, ts: a.ts })
        .collect();
    if data.is_empty() {
        return Err(ApiError::not_found(format!("idea {id} not found")));
    }
    Ok(Json(List { total: data.len() as u64, data }))
}

// ---- categories ----

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategoryView {
    name: String,
    display_name: String,
    #[serde(default)]
    description: String,
    /// #RRGGBB.
    color: String,
    #[serde(default)]
    order: i64,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

impl From<Category> for CategoryView {
    fn from(c: Category) -> Self {
        CategoryView {
            name: c.name,
            display_name: c.display_name,
            description: c.description,
            color: c.color,
            order: c.sort_order,
            active: c.active,
        }
    }
}

fn check_category_body(c: &CategoryView) -> ApiResult<()> {
    idea_bank::check_category_name(&c.name).map_err(invalid)?;
    if c.display_name.trim().is_empty() || c.display_name.chars().count() > 100 {
        return Err(ApiError::invalid("display_name", "display_name: 1 to 100 characters"));
    }
    if c.description.chars().count() > 500 {
        return Err(ApiError::invalid("description", "description: at most 500 characters"));
    }
    idea_bank::check_color(&c.color).map_err(invalid)
}

#[utoipa::path(get, path = "/api/v1/categories", tag = "ideas", summary = "Idea categories",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    responses((status = 200, body = List<CategoryView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_categories(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
) -> ApiResult<Json<List<CategoryView>>> {
    let data: Vec<CategoryView> = st.db.list_categories(false).await?.into_iter().map(CategoryView::from).collect();
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(post, path = "/api/v1/categories", tag = "ideas", summary = "Create a category",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), request_body = CategoryView,
    responses((status = 201, body = CategoryView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_category(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    JsonBody(b, _): JsonBody<CategoryView>,
) -> ApiResult<(StatusCode, Json<CategoryView>)> {
    check_category_body(&b)?;
    let now = Utc::now();
    let c = Category {
        name: b.name,
        display_name: b.display_name.trim().into(),
        description: b.description,
        color: b.color.to_ascii_uppercase(),
        sort_order: b.order,
        active: b.active,
        created_at: now,
        updated_at: now,
    };
    Ok((StatusCode::CREATED, Json(st.db.create_category(&c).await?.into())))
}

#[utoipa::path(get, path = "/api/v1/categories/{name}", tag = "ideas", summary = "One category",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("name" = String, Path)),
    responses((status = 200, body = CategoryView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_category(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Path(name): Path<String>,
) -> ApiResult<Json<CategoryView>> {
    let c = st.db.category(&name).await?.ok_or_else(|| ApiError::not_found(format!("category {name} not found")))?;
    Ok(Json(c.into()))
}

#[utoipa::path(put, path = "/api/v1/categories/{name}", tag = "ideas", summary = "Change a category (deactivate with active: false)",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("name" = String, Path)), request_body = CategoryView,
    responses((status = 200, body = CategoryView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_category(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    Path(name): Path<String>,
    JsonBody(b, _): JsonBody<CategoryView>,
) -> ApiResult<Json<CategoryView>> {
    check_category_body(&b)?;
    if b.name != name {
        return Err(ApiError::invalid("name", "name: a category cannot be renamed; create a new one"));
    }
    let old = st.db.category(&name).await?.ok_or_else(|| ApiError::not_found(format!("category {name} not found")))?;
    let c = Category {
        display_name: b.display_name.trim().into(),
        description: b.description,
        color: b.color.to_ascii_uppercase(),
        sort_order: b.order,
        active: b.active,
        updated_at: Utc::now(),
        ..old
    };
    Ok(Json(st.db.update_category(&c).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/categories/{name}", tag = "ideas", summary = "Delete an unused category",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Ideas use it: deactivate it instead", body = ErrorBody)))]
pub async fn delete_category(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    st.db.delete_category(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
