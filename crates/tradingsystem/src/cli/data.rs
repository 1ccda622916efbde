//! `tradingsystem migrate`, `retention` and `import`: the data directory and the database.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use tradingsystem::{config::Config, serve};

#[derive(Subcommand)]
pub enum ImportCmd {
    /// Reads a LowDB JSON file: the Idea Bank ({"items":[...]} or the legacy {"ideas":[...]}) or the
    /// documentation registry ({"systems":[...],"ideas":[...]}). Idempotent; malformed records are named and
    /// skipped. Exits 0 whenever the file could be read.
    Lowdb { file: PathBuf },
}

#[derive(Subcommand)]
pub enum RetentionCmd {
    /// Moves Parquet partitions older than --keep-days (default 90) to archive/ and removes temporary files a
    /// crash left behind. Log files rotate daily and keep 30 days on their own.
    Run {
        #[arg(long, default_value_t = 90)]
        keep_days: i64,
        /// TP-Capital signals older than this are exported to archive/tp-capital/*.csv, then removed.
        #[arg(long, default_value_t = 30)]
        signal_days: i64,
    },
}

/// Opens (creating and migrating) the configured database for one command, and closes it after.
async fn with_db<T>(cfg: &Config, job: impl AsyncFnOnce(&storage::Db) -> Result<T>) -> Result<T> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data dir {}", cfg.data_dir.display()))?;
    let db = serve::open_db(cfg).await?;
    let result = job(&db).await;
    db.close().await;
    result
}

pub async fn migrate(cfg: &Config) -> Result<()> {
    with_db(cfg, async |_| Ok(())).await?;
    println!("migrations applied to {}", serve::redact(&cfg.database_url));
    Ok(())
}

pub async fn import(cfg: &Config, cmd: ImportCmd) -> Result<()> {
    let ImportCmd::Lowdb { file } = cmd;
    let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let report = with_db(cfg, async |db| tradingsystem::import::import_lowdb(db, &doc).await).await?;
    for (what, c) in [("ideas", &report.ideas), ("systems", &report.systems)] {
        println!("{what}: {} imported, {} already there, {} rejected", c.imported, c.already, c.rejected.len());
        for r in &c.rejected {
            println!("  rejected {r}");
        }
    }
    for (k, n) in &report.ignored {
        println!("not imported: \"{k}\" ({n} record(s)): nothing in this system takes it");
    }
    Ok(())
}

pub async fn retention(cfg: &Config, cmd: RetentionCmd) -> Result<()> {
    let RetentionCmd::Run { keep_days, signal_days } = cmd;
    if !(1..=36_500).contains(&keep_days) {
        bail!("--keep-days must be between 1 and 36500");
    }
    if !(1..=36_500).contains(&signal_days) {
        bail!("--signal-days must be between 1 and 36500");
    }
    let removed = market_store::clean_temporaries(&cfg.data_dir);
    let today = market_store::trading_date(chrono::Utc::now());
    let r = market_store::apply_retention(&cfg.data_dir, today, keep_days)?;
    println!(
        "market data: {} partition(s) older than {keep_days} days moved to {}; {removed} temporary file(s) removed",
        r.partitions_archived,
        cfg.data_dir.join("archive").display()
    );
    let t = with_db(cfg, async |db| {
        Ok(tp_capital::apply_retention(db, &cfg.data_dir, chrono::Utc::now(), signal_days, 90).await?)
    })
    .await?;
    let file = t.export_file.map(|f| format!(" to {}", f.display())).unwrap_or_default();
    println!(
        "signals: {} older than {signal_days} days exported{file}, {} removed; {} deleted signal(s) left the archive; {} ingestion log line(s) removed",
        t.exported, t.removed_live, t.removed_archived, t.removed_log_lines
    );
    Ok(())
}
