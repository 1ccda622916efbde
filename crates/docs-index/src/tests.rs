use super::*;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn front_matter() {
    let d = parse_document("---\ntitle: Gestão de Riscos\ntags: [risco, limites]\ndomain: trading\ntype: guide\nsidebar_position: 3\n---\n# Limites\nTexto.\n").unwrap();
    assert_eq!(
        (d.title.as_str(), d.tags.len(), d.status.as_str(), d.sidebar_position),
        ("Gestão de Riscos", 2, "active", Some(3))
    );
    assert_eq!(d.headings, vec!["Limites"]);
    assert_eq!(parse_document("# no front matter"), Err(FrontMatterError::Missing));
    assert_eq!(parse_document("---\ntitle: x\n"), Err(FrontMatterError::Unclosed));
    assert_eq!(parse_document("---\nsummary: x\n---\n"), Err(FrontMatterError::NoTitle));
    assert!(matches!(parse_document("---\ntitle: [unclosed\n---\n"), Err(FrontMatterError::Yaml(_))));
}

#[tokio::test]
async fn search_ranks_titles_folds_accents_filters_and_highlights() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    write(&docs, "risk/limits.md", "---\ntitle: Gestão de riscos\ndomain: trading\ntype: guide\ntags: [risco, limites]\nsummary: Limites diários e kill switch\n---\n# Limites\nO kill switch bloqueia ordens.\n");
    write(&docs, "ops/backup.md", "---\ntitle: Backups\ndomain: ops\ntype: runbook\ntags: [ops]\n---\nA gestão dos backups do journal é diária.\n");
    write(&docs, "ops/old.md", "---\ntitle: Old market notes\ndomain: ops\ntype: reference\nstatus: deprecated\n---\nMarket data <script>alert(1)</script> gestao.\n");
    write(&docs, "broken.md", "no front matter here");
    let idx = DocsIndex::open(&docs, &dir.path().join("index/docs.sqlite")).await.unwrap();
    assert_eq!(idx.count().await.unwrap(), 3);

    // "gestao" finds "Gestão"; the title match ranks first.
    let q = |s: &str| Query { q: s.into(), limit: 10, ..Default::default() };
    let (hits, total) = idx.search(&q("gestao")).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(hits[0].path, "risk/limits.md");
    assert!(hits[0].score >= hits[1].score);
    assert!(hits.iter().any(|h| h.snippet.contains("<mark>gestão</mark>")), "{hits:?}");
    assert!(hits.iter().all(|h| !h.snippet.contains("<script>")), "snippets are escaped");

    let (hits, _) = idx.search(&Query { domain: Some("ops".into()), ..q("gestao") }).await.unwrap();
    assert_eq!(hits.len(), 2);
    let (hits, _) = idx.search(&Query { status: Some("deprecated".into()), ..q("") }).await.unwrap();
    assert_eq!(hits[0].path, "ops/old.md");
    let (hits, _) = idx.search(&Query { tags: vec!["risco".into()], ..q("kill") }).await.unwrap();
    assert_eq!(hits.len(), 1);
    // Prefixes match; FTS5 syntax in the query is just words.
    assert_eq!(idx.search(&q("limi")).await.unwrap().1, 1);
    assert_eq!(idx.search(&q("\"kill*\" ( ^-")).await.unwrap().1, 1);

    let f = idx.facets().await.unwrap();
    assert_eq!((f.domain["ops"], f.status["active"], f.tags["risco"]), (2, 2, 1));

    let d = idx.document("risk/limits.md").await.unwrap();
    assert!(d["html"].as_str().unwrap().contains("<h1>Limites</h1>"));
    assert_eq!(d["front_matter"]["domain"], "trading");
    let old = idx.document("ops/old.md").await.unwrap();
    assert!(!old["html"].as_str().unwrap().contains("<script>"), "raw HTML is not passed through");
    assert!(matches!(idx.document("nope.md").await, Err(DocsError::NotFound(_))));

    // Changes are picked up; a user's reindex waits a minute.
    assert!(idx.reindex_if_changed().await.unwrap().is_none());
    write(&docs, "new.md", "---\ntitle: Nova página\n---\nConteúdo novo.\n");
    let r = idx.reindex_if_changed().await.unwrap().unwrap();
    assert_eq!((r.documents, r.skipped.len()), (4, 1));
    assert!(matches!(idx.reindex_requested().await, Err(DocsError::TooSoon(_))));
}
