//! Search latency over 10,000 generated Markdown documents (Portuguese and English words, accents, front matter
//! with domains, types and tags): index once, then 1,000 queries of each of three kinds, a quarter of them filtered by domain.
//!
//! `cargo bench -p docs-index --bench search` (add `-- --quick` for 2,000 documents).

use docs_index::{DocsIndex, Query};
use std::time::Instant;

const WORDS: &[&str] = &[
    "gestão",
    "risco",
    "ordem",
    "mercado",
    "limite",
    "posição",
    "execução",
    "backup",
    "journal",
    "kill",
    "switch",
    "latência",
    "sinal",
    "telegram",
    "canal",
    "alvo",
    "stop",
    "entrada",
    "bolsa",
    "futuro",
    "opção",
    "dólar",
    "índice",
    "replay",
    "parquet",
    "candle",
    "book",
    "quote",
    "trade",
    "strategy",
    "broker",
    "paper",
    "audit",
    "recovery",
    "metrics",
    "alert",
    "deploy",
    "config",
    "database",
    "postgres",
    "sqlite",
    "nats",
    "websocket",
    "dashboard",
    "idea",
    "category",
    "workflow",
    "review",
    "retention",
    "archive",
];
const DOMAINS: &[&str] = &["trading", "operations", "signals", "reference", "data"];
const TYPES: &[&str] = &["guide", "runbook", "reference", "policy"];

fn word(i: usize) -> &'static str {
    WORDS[(i.wrapping_mul(2654435761)) % WORDS.len()]
}

/// A word of a 20,000-word vocabulary with a Zipf-like spread (a few words everywhere, most rare), as real text.
fn zipf_word(seed: usize) -> String {
    let x = (seed.wrapping_mul(2654435761) % 1_000_003) as f64 / 1_000_003.0;
    let rank = (x * x * x * 20_000.0) as usize;
    if rank < WORDS.len() {
        return WORDS[rank].to_string();
    }
    // Pronounceable made-up words, 4 to 9 letters, so prefixes spread as in real text.
    const SYL: [&str; 16] =
        ["ba", "ce", "di", "fo", "gu", "la", "me", "ni", "po", "qu", "ra", "se", "ti", "vo", "xa", "zu"];
    let mut h = rank.wrapping_mul(0x9E37_79B9) ^ 0x5bd1e995;
    let n = 2 + h % 4;
    let mut w = String::new();
    for _ in 0..n {
        h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        w.push_str(SYL[(h >> 33) % 16]);
    }
    w
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 2_000 } else { 10_000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("docs");
    for i in 0..n {
        let sub = root.join(DOMAINS[i % DOMAINS.len()]);
        std::fs::create_dir_all(&sub).expect("dir");
        let title: Vec<&str> = (0..4).map(|k| word(i * 7 + k)).collect();
        let body: Vec<String> = (0..300).map(|k| zipf_word(i * 7919 + k * 104_729 + 17)).collect();
        let text = format!(
            "---\ntitle: {} {i}\ndomain: {}\ntype: {}\ntags: [{}, {}]\nsummary: {}\n---\n# {}\n{}\n## {}\n{}\n",
            title.join(" "),
            DOMAINS[i % DOMAINS.len()],
            TYPES[i % TYPES.len()],
            word(i),
            word(i + 1),
            body[..12].join(" "),
            word(i + 2),
            body[..150].join(" "),
            word(i + 3),
            body[150..].join(" "),
        );
        std::fs::write(sub.join(format!("doc-{i}.md")), text).expect("write");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let started = Instant::now();
        let idx = DocsIndex::open(&root).await.expect("index");
        let indexed = started.elapsed();
        println!("docs search over {n} documents, indexed in {:.1} s:", indexed.as_secs_f64());
        // Typical queries: one to three words drawn from the text itself (so most are specific), a quarter filtered.
        // A word that is in nearly every document: every document matches. Two common words and a two-letter
        // beginning: the beginning stands for the most frequent words it starts, so the union is large.
        let kinds = ["typical queries", "a word in nearly every document", "two common words and a two-letter prefix"];
        for (kind, name) in kinds.into_iter().enumerate() {
            let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("hist");
            let queries = 1_000;
            for i in 0..queries {
                let q = match kind {
                    0 => (0..(1 + i % 3)).map(|k| zipf_word(i * 7919 + k * 104_729 + 17)).collect::<Vec<_>>().join(" "),
                    1 => word(i % 3).to_string(),
                    _ => {
                        format!("{} {} {}", word(i % 5), word(i % 7), zipf_word(i).chars().take(2).collect::<String>())
                    }
                };
                let q = Query {
                    q,
                    domain: (i % 4 == 0).then(|| DOMAINS[i % DOMAINS.len()].to_string()),
                    limit: 20,
                    ..Default::default()
                };
                let t0 = Instant::now();
                let (hits, _) = idx.search(&q).await.expect("search");
                h.record(t0.elapsed().as_micros() as u64).expect("record");
                std::hint::black_box(hits);
            }
            println!(
                "  {name}: {queries} queries, P50 {:.2} ms, P99 {:.2} ms, P99.9 {:.2} ms, max {:.2} ms",
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.value_at_quantile(0.999) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            );
        }
    });
}
