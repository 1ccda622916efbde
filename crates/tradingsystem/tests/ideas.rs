//! The Idea Bank over HTTP against the real server.

mod common;

use common::Server;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn ideas_workflow_filters_stats_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let trader = s.user(&admin, "ana", "trader").await;
    let viewer = s.user(&admin, "vic", "viewer").await;

    let (_, cats) = s.get(&viewer, "/api/v1/categories").await;
    assert_eq!(cats["total"], 6);
    let idea = |title: &str, category: &str, priority: &str, tags: Value| json!({"title": title, "description": "Descrição com acentos", "category": category, "priority": priority, "tags": tags});
    let (status, a) =
        s.post(&trader, "/api/v1/ideas", idea("Painel de risco", "dashboard", "high", json!(["risco", "ui"]))).await;
    assert_eq!(status, 201, "{a}");
    assert_eq!((a["status"].as_str(), a["created_by"].as_str()), (Some("new"), Some("ana")));
    let id = a["id"].as_str().unwrap().to_string();
    for i in 0..5 {
        let (status, _) = s
            .post(&trader, "/api/v1/ideas", idea(&format!("Coletor {i}"), "coleta-dados", "low", json!(["dados"])))
            .await;
        assert_eq!(status, 201);
    }

    // Validation names the field.
    for (body, field) in [
        (idea("", "dashboard", "low", json!([])), "title"),
        (idea(&"x".repeat(201), "dashboard", "low", json!([])), "title"),
        (json!({"title": "t", "description": "d".repeat(2001), "category": "dashboard"}), "description"),
        (idea("t", "nope", "low", json!([])), "category"),
        (idea("t", "dashboard", "urgent", json!([])), "priority"),
        (idea("t", "dashboard", "low", json!([""])), "tags"),
    ] {
        let (status, e) = s.post(&trader, "/api/v1/ideas", body).await;
        assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some(field)), "{e}");
    }
    assert_eq!(s.post(&viewer, "/api/v1/ideas", idea("t", "dashboard", "low", json!([]))).await.0, 403);

    // The workflow, on both change paths: an illegal move is 409 naming the allowed ones.
    let (status, e) = s.post(&trader, &format!("/api/v1/ideas/{id}/transition"), json!({"status": "completed"})).await;
    assert_eq!(status, 409);
    assert_eq!(e["error"]["details"]["allowed"], json!(["review", "in-progress"]));
    let (status, e) = s.send(Method::PUT, &trader, &format!("/api/v1/ideas/{id}"), json!({"status": "rejected"})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("ILLEGAL_TRANSITION")));
    let (status, v) = s.post(&trader, &format!("/api/v1/ideas/{id}/transition"), json!({"status": "review"})).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("review")));
    let (status, v) = s
        .send(
            Method::PUT,
            &trader,
            &format!("/api/v1/ideas/{id}"),
            json!({"status": "in-progress", "priority": "critical"}),
        )
        .await;
    assert_eq!((status, v["status"].as_str(), v["priority"].as_str()), (200, Some("in-progress"), Some("critical")));
    let (_, v) = s.post(&trader, &format!("/api/v1/ideas/{id}/transition"), json!({"status": "completed"})).await;
    assert_eq!(v["status"], "completed");
    let (status, e) = s.post(&trader, &format!("/api/v1/ideas/{id}/transition"), json!({"status": "new"})).await;
    assert_eq!(status, 409);
    assert!(e["error"]["message"].as_str().unwrap().contains("final"));

    // Filters and real pagination.
    let (_, v) = s.get(&viewer, "/api/v1/ideas?category=coleta-dados&limit=2&offset=1").await;
    assert_eq!((v["total"].as_i64(), v["data"].as_array().unwrap().len()), (Some(5), 2));
    let (_, v) = s.get(&viewer, "/api/v1/ideas?tag=risco").await;
    assert_eq!(v["total"], 1);
    let (_, v) = s.get(&viewer, "/api/v1/ideas?search=COLETOR%203").await;
    assert_eq!(v["total"], 1);
    let (_, v) = s.get(&viewer, "/api/v1/ideas?status=completed&priority=critical").await;
    assert_eq!(v["total"], 1);
    assert_eq!(s.get(&viewer, "/api/v1/ideas?status=done").await.0, 422);
    assert_eq!(s.get(&viewer, "/api/v1/ideas?limit=0").await.0, 422);

    // Stats are not shadowed by /ideas/{id}.
    let (status, st) = s.get(&viewer, "/api/v1/ideas/stats").await;
    assert_eq!(status, 200, "{st}");
    assert_eq!((st["total"].as_i64(), st["by_category"]["coleta-dados"].as_i64()), (Some(6), Some(5)));
    assert_eq!((st["by_status"]["completed"].as_i64(), st["by_status"]["rejected"].as_i64()), (Some(1), Some(0)));
    assert_eq!(st["by_priority"]["low"], 5);

    // Every change in the audit log: who, what, old and new.
    let (_, trail) = s.get(&viewer, &format!("/api/v1/ideas/{id}/audit")).await;
    let entries = trail["data"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{trail}");
    assert_eq!(entries[2]["changes"]["priority"], json!({"old": "high", "new": "critical"}));
    assert_eq!(entries[2]["actor"], "ana");

    // Categories: admins manage them; an inactive one takes no new ideas; a used one cannot be deleted.
    let (status, _) = s
        .post(
            &admin,
            "/api/v1/categories",
            json!({"name": "backtests", "display_name": "Backtests", "color": "#123abc"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        s.post(&trader, "/api/v1/categories", json!({"name": "x", "display_name": "X", "color": "#000000"})).await.0,
        403
    );
    let (status, e) = s
        .post(&admin, "/api/v1/categories", json!({"name": "Bad Name", "display_name": "X", "color": "#000000"}))
        .await;
    assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some("name")));
    let (status, _) = s
        .send(
            Method::PUT,
            &admin,
            "/api/v1/categories/backtests",
            json!({"name": "backtests", "display_name": "Backtests", "color": "#123ABC", "active": false}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, e) = s.post(&trader, "/api/v1/ideas", idea("t", "backtests", "low", json!([]))).await;
    assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some("category")));
    assert_eq!(s.send(Method::DELETE, &admin, "/api/v1/categories/coleta-dados", json!(null)).await.0, 409);
    assert_eq!(s.send(Method::DELETE, &admin, "/api/v1/categories/backtests", json!(null)).await.0, 204);
    assert_eq!(s.send(Method::DELETE, &trader, &format!("/api/v1/ideas/{id}"), json!(null)).await.0, 200);
    assert_eq!(s.get(&viewer, &format!("/api/v1/ideas/{id}")).await.0, 404);
}
