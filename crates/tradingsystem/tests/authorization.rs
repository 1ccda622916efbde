//! Authorization proven route by route: walks every operation of the server's own `/openapi.json` and checks that
//! it answers 401 without credentials (unless api.md lists it as public) and 403 to every role below the one its
//! security requirement names.

mod common;

use common::Server;
use serde_json::Value;

/// Public without credentials, from api.md.
const PUBLIC: [&str; 7] = ["/health", "/ready", "/healthz", "/metrics", "/openapi.json", "/api/v1/auth/login", WEBHOOK];
/// Public, but it checks its own secret header instead of a user's credentials.
const WEBHOOK: &str = "/api/v1/tp-capital/telegram/webhook";

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 1,
        "trader" => 2,
        "admin" => 3,
        other => panic!("unknown role {other:?} in the document"),
    }
}

/// The least role an operation needs, from its security scopes; `None` when public.
fn required_role(op: &Value) -> Option<String> {
    let reqs = op["security"].as_array().expect("every operation states its security");
    let mut roles =
        reqs.iter().filter_map(|r| r.as_object()).flat_map(|r| r.values()).filter_map(|scopes| {
            scopes.as_array().and_then(|s| s.first()).and_then(|s| s.as_str()).map(str::to_string)
        });
    roles.next()
}

#[tokio::test]
async fn every_documented_route_enforces_authentication_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let trader = s.user(&admin, "walk-trader", "trader").await;
    let viewer = s.user(&admin, "walk-viewer", "viewer").await;
    let doc: Value = s.client.get(s.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().expect("paths");

    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path.replace("{id}", "1");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let call = |token: Option<&str>| {
                let mut rb = s.client.request(method.clone(), s.url(&concrete));
                if let Some(t) = token {
                    rb = rb.bearer_auth(t);
                }
                rb.send()
            };
            let role = required_role(op);
            let public = PUBLIC.contains(&path.as_str());
            assert_eq!(role.is_none(), public, "{method} {path}: the document and api.md disagree on being public");

            let anonymous = call(None).await.unwrap();
            let status = anonymous.status().as_u16();
            if path == "/ws" {
                // Without an upgrade request the handshake is refused before auth; the WebSocket tests cover auth.
                assert!(status == 400 || status == 401 || status == 426, "{method} {path}: {status}");
                continue;
            }
            if path == WEBHOOK {
                assert_eq!(status, 401, "the webhook without its secret header");
                let with_admin = call(Some(&admin)).await.unwrap().status().as_u16();
                assert_eq!(with_admin, 401, "a user's token is not the webhook's secret");
                checked += 1;
                continue;
            }
            if public {
                assert_ne!(status, 401, "{method} {path} is public");
            } else {
                assert_eq!(status, 401, "{method} {path} without credentials");
                let body: Value = anonymous.json().await.unwrap();
                assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{method} {path}");
            }
            if let Some(role) = role {
                for (who, token) in [("viewer", &viewer), ("trader", &trader)] {
                    if rank(who) < rank(&role) {
                        let r = call(Some(token)).await.unwrap();
                        assert_eq!(r.status().as_u16(), 403, "{method} {path} as {who} (needs {role})");
                        let body: Value = r.json().await.unwrap();
                        assert_eq!(body["error"]["code"], "FORBIDDEN", "{method} {path} as {who}");
                    }
                }
                // The role it names may call it: whatever the answer, it is not an authorization failure nor a
                // missing route.
                let allowed = match role.as_str() {
                    "viewer" => &viewer,
                    "trader" => &trader,
                    _ => &admin,
                };
                if method == reqwest::Method::GET {
                    let r = call(Some(allowed)).await.unwrap();
                    let st = r.status().as_u16();
                    assert!(st != 401 && st != 403, "{method} {path} as {role}: {st}");
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    assert_ne!(body["error"]["message"], "no such route", "{method} {path}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "walked {checked} operations");
}
