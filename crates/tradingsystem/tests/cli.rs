//! The command line: accounts, keys, audit export, and one-line errors on bad input.

mod common;

use common::one_line_error;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn ts(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tradingsystem"));
    cmd.args(args)
        .env("TS_DATA_DIR", data_dir)
        .env_remove("TS_DATABASE_URL")
        .current_dir(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn accounts_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = ts(d, &["user", "add", "carla", "--role", "viewer", "--password-stdin"], Some("a-good-password\n"));
    assert!(o.status.success(), "{o:?}");
    let o = ts(d, &["user", "add", "dan"], None);
    assert!(stdout(&o).contains("password: "), "a generated password is printed once");
    let list = stdout(&ts(d, &["user", "list"], None));
    assert!(list.contains("carla\tviewer") && list.contains("dan\ttrader"), "{list}");
    assert!(ts(d, &["user", "passwd", "carla", "--password-stdin"], Some("another-password\n")).status.success());
    let err = one_line_error(&ts(d, &["user", "add", "carla", "--password", "whatever-123"], None));
    assert!(err.contains("already exists"), "{err}");
    let err = one_line_error(&ts(d, &["user", "add", "eve", "--password", "short"], None));
    assert!(err.contains("password"), "{err}");
    let err = one_line_error(&ts(d, &["user", "add", "eve", "--role", "boss"], None));
    assert!(err.contains("boss"), "{err}");

    let o = ts(d, &["apikey", "create", "robot", "--role", "trader"], None);
    let out = stdout(&o);
    assert!(out.contains("key (shown once): ts_"), "{out}");
    assert!(stdout(&ts(d, &["apikey", "list"], None)).contains("robot"));
    assert!(stdout(&ts(d, &["apikey", "revoke", "robot"], None)).contains("revoked"));
    one_line_error(&ts(d, &["apikey", "revoke", "nobody"], None));
    assert!(stdout(&ts(d, &["migrate"], None)).contains("migrations applied"));
}

#[test]
fn bad_configuration_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tradingsystem"));
    let o = cmd.args(["serve"]).env("TS_DATA_DIR", d).env("TS_LISTEN", "not-an-address").output().unwrap();
    let err = one_line_error(&o);
    assert!(err.contains("TS_LISTEN"), "{err}");
    let o = Command::new(env!("CARGO_BIN_EXE_tradingsystem"))
        .args(["serve"])
        .env("TS_DATA_DIR", d)
        .env("TS_DATABASE_URL", "mysql://x")
        .output()
        .unwrap();
    assert!(one_line_error(&o).contains("mysql"));
    std::fs::write(d.join("bad.toml"), "listen = 5\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tradingsystem"))
        .args(["--config", "bad.toml", "migrate"])
        .current_dir(d)
        .env("TS_DATA_DIR", d)
        .output()
        .unwrap();
    one_line_error(&o);
    let o = ts(d, &["frobnicate"], None);
    one_line_error(&o);
    let o = ts(d, &["audit", "export"], None);
    assert!(one_line_error(&o).contains("no journal"));
}

#[test]
fn retention_run_archives_old_market_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = d.join("market/trades/date=2020-01-02/symbol=PETR4");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("part-0000.parquet"), b"x").unwrap();
    std::fs::write(old.join(".part-0001.parquet.tmp"), b"half").unwrap();
    let o = ts(d, &["retention", "run"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("1 partition(s)") && stdout(&o).contains("1 temporary"), "{}", stdout(&o));
    assert!(d.join("archive/market/trades/date=2020-01-02/symbol=PETR4/part-0000.parquet").exists());
    one_line_error(&ts(d, &["retention", "run", "--keep-days", "0"], None));
}

#[test]
fn example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tradingsystem.example.toml");
    let o = ts(dir.path(), &["--config", example.to_str().unwrap(), "migrate"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[tokio::test]
async fn audit_export_prints_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::Server::start(dir.path());
    let admin = s.admin().await;
    let (st, _) = s
        .post(
            &admin,
            "/api/v1/orders",
            serde_json::json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 100}),
        )
        .await;
    assert_eq!(st, 201);
    // Safe while the server runs: export only reads.
    let out = stdout(&ts(dir.path(), &["audit", "export"], None));
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let submit = lines.iter().find(|l| l["action"] == "submit_order").expect("the order is in the trail");
    for key in ["seq", "ts", "actor", "action", "result", "correlation_id", "details"] {
        assert!(submit.get(key).is_some(), "audit line has {key}");
    }
    assert_eq!(submit["actor"], "admin");
    let only = stdout(&ts(dir.path(), &["audit", "export", "--order-id", "1"], None));
    assert!(only.lines().all(|l| l.contains("\"order_id\":1")));
}

