//! `GET /api/v1/ideas`'s query over 100,000 ideas on SQLite: the first page, filters (category, status +
//! priority, tag, text search) and a deep page, each with its total.
//!
//! `cargo bench -p storage --bench idea_list` (add `-- --quick` for 20,000 ideas).

use chrono::{Duration, Utc};
use std::time::Instant;
use storage::{Db, IdeaFilter, IdeaRow};

const CATEGORIES: [&str; 6] =
    ["documentacao", "coleta-dados", "banco-dados", "analise-dados", "gestao-riscos", "dashboard"];
const WORDS: [&str; 12] = [
    "painel",
    "coletor",
    "risco",
    "latência",
    "replay",
    "backtest",
    "alerta",
    "sinal",
    "book",
    "candle",
    "limite",
    "ordem",
];

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: usize = if quick { 20_000 } else { 100_000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let db = Db::connect(&format!("sqlite://{}/bench.db", dir.path().display())).await.expect("db");
        db.migrate().await.expect("migrate");
        let start = Utc::now() - Duration::days(365);
        let rows: Vec<IdeaRow> = (0..n)
            .map(|i| {
                let t = start + Duration::seconds(i as i64 * 300);
                IdeaRow {
                    id: format!("{i:08}-0000-4000-8000-000000000000"),
                    legacy_id: None,
                    title: format!("{} {} {i}", WORDS[i % 12], WORDS[(i / 12) % 12]),
                    description: format!(
                        "Ideia {i}: {} com {} e {}",
                        WORDS[(i * 7) % 12],
                        WORDS[(i * 5) % 12],
                        WORDS[(i * 3) % 12]
                    ),
                    category: CATEGORIES[i % 6].into(),
                    priority: idea_bank::Priority::ALL[i % 4],
                    status: idea_bank::Status::ALL[i % 5],
                    tags: vec![WORDS[(i * 11) % 12].into(), format!("t{}", i % 100)],
                    metadata: serde_json::json!({}),
                    created_by: "bench".into(),
                    updated_by: "bench".into(),
                    created_at: t,
                    updated_at: t,
                }
            })
            .collect();
        let t0 = Instant::now();
        for chunk in rows.chunks(10_000) {
            db.insert_ideas(chunk, "bench").await.expect("insert");
        }
        println!("idea list over {n} ideas (inserted in {:.1} s):", t0.elapsed().as_secs_f64());
        let base = IdeaFilter { limit: 50, ..Default::default() };
        let cases: Vec<(&str, IdeaFilter)> = vec![
            ("first page", base.clone()),
            ("category", IdeaFilter { category: Some("gestao-riscos".into()), ..base.clone() }),
            (
                "status + priority",
                IdeaFilter {
                    status: Some(idea_bank::Status::Review),
                    priority: Some(idea_bank::Priority::High),
                    ..base.clone()
                },
            ),
            ("tag", IdeaFilter { tag: Some("t42".into()), ..base.clone() }),
            ("search", IdeaFilter { search: Some("latência".into()), ..base.clone() }),
            ("deep page (offset 50,000)", IdeaFilter { offset: (n / 2) as i64, ..base.clone() }),
        ];
        for (name, f) in cases {
            let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("hist");
            for _ in 0..200 {
                let t = Instant::now();
                let (page, total) = db.list_ideas(&f).await.expect("list");
                h.record(t.elapsed().as_micros() as u64).expect("record");
                std::hint::black_box((page, total));
            }
            println!(
                "  {name}: P50 {:.2} ms, P99 {:.2} ms",
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0
            );
        }
    });
}
