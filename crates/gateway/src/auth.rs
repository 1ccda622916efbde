//! Authentication (JWT bearer tokens, API keys) and roles.
//!
//! Passwords are hashed with argon2id. API keys are 256-bit random strings, so a fast SHA-256 of the key is a
//! safe lookup hash (there is nothing to brute-force); only the hash and a short prefix are stored, and the key is
//! shown once at creation.
//!
//! A bearer token names its user and the user's token version; the role, whether the user is disabled and the
//! current version are read from the database on each request through [`AuthCache`], which holds an answer for at
//! most [`AUTH_CACHE_TTL`] and forgets it at once when this server changes it. So disabling a user, changing a role
//! or a password, or revoking a key takes effect on the next request made to this server, and within
//! [`AUTH_CACHE_TTL`] on any other process sharing the database (the CLI, another gateway).

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Instant;

/// How long a looked-up user or API key is trusted before it is read again.
pub const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// Entries per cache; beyond it, expired entries go first, then everything (the next requests read again).
const AUTH_CACHE_MAX: usize = 10_000;

/// Roles are stored as an enum by `storage` (the edge that keeps them); the gateway checks them.
pub use storage::Role;

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Validates a new password; returns why it is not acceptable.
pub fn check_password_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("must be at least 8 characters".into());
    }
    if password.len() > 1024 {
        return Err("must be at most 1024 bytes".into());
    }
    Ok(())
}

pub fn check_username(username: &str) -> Result<(), String> {
    let ok_len = (3..=64).contains(&username.len());
    let ok_chars = username.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err("3 to 64 characters: letters, digits, '.', '_' or '-'".into())
    }
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new API key: (the key to show once, its display prefix, its stored hash).
pub fn new_api_key() -> (String, String, String) {
    let key = format!("ts_{}", random_hex(32));
    let prefix = key[..10].to_string();
    let hash = hash_api_key(&key);
    (key, prefix, hash)
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// The role at issue, for clients that read it; the server uses the user's current role.
    role: Role,
    iat: i64,
    exp: i64,
    /// The user's token version at issue (tokens from before versions existed carry 0).
    #[serde(default)]
    ver: i64,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        JwtKeys { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), ttl }
    }

    pub fn issue(&self, username: &str, role: Role, version: i64) -> Result<(String, DateTime<Utc>), String> {
        let now = Utc::now();
        let exp = now + self.ttl;
        let claims =
            Claims { sub: username.to_string(), role, iat: now.timestamp(), exp: exp.timestamp(), ver: version };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| e.to_string())?;
        Ok((token, exp))
    }

    fn verify(&self, token: &str) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).ok().map(|d| d.claims)
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User name, or `apikey:<name>` for programs.
    pub name: String,
    pub role: Role,
    /// Authenticated with a bearer token (a user session), not an API key.
    pub session: bool,
}

impl Principal {
    pub fn require(&self, role: Role) -> ApiResult<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this action needs the {} role; you are {}",
                role.as_str(),
                self.role.as_str()
            )))
        }
    }
}

/// What this server knows of a user's standing, as read from the database.
#[derive(Debug, Clone)]
struct UserStanding {
    role: Option<Role>,
    disabled: bool,
    token_version: i64,
}

#[derive(Debug, Clone)]
struct KeyStanding {
    name: String,
    role: Option<Role>,
}

struct Cached<T> {
    at: Instant,
    value: T,
}

/// Short-lived answers to "who is this user / this key now" (see the module docs). Only keys that exist are held,
/// so a client inventing keys cannot grow it.
#[derive(Default)]
pub struct AuthCache {
    users: parking_lot::Mutex<HashMap<String, Cached<Option<UserStanding>>>>,
    keys: parking_lot::Mutex<HashMap<String, Cached<KeyStanding>>>,
}

fn fresh<T: Clone>(map: &HashMap<String, Cached<T>>, k: &str) -> Option<T> {
    map.get(k).filter(|c| c.at.elapsed() < AUTH_CACHE_TTL).map(|c| c.value.clone())
}

fn keep<T>(map: &mut HashMap<String, Cached<T>>, k: String, value: T) {
    if map.len() >= AUTH_CACHE_MAX {
        map.retain(|_, c| c.at.elapsed() < AUTH_CACHE_TTL);
        if map.len() >= AUTH_CACHE_MAX {
            map.clear();
        }
    }
    map.insert(k, Cached { at: Instant::now(), value });
}

