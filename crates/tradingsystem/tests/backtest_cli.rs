//! `tradingsystem backtest` as a user runs it: on generated Parquet data and on a B3 trade file, a sweep, a
//! walk-forward, and one-line errors for bad input.

mod common;

use common::{generate_market_data, one_line_error};
use std::path::Path;
use std::process::{Command, Output};

fn ts(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tradingsystem"))
        .args(args)
        .env("TS_DATA_DIR", dir)
        .env_remove("TS_DATABASE_URL")
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn generate(dir: &Path, extra: &[&str]) {
    generate_market_data(dir, extra);
}

#[test]
fn a_backtest_on_generated_parquet_prints_its_summary_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--kind", "quotes,trades", "--ticks", "20000"]);
    let report = dir.path().join("report");
    let args = [
        "backtest",
        "--strategy",
        "sma_cross",
        "--symbols",
        "PETR4",
        "--from",
        "2025-03-10",
        "--to",
        "2025-03-10",
        "--param",
        "fast=1",
        "--param",
        "slow=50",
        "--param",
        "hold_ticks=200",
        "--data",
        "market",
        "--out",
        "report",
    ];
    let out = ok(&ts(dir.path(), &args));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["strategy"], "sma_cross");
    assert!(summary["complete"].as_bool().unwrap());
    assert!(summary["events"].as_u64().unwrap() >= 20_000);
    let orders = summary["orders"].as_u64().unwrap();
    assert!(orders > 5, "{orders}");
    assert_eq!(summary["fills"].as_u64().unwrap(), orders, "market orders fill whole against the quote");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written, summary, "summary.json is what was printed");
    let fills = std::fs::read_to_string(report.join("fills.csv")).unwrap();
    assert_eq!(fills.lines().count() as u64, orders + 1);
    assert!(fills.starts_with("order_id,ts,symbol,side,quantity,price,value,exchange_fees"));
    for f in ["report.html", "equity.png", "orders.parquet", "fills.parquet", "positions.csv", "trades.csv"] {
        assert!(report.join(f).exists(), "{f}");
    }
    // Same data, same parameters: the same bytes.
    ok(&ts(dir.path(), &[&args[..args.len() - 1], &["report2"]].concat()));
    assert_eq!(
        std::fs::read(report.join("summary.json")).unwrap(),
        std::fs::read(dir.path().join("report2/summary.json")).unwrap()
    );

    // The default data directory is the data dir's market/ (TS_DATA_DIR here).
    let o = ts(dir.path(), &["backtest", "--strategy", "sma_cross", "--symbols", "PETR4"]);
    assert!(ok(&o).contains("\"complete\": true"));
}

