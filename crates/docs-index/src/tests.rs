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
    let idx = DocsIndex::open(&docs).await.unwrap();
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
    // Prefixes match; query-language syntax in the query is just words.
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

#[tokio::test]
async fn ranking_prefixes_and_totals_over_many_documents() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    // 60 documents mention "ordem" in the body; one has it in its title and must rank first.
    for i in 0..60 {
        let body = if i % 2 == 0 { "Cada ordem passa pelo risco." } else { "Cada ordem é registrada no journal." };
        write(&docs, &format!("d/{i:02}.md"), &format!("---\ntitle: Nota {i:02}\ndomain: Trading\n---\n{body}\n"));
    }
    write(&docs, "z/ordem.md", "---\ntitle: Ciclo de vida da ordem\ndomain: reference\n---\nEstados.\n");
    let idx = DocsIndex::open(&docs).await.unwrap();
    let q = |s: &str, limit| Query { q: s.into(), limit, ..Default::default() };

    let (hits, total) = idx.search(&q("ordem", 5)).await.unwrap();
    assert_eq!((hits.len(), total), (5, 61), "the page is cut, the total is not");
    assert_eq!(hits[0].path, "z/ordem.md", "a title match outranks body matches");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));

    // Every word must be there; the last may be a beginning; repeats and punctuation do not matter.
    assert_eq!(idx.search(&q("ordem risco", 100)).await.unwrap().1, 30);
    assert_eq!(idx.search(&q("ordem, ordem JOURN", 100)).await.unwrap().1, 30);
    assert_eq!(idx.search(&q("registrada ris", 100)).await.unwrap().1, 0);
    assert_eq!(idx.search(&q("ciclo vida ORDE", 100)).await.unwrap().1, 1);
    assert_eq!(idx.search(&q("o", 100)).await.unwrap().1, 0, "a one-letter last word is a word, not a prefix");
    assert_eq!(idx.search(&q("nothing-like-this", 100)).await.unwrap().1, 0);

    // Filters match whatever their case; without words, documents come by title.
    let (hits, total) = idx.search(&Query { domain: Some("trading".into()), ..q("", 3) }).await.unwrap();
    assert_eq!(total, 60);
    assert_eq!(hits.iter().map(|h| h.title.as_str()).collect::<Vec<_>>(), ["Nota 00", "Nota 01", "Nota 02"]);
    let (hits, total) = idx.search(&Query { domain: Some("TRADING".into()), ..q("risco", 100) }).await.unwrap();
    assert_eq!((hits.len(), total), (30, 30));
    assert!(hits.iter().all(|h| h.snippet.contains("<mark>risco</mark>")), "{:?}", hits[0].snippet);

    // A removed file leaves the index with the next reindex.
    std::fs::remove_file(docs.join("z/ordem.md")).unwrap();
    idx.reindex_if_changed().await.unwrap().unwrap();
    let (hits, total) = idx.search(&q("ordem", 5)).await.unwrap();
    assert_eq!(total, 60);
    assert!(hits.iter().all(|h| h.path.starts_with("d/")));
    assert!(matches!(idx.document("z/ordem.md").await, Err(DocsError::NotFound(_))));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// Whatever a user types (any Unicode, punctuation, would-be query syntax), search answers, within its limit.
    #[test]
    fn any_query_text_is_answered(q in "\\PC{0,60}", filter in proptest::option::of("[a-zA-Z]{0,8}"), limit in 0usize..150) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.md", "---\ntitle: Gestão de ordens\ndomain: trading\ntags: [risco]\n---\nÀ vista, ações e opções; stop-loss <b>ß</b> 東京.\n");
        let (hits, total) = rt.block_on(async {
            let idx = DocsIndex::open(dir.path()).await.unwrap();
            idx.search(&Query { q: q.clone(), domain: filter.clone(), tags: filter.into_iter().collect(), limit, ..Default::default() }).await
        }).unwrap();
        proptest::prop_assert!(hits.len() as u64 <= total && hits.len() <= limit.clamp(1, 100));
    }
}