impl AuthCache {
    /// Forget what is known of a user: the next request reads it again.
    pub fn forget_user(&self, username: &str) {
        self.users.lock().remove(username);
    }

    /// Forget a key by its stored hash.
    pub fn forget_key(&self, key_hash: &str) {
        self.keys.lock().remove(key_hash);
    }

    async fn user(&self, db: &storage::Db, username: &str) -> ApiResult<Option<UserStanding>> {
        if let Some(u) = fresh(&self.users.lock(), username) {
            return Ok(u);
        }
        let standing = db.user_by_name(username).await?.map(|u| UserStanding {
            role: Some(u.role),
            disabled: u.disabled,
            token_version: u.token_version,
        });
        keep(&mut self.users.lock(), username.to_string(), standing.clone());
        Ok(standing)
    }

    fn cached_key(&self, key_hash: &str) -> Option<KeyStanding> {
        fresh(&self.keys.lock(), key_hash)
    }

    async fn key(&self, db: &storage::Db, key_hash: &str) -> ApiResult<Option<KeyStanding>> {
        if let Some(k) = self.cached_key(key_hash) {
            return Ok(Some(k));
        }
        let found = db.api_key_by_hash(key_hash).await?.filter(|k| k.revoked_at.is_none());
        Ok(found.map(|k| {
            let standing = KeyStanding { name: k.name, role: Some(k.role) };
            keep(&mut self.keys.lock(), key_hash.to_string(), standing.clone());
            standing
        }))
    }
}

/// Whether `key` can be one of ours (`ts_` and 64 hex digits): anything else is refused without a lookup.
pub fn plausible_api_key(key: &str) -> bool {
    key.len() == 67 && key.starts_with("ts_") && key[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The credentials a request carries, before any of them is checked.
pub enum Credentials<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
    None,
}

impl<'a> Credentials<'a> {
    pub fn of(headers: &'a http::HeaderMap, query_token: Option<&'a str>) -> ApiResult<Credentials<'a>> {
        if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
            let value = auth.to_str().map_err(|_| ApiError::unauthorized("invalid Authorization header"))?;
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| ApiError::unauthorized("the Authorization header must be 'Bearer <token>'"))?;
            return Ok(Credentials::Bearer(token.trim()));
        }
        if let Some(key) = headers.get("x-api-key") {
            let key = key.to_str().map_err(|_| ApiError::unauthorized("invalid X-API-Key header"))?;
            return Ok(Credentials::ApiKey(key.trim()));
        }
        Ok(query_token.map_or(Credentials::None, |t| Credentials::Bearer(t.trim())))
    }
}

/// The outcome of authentication, worked out once per request by the rate limiter and kept in the request's
/// extensions so the handler does not look the caller up again.
#[derive(Clone)]
pub struct Resolved(pub Result<Principal, ApiError>);

/// Authenticates from the `Authorization: Bearer` header, the `X-API-Key` header, or (for WebSocket clients that
/// cannot set headers) a bearer token passed as `?token=`.
pub async fn authenticate(
    state: &AppState,
    headers: &http::HeaderMap,
    query_token: Option<&str>,
) -> ApiResult<Principal> {
    match Credentials::of(headers, query_token)? {
        Credentials::Bearer(token) => verify_token(state, token).await,
        Credentials::ApiKey(key) => verify_api_key(state, key).await,
        Credentials::None => {
            Err(ApiError::unauthorized("authentication required: send 'Authorization: Bearer <token>' or 'X-API-Key'"))
        }
    }
}

/// A bearer token whose signature and expiry are good: it proves who it was issued to, not yet that the user may
/// still act (see [`signed_principal`]).
pub struct SignedToken(Claims);

impl SignedToken {
    pub fn check(state: &AppState, token: &str) -> Option<SignedToken> {
        state.jwt.verify(token).map(SignedToken)
    }

    pub fn subject(&self) -> &str {
        &self.0.sub
    }
}

/// A known, unrevoked API key's hash, if it is in the cache (no database read).
pub fn cached_api_key(state: &AppState, key: &str) -> Option<String> {
    let hash = hash_api_key(key);
    state.auth_cache.cached_key(&hash).map(|_| hash)
}

