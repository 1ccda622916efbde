//! Everything on the market and order path reads time from the injected clock (`clock::Clock`), so a backtest runs
//! the very code that trades at the data's time. This keeps it so: outside their tests, these crates never read
//! the wall clock themselves. (`domain` has the same check for itself, `Instant` included.)

use std::path::{Path, PathBuf};

/// The crates on the market and order path.
const ON_THE_PATH: &[&str] = &[
    "domain",
    "market-data",
    "data-capture",
    "order-manager",
    "paper-broker",
    "fix",
    "fix-broker",
    "strategy",
    "signal-trading",
];

/// Reading the wall clock's date and time. `Instant::now` is allowed: it measures latencies for metrics and
/// never decides anything.
const WALL_CLOCK: &[&str] = &["Utc::now", "Local::now", "SystemTime::now"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_market_and_order_path_reads_only_the_injected_clock() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    let mut offenders = Vec::new();
    for name in ON_THE_PATH {
        let mut files = Vec::new();
        sources(&crates.join(name).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            // Unit tests sit at the end of a file, after `#[cfg(test)]`, and files named tests.rs are tests.
            if file.file_name().is_some_and(|f| f == "tests.rs") {
                continue;
            }
            let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
            for (n, line) in code.lines().enumerate() {
                if WALL_CLOCK.iter().any(|c| line.contains(c)) && !line.trim_start().starts_with("//") {
                    offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "found the sources ({checked} files)");
    assert!(offenders.is_empty(), "read the wall clock instead of the injected clock:\n{}", offenders.join("\n"));
}