#[test]
fn signals_parse_from_stdin_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let o =
        ts(dir.path(), &["signals", "parse"], Some("🟢Swing Trade\nAtivo: BOVAW32\nCompra: 1,04 a 1,06\nStop: 0,70"));
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        (v["asset"].as_str(), v["buy_min"].as_f64(), v["stop"].as_f64()),
        (Some("BOVAW32"), Some(1.04), Some(0.7))
    );
    let o = ts(dir.path(), &["signals", "parse"], Some("Bom dia!"));
    assert_eq!(stdout(&o).trim(), "null");

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../signal-parser/tests/data/examples.jsonl");
    let o = ts(dir.path(), &["signals", "parse", "--jsonl", examples.to_str().unwrap()], None);
    assert!(o.status.success());
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected: Vec<serde_json::Value> = std::fs::read_to_string(&examples)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["expect"].clone())
        .collect();
    assert_eq!(lines.len(), expected.len(), "one output line per input line");
    for (got, want) in lines.iter().zip(&expected) {
        assert_eq!(got.is_null(), want.is_null());
        if !want.is_null() {
            assert_eq!(got["asset"], want["asset"]);
        }
    }

    // A line that is not a message keeps its place (null) and makes the exit status 1 with the line named.
    let o = ts(dir.path(), &["signals", "parse", "--jsonl", "-"], Some("\"Ativo: PETR4\\nCompra: 38,50\"\n{oops\n"));
    assert!(!o.status.success());
    assert_eq!(stdout(&o).lines().count(), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2"));
    let o = ts(dir.path(), &["signals", "parse", "--jsonl", "/no/such/file"], None);
    assert!(one_line_error(&o).contains("cannot open"));
}

#[test]
fn import_lowdb_is_idempotent_and_names_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ideas.json");
    std::fs::write(
        &file,
        r#"{"ideas":[
            {"id":1,"title":"Coletor B3","description":"Coletar trades","category":"coleta-dados","priority":"high","status":"new","createdAt":"2024-11-02T12:00:00.000Z","updatedAt":null},
            {"id":2,"title":"","description":"x","category":"dashboard","priority":"low"},
            {"id":3,"title":"Painel","description":"x","category":"dashboard","priority":"urgent"}
        ]}"#,
    )
    .unwrap();
    let o = ts(dir.path(), &["import", "lowdb", file.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("ideas: 1 imported, 0 already there, 2 rejected"), "{out}");
    assert!(out.contains("record 2: title") && out.contains("record 3: priority"), "{out}");
    let o = ts(dir.path(), &["import", "lowdb", file.to_str().unwrap()], None);
    assert!(stdout(&o).contains("ideas: 0 imported, 1 already there, 2 rejected"));

    std::fs::write(dir.path().join("bad.json"), "{not json").unwrap();
    let o = ts(dir.path(), &["import", "lowdb", dir.path().join("bad.json").to_str().unwrap()], None);
    assert!(one_line_error(&o).contains("is not JSON"));
    let o = ts(dir.path(), &["import", "lowdb", "/no/such.json"], None);
    assert!(one_line_error(&o).contains("cannot read"));
}

/// The example files README's commands use exist and work as written (run from the repository root).
#[test]
fn the_readme_example_files_work() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let messages = root.join("docs/examples/messages.jsonl");
    let o = ts(dir.path(), &["signals", "parse", "--jsonl", messages.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 6 && lines.iter().filter(|l| **l == "null").count() >= 2, "{out}");
    assert!(lines.iter().filter(|l| l.contains("\"asset\"")).count() >= 4, "{out}");
    let ideas = root.join("docs/examples/ideas.json");
    let o = ts(dir.path(), &["import", "lowdb", ideas.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("ideas: 2 imported, 0 already there, 0 rejected"), "{}", stdout(&o));
    // Every file README names under docs/examples exists.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for word in readme.split_whitespace().filter(|w| w.starts_with("docs/examples/")) {
        let path = word.trim_end_matches(|c: char| !c.is_alphanumeric());
        assert!(root.join(path).exists(), "README names {path}, which does not exist");
    }
}

/// `market generate --start` puts the data in B3 sessions of the chosen dates: 10:00–18:00 São Paulo, weekdays
/// only, continuing at the next weekday's open; a weekend or a malformed date is a one-line error.
#[test]
fn generated_data_falls_in_sessions_from_the_chosen_date() {
    use chrono::{Datelike, Timelike};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    // One event a minute: 480 a session, so 1,500 trades spill from Friday into Monday.
    let args = ["market", "generate", "--symbol", "PETR4", "--ticks", "1500", "--step-ms", "60000", "--start"];
    let o = ts(dir.path(), &[&args[..], &["2025-03-07", "--out", out]].concat(), None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let trades = market_store::read_trades(&dir.path().join("market/trades")).unwrap();
    assert_eq!(trades.len(), 1500);
    let local: Vec<_> = trades.iter().map(|t| t.exchange_ts.with_timezone(&chrono_tz::America::Sao_Paulo)).collect();
    let first = local.iter().min().unwrap();
    assert_eq!((first.date_naive().to_string(), first.hour()), ("2025-03-07".to_string(), 10));
    assert!(local.iter().all(|t| (10..18).contains(&t.hour())), "inside the session");
    assert!(local.iter().all(|t| t.weekday().num_days_from_monday() < 5), "weekdays only");
    assert!(local.iter().any(|t| t.date_naive().to_string() == "2025-03-10"), "continued on Monday");

    for (bad, says) in [("2025-03-08", "B3 has no session"), ("08/03/2025", "--start must be a date")] {
        let o = ts(dir.path(), &[&args[..], &[bad, "--out", out]].concat(), None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says) && err.trim().lines().count() == 1, "{err}");
    }
}