pub async fn verify_api_key(state: &AppState, key: &str) -> ApiResult<Principal> {
    if !plausible_api_key(key) {
        return Err(ApiError::unauthorized("invalid or revoked API key"));
    }
    match state.auth_cache.key(&state.db, &hash_api_key(key)).await? {
        Some(KeyStanding { name, role: Some(role) }) => {
            Ok(Principal { name: format!("apikey:{name}"), role, session: false })
        }
        Some(_) => Err(ApiError::unauthorized("API key has an unknown role")),
        None => Err(ApiError::unauthorized("invalid or revoked API key")),
    }
}

async fn verify_token(state: &AppState, token: &str) -> ApiResult<Principal> {
    let signed = SignedToken::check(state, token).ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
    signed_principal(state, signed).await
}

/// The principal of a signed token as the user stands now: disabled, a newer token version (password changed),
/// and the current role are read through the cache.
pub async fn signed_principal(state: &AppState, SignedToken(claims): SignedToken) -> ApiResult<Principal> {
    let standing = state.auth_cache.user(&state.db, &claims.sub).await?;
    match standing {
        Some(u) if u.disabled => Err(ApiError::unauthorized("this user is disabled")),
        Some(u) if u.token_version != claims.ver => {
            Err(ApiError::unauthorized("this token was ended by a password change; log in again"))
        }
        Some(UserStanding { role: Some(role), .. }) => Ok(Principal { name: claims.sub, role, session: true }),
        Some(_) => Err(ApiError::unauthorized("this user has an unknown role")),
        None => Err(ApiError::unauthorized("the user no longer exists")),
    }
}

/// The principal the rate limiter already resolved for this request, else a fresh authentication. The WebSocket
/// also takes `?token=` (browsers cannot set headers on it); no other route reads credentials from the URL.
async fn principal_of(parts: &Parts, state: &AppState) -> ApiResult<Principal> {
    if let Some(Resolved(r)) = parts.extensions.get::<Resolved>() {
        return r.clone();
    }
    let query = match parts.uri.path() {
        "/ws" => axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default(),
        _ => Default::default(),
    };
    authenticate(state, &parts.headers, query.get("token").map(String::as_str)).await
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        principal_of(parts, state).await
    }
}

/// A caller already checked for a role, as an extractor: the check runs on the request head, before the body is
/// read, so a caller without the role gets 403 whatever it sent (not a 400/422 about a body it may not send).
pub struct Authorized<const ROLE: u8>(pub Principal);

pub type AsTrader = Authorized<{ Role::Trader as u8 }>;
pub type AsAdmin = Authorized<{ Role::Admin as u8 }>;
pub type AsViewer = Authorized<{ Role::Viewer as u8 }>;

impl<const ROLE: u8> FromRequestParts<AppState> for Authorized<ROLE> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = principal_of(parts, state).await?;
        let role =
            [Role::Viewer, Role::Trader, Role::Admin].into_iter().find(|r| *r as u8 == ROLE).unwrap_or(Role::Admin);
        principal.require(role)?;
        Ok(Authorized(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong horse"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn tokens() {
        let keys = JwtKeys::new(b"secret", Duration::minutes(5));
        let (t, _) = keys.issue("alice", Role::Trader, 3).unwrap();
        let c = keys.verify(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.role, c.ver), ("alice", Role::Trader, 3));
        assert!(JwtKeys::new(b"other", Duration::minutes(5)).verify(&t).is_none());
        let expired = JwtKeys::new(b"secret", Duration::minutes(-10));
        let (t, _) = expired.issue("alice", Role::Trader, 0).unwrap();
        assert!(keys.verify(&t).is_none());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin > Role::Trader && Role::Trader > Role::Viewer);
        let p = Principal { name: "v".into(), role: Role::Viewer, session: true };
        assert!(p.require(Role::Viewer).is_ok());
        assert_eq!(p.require(Role::Trader).unwrap_err().status, 403);
    }

    #[test]
    fn api_keys_hash_stably() {
        let (k, prefix, h) = new_api_key();
        assert!(k.starts_with(&prefix));
        assert_eq!(hash_api_key(&k), h);
        assert_eq!(h.len(), 64);
        assert!(plausible_api_key(&k));
        assert!(
            !plausible_api_key("ts_nothex")
                && !plausible_api_key(&k[1..])
                && !plausible_api_key(&k.replace("ts_", "tx_"))
        );
    }
}
