//! `tradingsystem audit`: the Order Manager's journal as an audit trail.

use anyhow::{bail, Result};
use clap::Subcommand;
use std::io::Write;
use tradingsystem::config;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Prints the audit trail as JSON lines (who, what, when, why, result, correlation id). Safe while serving.
    Export {
        /// Only the records of this order.
        #[arg(long)]
        order_id: Option<u64>,
        /// Print the raw journal records instead of audit entries.
        #[arg(long)]
        raw: bool,
    },
}

pub fn run(cfg: &config::Config, cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::Export { order_id, raw } => audit_export(cfg, order_id, raw),
    }
}

fn audit_export(cfg: &config::Config, order_id: Option<u64>, raw: bool) -> Result<()> {
    let path = cfg.journal_path();
    if !path.exists() {
        bail!("no journal at {} (set TS_DATA_DIR to the server's data directory)", path.display());
    }
    let records = journal::read_file(&path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (i, bytes) in records.iter().enumerate() {
        let rec: order_manager::Record = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("warning: record {} could not be decoded: {e}", i + 1);
                continue;
            }
        };
        if order_id.is_some_and(|id| rec.entry.order_id() != Some(id)) {
            continue;
        }
        let line = if raw { serde_json::to_string(&rec)? } else { serde_json::to_string(&rec.audit(i as u64 + 1))? };
        if writeln!(out, "{line}").is_err() {
            // The reader went away (e.g. `| head`): not an error.
            return Ok(());
        }
    }
    let _ = out.flush();
    Ok(())
}
