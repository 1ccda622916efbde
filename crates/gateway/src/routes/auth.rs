use crate::auth::{
    check_password_policy, check_username, hash_password, new_api_key, verify_password, AsAdmin, AsViewer, Authorized,
    Role,
};
use crate::body::JsonBody;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::views::List;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    token: String,
    expires_at: DateTime<Utc>,
    role: Role,
}

/// Verifying against this when the user does not exist keeps "no such user" as slow as "wrong password".
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_password("not-a-real-password").unwrap_or_default());

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", summary = "Log in: a bearer token for the API and the WebSocket", security(()), request_body = LoginBody, responses((status = 200, body = LoginResponse), (status = 401, description = "Wrong user name or password", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn login(State(st): State<AppState>, JsonBody(b, _): JsonBody<LoginBody>) -> ApiResult<Json<LoginResponse>> {
    let user = st.db.user_by_name(&b.username).await?;
    let (hash, found) = match &user {
        Some(u) if !u.disabled => (u.password_hash.clone(), true),
        _ => (DUMMY_HASH.clone(), false),
    };
    let password = b.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(|_| ApiError::internal("password check failed"))?;
    let user = match (user, ok && found) {
        (Some(u), true) => u,
        _ => {
            metrics::counter!("ts_login_failures_total").increment(1);
            return Err(ApiError::unauthorized("invalid username or password"));
        }
    };
    let role = user.role;
    let (token, expires_at) = st.jwt.issue(&user.username, role, user.token_version).map_err(ApiError::internal)?;
    tracing::info!(user = %user.username, "login");
    Ok(Json(LoginResponse { token, expires_at, role }))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", summary = "A fresh token for the holder of a valid one, with the current role", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), responses((status = 200, body = LoginResponse), (status = 400, description = "An API key has nothing to refresh", body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// `POST /api/v1/auth/refresh`: a fresh token for the holder of a valid one, with the user's current role (a
