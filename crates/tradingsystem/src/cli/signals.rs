//! `tradingsystem signals`: TP-Capital's signal parser on the command line.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum SignalsCmd {
    /// Parses a signal message read from stdin and prints the parse as JSON (`null` when it is not a signal).
    /// With --jsonl FILE (`-` for stdin), parses one message per line (a JSON string, or an object with a "text"
    /// field) and prints one JSON line per input line.
    Parse {
        #[arg(long, value_name = "FILE")]
        jsonl: Option<PathBuf>,
    },
}

pub fn run(cmd: SignalsCmd) -> Result<()> {
    match cmd {
        SignalsCmd::Parse { jsonl } => signals_parse(jsonl.as_deref()),
    }
}

/// The message a JSONL line carries: a JSON string, or an object's `text` (or `message`) field.
fn jsonl_message(line: &str) -> Result<String, String> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(serde_json::Value::Object(o)) => o
            .get("text")
            .or_else(|| o.get("message"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| "an object without a \"text\" string".to_string()),
        Ok(_) => Err("neither a JSON string nor an object with \"text\"".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

fn signals_parse(jsonl: Option<&std::path::Path>) -> Result<()> {
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let Some(path) = jsonl else {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("cannot read stdin")?;
        serde_json::to_writer(&mut out, &signal_parser::parse(&text))?;
        writeln!(out)?;
        return Ok(());
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut bad = 0usize;
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read line {}", i + 1))?;
        let parsed = if line.trim().is_empty() {
            None
        } else {
            match jsonl_message(&line) {
                Ok(text) => signal_parser::parse(&text),
                Err(e) => {
                    // The output keeps one line per input line; the bad one is reported and makes the exit status 1.
                    eprintln!("line {}: {e}", i + 1);
                    bad += 1;
                    None
                }
            }
        };
        serde_json::to_writer(&mut out, &parsed)?;
        writeln!(out)?;
    }
    out.flush()?;
    if bad > 0 {
        bail!("{bad} line(s) could not be read as messages");
    }
    Ok(())
}
