//! The dashboard in a real browser: `tests/browser/dashboard.mjs` drives headless Chromium through playwright-core
//! against the real server (log in, prices move, an order in the blotter and positions, the kill switch and the
//! next order's rejection, a backtest from its panel, a live strategy started and stopped, no console errors). Needs Node.js, `/usr/bin/chromium` and `npm ci` in tests/browser;
//! without them it says it skipped, unless `TS_REQUIRE_BROWSER=1` (CI) makes that a failure. Screenshots go to
//! `$CARGO_TARGET_TMPDIR/browser-shots`, never into the tree.

mod common;

use common::{Server, ADMIN_PASSWORD};
use std::path::{Path, PathBuf};
use std::process::Command;

fn missing_prerequisite(dir: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} not found (apt-get install chromium)"));
    }
    if Command::new("node").arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        return Some("node not found".into());
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Some(format!("playwright-core not installed (cd {} && npm ci)", dir.display()));
    }
    None
}

#[test]
fn dashboard_in_headless_chromium() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Some(why) = missing_prerequisite(&dir) {
        if std::env::var("TS_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("browser test required but cannot run: {why}");
        }
        eprintln!("skipped: browser test: {why}");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    // History for the backtest panel (older than the retention window: the server archives it at start, and
    // backtests read the archive too).
    common::generate_market_data(data.path(), &["--kind", "quotes", "--ticks", "20000"]);
    // A live strategy, off until the test starts it from the dashboard.
    std::fs::write(
        data.path().join("tradingsystem.toml"),
        "[[strategies]]\nname = \"vale-breakout\"\nkind = \"breakout\"\nsymbols = [\"VALE3\"]\nenabled = false\n",
    )
    .unwrap();
    // The project's own documentation, as `serve` from the repository root would index it.
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let server = Server::start_with(data.path(), &[("TS_DOCS_DIR", docs.to_str().unwrap_or("docs"))]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-shots");
    let out = Command::new("node")
        .arg("dashboard.mjs")
        .arg(server.url(""))
        .arg(ADMIN_PASSWORD)
        .arg(&shots)
        .current_dir(&dir)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "browser test failed (screenshots in {}):\n{stdout}\n{stderr}", shots.display());
}