#[test]
fn a_backtest_on_a_b3_trade_file() {
    let dir = tempfile::tempdir().unwrap();
    // A random walk of 3,000 trades in B3's layout: columns in B3's order, a column we do not read, decimal commas.
    let mut text = String::from(
        "DataReferencia;CodigoInstrumento;AcaoAtualizacao;PrecoNegocio;QuantidadeNegociada;HoraFechamento;CodigoIdentificadorNegocio;TipoSessaoPregao;DataNegocio\n",
    );
    let (mut cents, mut x) = (3850i64, 99u64);
    for i in 0..3000u64 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        cents += if (x >> 33) % 2 == 0 { 1 } else { -1 };
        let ms = 100_000_000 + (i / 10) * 1000 + (i % 10) * 100; // from 10:00:00.000, ten a second
        let hhmmss = ms / 1000;
        let (h, m, s) = (hhmmss / 10_000, hhmmss / 100 % 100, hhmmss % 100);
        let (m, s) = (m + s / 60, s % 60);
        let (h, m) = (h + m / 60, m % 60);
        text.push_str(&format!(
            "2025-03-10;PETR4;0;{},{:02};100;{:02}{:02}{:02}{:03};{};1;2025-03-10\n",
            cents / 100,
            cents % 100,
            h,
            m,
            s,
            ms % 1000,
            i + 1
        ));
    }
    text.push_str("2025-03-10;VALE3;0;60,10;100;100000000;9999;1;2025-03-10\n");
    std::fs::write(dir.path().join("NEG_20250310.txt"), text).unwrap();
    let o = ts(
        dir.path(),
        &[
            "backtest",
            "--strategy",
            "sma_cross",
            "--symbols",
            "PETR4",
            "--data",
            "NEG_20250310.txt",
            "--param",
            "fast=3",
            "--param",
            "slow=20",
            "--param",
            "price=trade",
            "--out",
            "r",
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(summary["events"], 3000, "only PETR4's rows");
    assert!(summary["orders"].as_u64().unwrap() > 10);
    assert!(
        summary["first_event"].as_str().unwrap().starts_with("2025-03-10T13:00:00"),
        "São Paulo 10:00 is 13:00 UTC"
    );

    // A malformed row is a one-line error naming the line.
    std::fs::write(dir.path().join("bad.txt"), "CodigoInstrumento;PrecoNegocio;QuantidadeNegociada;HoraFechamento;DataNegocio\nPETR4;38,50;100;100000000;2025-03-10\nPETR4;38,505,1;100;100000100;2025-03-10\n").unwrap();
    let err = one_line_error(&ts(
        dir.path(),
        &["backtest", "--strategy", "sma_cross", "--symbols", "PETR4", "--data", "bad.txt"],
    ));
    assert!(err.contains("line 3") && err.contains("price"), "{err}");
}

#[test]
fn sweeps_rank_every_point_and_walk_forward_reports_out_of_sample() {
    let dir = tempfile::tempdir().unwrap();
    // One quote every 5 s: about 5 sessions.
    generate(dir.path(), &["--kind", "quotes", "--ticks", "25000", "--step-ms", "5000"]);
    let base = ["backtest", "--strategy", "sma_cross", "--symbols", "PETR4", "--data", "market", "--jobs", "2"];
    let o =
        ts(dir.path(), &[&base[..], &["--param", "fast=2:4:1", "--param", "slow=10,20", "--out", "sweep"]].concat());
    let table = ok(&o);
    assert!(table.lines().next().unwrap().contains("rank"), "{table}");
    assert_eq!(table.lines().count(), 7, "a header and six runs: {table}");
    let csv = std::fs::read_to_string(dir.path().join("sweep/sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7);
    assert!(dir.path().join("sweep/best/summary.json").exists());

    let o = ts(
        dir.path(),
        &[&base[..], &["--param", "fast=2,3", "--param", "slow=10", "--walk-forward", "2:1", "--out", "wf"]].concat(),
    );
    ok(&o);
    let wf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("wf/walk_forward.json")).unwrap()).unwrap();
    let windows = wf["windows"].as_array().unwrap();
    assert!(windows.len() >= 2, "{wf}");
    assert!(windows.iter().all(|w| w["params"]["slow"] == 10 && w["test"]["trades"].is_u64()));
}

#[test]
fn bad_input_is_a_one_line_error_before_any_data_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| ts(dir.path(), &[&["backtest", "--symbols", "PETR4"][..], extra].concat());
    let err = one_line_error(&run(&["--strategy", "nope"]));
    assert!(err.contains("unknown strategy \"nope\"") && err.contains("sma_cross"), "{err}");
    let err = one_line_error(&run(&["--strategy", "sma_cross", "--param", "fsat=3"]));
    assert!(err.contains("fsat"), "{err}");
    let err = one_line_error(&run(&["--strategy", "sma_cross", "--param", "fast=50", "--param", "slow=10"]));
    assert!(err.contains("fast < slow"), "{err}");
    let err = one_line_error(&run(&["--strategy", "sma_cross", "--from", "10/03/2025"]));
    assert!(err.contains("--from"), "{err}");
    let err = one_line_error(&run(&["--strategy", "sma_cross", "--data", "missing"]));
    assert!(err.contains("missing"), "{err}");
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let err = one_line_error(&run(&["--strategy", "sma_cross", "--data", "empty"]));
    assert!(err.contains("no market data for PETR4"), "{err}");
    let list = ok(&ts(dir.path(), &["backtest", "--list"]));
    assert!(list.contains("sma_cross"));
}

#[test]
fn tp_signals_trades_the_signals_file_given() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--kind", "quotes,trades", "--ticks", "20000"]);
    // The API's export shape; the entry is above the market, so it fills at once and the exits follow.
    let signals = r#"{"data": [
        {"id": 1, "asset": "PETR4", "side": "BUY", "buy_min": 39.0, "buy_max": 40.0, "stop": 37.0, "targets": [40.5], "ts": "2025-03-10T13:05:00Z"},
        {"id": 2, "asset": "VALE3", "side": "BUY", "buy_max": 70.0, "ts": "2025-03-10T13:06:00Z"}
    ]}"#;
    std::fs::write(dir.path().join("signals.json"), signals).unwrap();
    let args =
        ["backtest", "--strategy", "tp_signals", "--symbols", "PETR4", "--data", "market", "--signals", "signals.json"];
    let summary: serde_json::Value = serde_json::from_str(&ok(&ts(dir.path(), &args))).unwrap();
    assert_eq!((&summary["orders"], &summary["refused"]), (&3.into(), &0.into()), "entry, stop, target: {summary}");
    assert_eq!(summary["per_symbol"][0]["final_position"], 100, "still held: neither exit reached");

    std::fs::write(dir.path().join("bad.json"), "{\"id\": 1}\n").unwrap();
    let err = one_line_error(&ts(dir.path(), &[&args[..7], &["--signals", "bad.json"]].concat()));
    assert!(err.contains("signal 1") && err.contains("asset"), "{err}");
}
