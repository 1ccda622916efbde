//! The Documentation API and the systems registry against the real server.

mod common;

use common::Server;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_documents_reindex_and_systems() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(docs.path().join("ops")).unwrap();
    std::fs::write(docs.path().join("risk.md"), "---\ntitle: Gestão de riscos\ndomain: trading\ntype: guide\ntags: [risco]\nsummary: Limites e kill switch\n---\n# Limites\nKill switch.\n").unwrap();
    std::fs::write(
        docs.path().join("ops/backup.md"),
        "---\ntitle: Backups\ndomain: ops\ntype: runbook\n---\nA gestão dos backups.\n",
    )
    .unwrap();
    let s = Server::start_with(data.path(), &[("TS_DOCS_DIR", docs.path().to_str().unwrap())]);
    let admin = s.admin().await;
    let viewer = s.user(&admin, "reader", "viewer").await;
    let trader = s.user(&admin, "ops", "trader").await;

    let (status, v) = s.get(&viewer, "/api/v1/docs/search?q=gestao").await;
    assert_eq!((status, v["total"].as_i64()), (200, Some(2)), "{v}");
    assert_eq!(v["data"][0]["path"], "risk.md", "the title match ranks first");
    assert!(v["data"][0]["snippet"].as_str().unwrap().contains("<mark>"));
    let (_, v) = s.get(&viewer, "/api/v1/docs/search?q=gestao&domain=ops").await;
    assert_eq!(v["total"], 1);
    assert_eq!(s.get(&viewer, "/api/v1/docs/search?limit=500").await.0, 422);
    let (_, f) = s.get(&viewer, "/api/v1/docs/facets").await;
    assert_eq!((f["domain"]["ops"].as_i64(), f["status"]["active"].as_i64()), (Some(1), Some(2)));
    let (status, d) = s.get(&viewer, "/api/v1/docs/documents/ops/backup.md").await;
    assert_eq!((status, d["front_matter"]["title"].as_str()), (200, Some("Backups")));
    assert!(d["html"].as_str().unwrap().contains("<p>A gestão dos backups.</p>"));
    assert_eq!(s.get(&viewer, "/api/v1/docs/documents/nope.md").await.0, 404);

    // A new file is picked up on its own; a manual reindex is refused within a minute of the last one.
    std::fs::write(docs.path().join("new.md"), "---\ntitle: Novidade\n---\nConteúdo.\n").unwrap();
    common::eventually(|| async {
        let (_, v) = s.get(&viewer, "/api/v1/docs/search?q=novidade").await;
        (v["total"] == 1).then_some(())
    })
    .await;
    let r = s.client.post(s.url("/api/v1/docs/reindex")).bearer_auth(&trader).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(s.client.post(s.url("/api/v1/docs/reindex")).bearer_auth(&viewer).send().await.unwrap().status(), 403);

    // Systems: a registry with health probes (this server is online; a closed port is offline).
    let (status, up) = s
        .post(
            &admin,
            "/api/v1/systems",
            json!({"name": "TradingSystem", "type": "api", "url": s.url("/health"), "owner": "desk"}),
        )
        .await;
    assert_eq!(status, 201, "{up}");
    let (_, down) = s
        .post(&admin, "/api/v1/systems", json!({"name": "Gone", "type": "webapp", "url": "http://127.0.0.1:9/"}))
        .await;
    let (status, e) =
        s.post(&admin, "/api/v1/systems", json!({"name": "x", "type": "mainframe", "url": "http://x"})).await;
    assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some("type")));
    assert_eq!(
        s.post(&admin, "/api/v1/systems", json!({"name": "TradingSystem", "type": "api", "url": "http://y"})).await.0,
        409
    );
    let (_, v) = s.post(&trader, &format!("/api/v1/systems/{}/check", up["id"].as_str().unwrap()), json!(null)).await;
    assert_eq!(v["status"], "online");
    let (_, v) = s.post(&trader, &format!("/api/v1/systems/{}/check", down["id"].as_str().unwrap()), json!(null)).await;
    assert_eq!(v["status"], "offline");
    let (_, list) = s.get(&viewer, "/api/v1/systems").await;
    assert_eq!(list["total"], 2);
    assert_eq!(
        s.send(Method::DELETE, &admin, &format!("/api/v1/systems/{}", down["id"].as_str().unwrap()), json!(null))
            .await
            .0,
        204
    );
}
