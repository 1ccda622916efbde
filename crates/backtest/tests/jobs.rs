//! The job service: a queued job waits for the worker, a running one stops when removed, and the worker goes on.

use backtest::jobs::{JobRequest, JobStatus, Jobs};
use chrono::{TimeZone, Utc};
use domain::{Price, Qty};
use market_data::{Level, Quote};
use std::time::{Duration, Instant};

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not reached");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn removing_a_running_job_stops_it_and_the_next_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Utc.with_ymd_and_hms(2025, 3, 10, 13, 0, 0).unwrap();
    let quotes: Vec<Quote> = (0..400_000i64)
        .map(|i| {
            let mid = 385_000 + (i % 50) * 100;
            Quote {
                symbol: "PETR4".into(),
                bid: Some(Level { price: Price(mid - 100), quantity: Qty(500) }),
                ask: Some(Level { price: Price(mid), quantity: Qty(500) }),
                ts: t0 + chrono::Duration::milliseconds(i * 50),
            }
        })
        .collect();
    market_store::ParquetStore::new(dir.path()).write_quotes(&quotes).unwrap();
    let jobs = Jobs::start(vec![dir.path().join("market")], dir.path().join("backtests"), 1, 4);
    let req = |slow: i64| -> JobRequest {
        serde_json::from_value(serde_json::json!({
            "strategy": "sma_cross", "symbols": ["PETR4"], "params": {"fast": 1, "slow": slow}
        }))
        .unwrap()
    };
    let a = jobs.submit(req(20), Utc::now()).unwrap();
    let b = jobs.submit(req(30), Utc::now()).unwrap();
    assert_eq!(b.status, JobStatus::Queued, "one worker: the second waits");
    wait_for("a running with progress", || {
        jobs.get(&a.id).is_some_and(|v| v.status == JobStatus::Running && v.events > 0)
    });
    assert!(jobs.delete(&a.id));
    assert!(jobs.get(&a.id).is_none());
    wait_for("b done", || jobs.get(&b.id).is_some_and(|v| v.status == JobStatus::Done));
    let b = jobs.get(&b.id).unwrap();
    assert_eq!(b.events, 400_000);
    assert!(dir.path().join("backtests").join(&b.id).join("report.html").exists());
    assert!(!dir.path().join("backtests").join(&a.id).exists(), "a stopped job leaves no report");

    // The queue is bounded.
    let many: Vec<_> = (0..8).map(|i| jobs.submit(req(20 + i), Utc::now())).collect();
    assert!(many.iter().any(|r| matches!(r, Err(backtest::jobs::JobError::Busy(4)))));
    jobs.shutdown();
}
