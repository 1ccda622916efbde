//! Authentication (JWT bearer tokens, API keys) and roles.
//!
//! Passwords are hashed with argon2id. API keys are 256-bit random strings, so a fast SHA-256 of the key is a
//! safe lookup hash (there is nothing to brute-force); only the hash and a short prefix are stored, and the key is
//! shown once at creation.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Trader,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Trader => "trader",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "trader" => Some(Role::Trader),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

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
    role: Role,
    iat: i64,
    exp: i64,
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

    pub fn issue(&self, username: &str, role: Role) -> Result<(String, DateTime<Utc>), String> {
        let now = Utc::now();
        let exp = now + self.ttl;
        let claims = Claims { sub: username.to_string(), role, iat: now.timestamp(), exp: exp.timestamp() };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| e.to_string())?;
        Ok((token, exp))
    }

    /// The user a valid token was issued to.
    pub fn subject(&self, token: &str) -> Option<String> {
        self.verify(token).map(|c| c.sub)
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

/// Authenticates from the `Authorization: Bearer` header, the `X-API-Key` header, or (for WebSocket clients that
/// cannot set headers) a bearer token passed as `?token=`.
pub async fn authenticate(
    state: &AppState,
    headers: &http::HeaderMap,
    query_token: Option<&str>,
) -> ApiResult<Principal> {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        let value = auth.to_str().map_err(|_| ApiError::unauthorized("invalid Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be 'Bearer <token>'"))?;
        return verify_token(state, token);
    }
    if let Some(key) = headers.get("x-api-key") {
        let key = key.to_str().map_err(|_| ApiError::unauthorized("invalid X-API-Key header"))?;
        let found = state.db.api_key_by_hash(&hash_api_key(key.trim())).await?;
        return match found {
            Some(k) if k.revoked_at.is_none() => {
                let role = Role::parse(&k.role).ok_or_else(|| ApiError::unauthorized("API key has an unknown role"))?;
                Ok(Principal { name: format!("apikey:{}", k.name), role, session: false })
            }
            _ => Err(ApiError::unauthorized("invalid or revoked API key")),
        };
    }
    if let Some(token) = query_token {
        return verify_token(state, token);
    }
    Err(ApiError::unauthorized("authentication required: send 'Authorization: Bearer <token>' or 'X-API-Key'"))
}

fn verify_token(state: &AppState, token: &str) -> ApiResult<Principal> {
    let claims = state.jwt.verify(token.trim()).ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
    Ok(Principal { name: claims.sub, role: claims.role, session: true })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.headers, None).await
    }
}

/// A caller already checked for a role, as an extractor: the check runs on the request head, before the body is
/// read, so a caller without the role gets 403 whatever it sent (not a 400/422 about a body it may not send).
pub struct Authorized<const ROLE: u8>(pub Principal);

pub type AsTrader = Authorized<{ Role::Trader as u8 }>;
pub type AsAdmin = Authorized<{ Role::Admin as u8 }>;

impl<const ROLE: u8> FromRequestParts<AppState> for Authorized<ROLE> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = authenticate(state, &parts.headers, None).await?;
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
        let (t, _) = keys.issue("alice", Role::Trader).unwrap();
        let c = keys.verify(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.role), ("alice", Role::Trader));
        assert!(JwtKeys::new(b"other", Duration::minutes(5)).verify(&t).is_none());
        let expired = JwtKeys::new(b"secret", Duration::minutes(-10));
        let (t, _) = expired.issue("alice", Role::Trader).unwrap();
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
    }
}