/// disabled or deleted user gets 401). API keys do not expire and have nothing to refresh.
pub async fn refresh(State(st): State<AppState>, Authorized(principal): AsViewer) -> ApiResult<Json<LoginResponse>> {
    if !principal.session {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NOT_A_SESSION",
            "only bearer tokens are refreshed; API keys do not expire",
        ));
    }
    let user = st.db.user_by_name(&principal.name).await?;
    let user = user.filter(|u| !u.disabled).ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    let role = user.role;
    let (token, expires_at) = st.jwt.issue(&user.username, role, user.token_version).map_err(ApiError::internal)?;
    Ok(Json(LoginResponse { token, expires_at, role }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    id: String,
    username: String,
    role: Role,
    created_at: DateTime<Utc>,
    disabled: bool,
}

impl From<storage::User> for UserView {
    fn from(u: storage::User) -> Self {
        UserView { id: u.id, username: u.username, role: u.role, created_at: u.created_at, disabled: u.disabled }
    }
}

#[utoipa::path(get, path = "/api/v1/users", tag = "auth", summary = "List users", security(("bearer" = ["admin"]), ("api_key" = ["admin"])), responses((status = 200, body = List<UserView>), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn list_users(State(st): State<AppState>, Authorized(_): AsAdmin) -> ApiResult<Json<List<UserView>>> {
    let users: Vec<UserView> = st.db.list_users().await?.into_iter().map(UserView::from).collect();
    Ok(Json(List { total: users.len() as u64, data: users }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    role: Role,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "auth", summary = "Create a user", security(("bearer" = ["admin"]), ("api_key" = ["admin"])), request_body = NewUser, responses((status = 201, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn create_user(
    State(st): State<AppState>,
    Authorized(principal): AsAdmin,
    JsonBody(b, _): JsonBody<NewUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    check_username(&b.username).map_err(|m| ApiError::invalid("username", format!("username: {m}")))?;
    check_password_policy(&b.password).map_err(|m| ApiError::invalid("password", format!("password: {m}")))?;
    let password = b.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ApiError::internal("hashing failed"))?
        .map_err(ApiError::internal)?;
    let user = st.db.create_user(&b.username, &hash, b.role).await?;
    tracing::info!(user = %user.username, role = %user.role, by = %principal.name, "user created");
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `true` ends the user's sessions at once and refuses logins; `false` lets the user log in again.
    disabled: Option<bool>,
    /// The new role; it applies to the user's open sessions from their next request.
    role: Option<Role>,
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "auth", summary = "Disable or enable a user, or change its role (effective on the next request)", security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("id" = String, Path, description = "User id or user name")), request_body = UserPatch, responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, description = "It would leave no enabled admin", body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn update_user(
    State(st): State<AppState>,
    Authorized(principal): AsAdmin,
    Path(id): Path<String>,
    JsonBody(b, _): JsonBody<UserPatch>,
) -> ApiResult<Json<UserView>> {
    if b.disabled.is_none() && b.role.is_none() {
        return Err(ApiError::invalid("body", "send disabled and/or role"));
    }
    let user =
        st.db.user_by_id_or_name(&id).await?.ok_or_else(|| ApiError::not_found(format!("user {id} not found")))?;
    let loses_admin = user.role == Role::Admin
        && !user.disabled
        && (b.disabled == Some(true) || b.role.is_some_and(|r| r != Role::Admin));
    if loses_admin {
        if user.username == principal.name {
            return Err(ApiError::invalid(
                if b.disabled == Some(true) { "disabled" } else { "role" },
                "you cannot disable or demote yourself; another admin can",
            ));
        }
        let admins = st.db.list_users().await?.into_iter().filter(|u| u.role == Role::Admin && !u.disabled).count();
        if admins <= 1 {
            return Err(ApiError::conflict(format!("{} is the last enabled admin", user.username)));
        }
    }
    let updated = st.db.update_user(&user.id, b.disabled, b.role).await?;
    st.auth_cache.forget_user(&updated.username);
    tracing::info!(user = %updated.username, role = %updated.role, disabled = updated.disabled, by = %principal.name, "user changed");
    Ok(Json(updated.into()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    id: String,
    name: String,
    prefix: String,
    role: Role,
    created_by: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    /// Present only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<storage::ApiKey> for ApiKeyView {
    fn from(k: storage::ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            role: k.role,
            created_by: k.created_by,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            key: None,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "auth", summary = "List API keys (never the keys themselves)", security(("bearer" = ["admin"]), ("api_key" = ["admin"])), responses((status = 200, body = List<ApiKeyView>), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn list_api_keys(State(st): State<AppState>, Authorized(_): AsAdmin) -> ApiResult<Json<List<ApiKeyView>>> {
    let keys: Vec<ApiKeyView> = st.db.list_api_keys().await?.into_iter().map(ApiKeyView::from).collect();
    Ok(Json(List { total: keys.len() as u64, data: keys }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    role: Role,
}

#[utoipa::path(post, path = "/api/v1/api-keys", tag = "auth", summary = "Create an API key", security(("bearer" = ["admin"]), ("api_key" = ["admin"])), request_body = NewKey, responses((status = 201, description = "The key is in `key`, shown this once", body = ApiKeyView), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn create_api_key(
    State(st): State<AppState>,
    Authorized(principal): AsAdmin,
    JsonBody(b, _): JsonBody<NewKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyView>)> {
    let name = b.name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::invalid("name", "name: 1 to 64 characters"));
    }
    let (key, prefix, hash) = new_api_key();
    let stored = st.db.create_api_key(name, &hash, &prefix, b.role, &principal.name).await?;
    tracing::info!(key_name = %stored.name, prefix = %stored.prefix, by = %principal.name, "API key created");
    let mut view = ApiKeyView::from(stored);
    view.key = Some(key);
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "auth", summary = "Revoke an API key", security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("id" = String, Path, description = "API key id")), responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn revoke_api_key(
    State(st): State<AppState>,
    Authorized(principal): AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyView>> {
    let k = st.db.revoke_api_key(&id).await?;
    st.auth_cache.forget_key(&k.key_hash);
    tracing::info!(key_name = %k.name, by = %principal.name, "API key revoked");
    Ok(Json(k.into()))
}
