//! `tradingsystem`: the one binary of TradingSystem.

use tradingsystem::{config, logging, serve};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use gateway::auth::{check_password_policy, check_username, hash_password, new_api_key, random_hex, Role};
use std::io::{BufRead, Write};
use std::path::PathBuf;

// mimalloc: the data path allocates on one thread and frees on another (events fanned out to subscribers), where
// glibc's allocator halved the pipeline's throughput (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tradingsystem",
    version,
    about = "Algorithmic-trading backend for B3: market data, orders, risk, positions, audit."
)]
struct Cli {
    /// TOML configuration file (default: ./tradingsystem.toml when present). Environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every service in one process: API and dashboard, Order Manager, simulated market, paper broker.
    Serve(ServeArgs),
    /// Reads the audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Manages user accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Manages API keys for programs and bots.
    #[command(subcommand)]
    Apikey(ApiKeyCmd),
    /// Applies database migrations (SQLite or PostgreSQL, from TS_DATABASE_URL).
    Migrate,
    /// Market data tools.
    #[command(subcommand)]
    Market(MarketCmd),
    /// Retention jobs (`serve` also runs them daily).
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// Trading signals (TP-Capital's Telegram messages).
    #[command(subcommand)]
    Signals(SignalsCmd),
    /// Imports data from the original system.
    #[command(subcommand)]
    Import(ImportCmd),
}

#[derive(Subcommand)]
enum ImportCmd {
    /// Reads a LowDB JSON file: the Idea Bank ({"items":[...]} or the legacy {"ideas":[...]}) or the
    /// documentation registry ({"systems":[...],"ideas":[...]}). Idempotent; malformed records are named and
    /// skipped. Exits 0 whenever the file could be read.
    Lowdb { file: PathBuf },
}

#[derive(Subcommand)]
enum SignalsCmd {
    /// Parses a signal message read from stdin and prints the parse as JSON (`null` when it is not a signal).
    /// With --jsonl FILE (`-` for stdin), parses one message per line (a JSON string, or an object with a "text"
    /// field) and prints one JSON line per input line.
    Parse {
        #[arg(long, value_name = "FILE")]
        jsonl: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RetentionCmd {
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

#[derive(Subcommand)]
enum MarketCmd {
    /// Writes synthetic B3 trades (Parquet, our layout) from the simulated market, for replay and backtests.
    Generate {
        #[arg(long, default_value = "PETR4")]
        symbol: String,
        /// Number of trades.
        #[arg(long, default_value_t = 100_000)]
        ticks: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory (files go under OUT/market/trades/date=.../symbol=.../).
        #[arg(long)]
        out: PathBuf,
        /// Milliseconds between market events on the synthetic clock.
        #[arg(long, default_value_t = 20)]
        step_ms: u64,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Services to run (comma-separated). This build runs them all in one process (gateway,market,oms); the NATS
    /// bus exists, but the wiring that runs a subset per process over it is not built yet.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    services: Vec<String>,
}

#[derive(Subcommand)]
enum AuditCmd {
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

#[derive(Args)]
struct PasswordArgs {
    /// The password (visible in the process list; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Creates a user. Without a password option, a random one is generated and printed once.
    Add {
        username: String,
        #[arg(long, value_parser = ["admin", "trader", "viewer"], default_value = "trader")]
        role: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Lists users.
    List,
    /// Sets a user's password (the user's open sessions end).
    Passwd {
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Disables a user: logins are refused and open sessions end (within 2 s on a running server).
    Disable { username: String },
    /// Lets a disabled user log in again (sessions ended by the disable stay ended).
    Enable { username: String },
    /// Changes a user's role; open sessions get it from their next request.
    Role {
        username: String,
        #[arg(value_parser = ["admin", "trader", "viewer"])]
        role: String,
    },
}

#[derive(Subcommand)]
enum ApiKeyCmd {
    /// Creates a key and prints it once.
    Create {
        name: String,
        #[arg(long, value_parser = ["admin", "trader", "viewer"], default_value = "trader")]
        role: String,
    },
    /// Lists keys (prefixes only; keys are stored hashed).
    List,
    /// Revokes a key by id or name.
    Revoke { id_or_name: String },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line: clap's first line names the problem; the usage that follows is what --help is for.
            let text = e.to_string();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
            let hint = text
                .lines()
                .find(|l| l.contains("possible values"))
                .map(|l| format!(" ({})", l.trim()))
                .unwrap_or_default();
            eprintln!("{first}{hint}; see --help");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(cli) {
        eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let cfg = config::load(cli.config.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => {
            const ALL: [&str; 3] = ["gateway", "market", "oms"];
            let mut wanted: Vec<&str> = args.services.iter().map(|s| s.trim()).collect();
            wanted.sort_unstable();
            wanted.dedup();
            if wanted != ["all"] && wanted != ALL {
                // The NATS bus carries market data and order events between processes, but each service's own
                // process wiring (a gateway without an Order Manager, ...) is not built yet.
                bail!("--services {}: this build runs gateway, market and oms together in one process; use --services all", args.services.join(","));
            }
            std::fs::create_dir_all(&cfg.data_dir)
                .with_context(|| format!("cannot create data dir {}", cfg.data_dir.display()))?;
            let _guard = logging::init("tradingsystem", &cfg.log_level, Some(&cfg.data_dir))?;
            let handle = gateway::telemetry::install_prometheus()
                .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
            rt.block_on(serve::run(cfg, Some(handle)))
        }
        Command::Audit(AuditCmd::Export { order_id, raw }) => audit_export(&cfg, order_id, raw),
        Command::User(cmd) => {
            let _guard = logging::init("cli", "warn", None)?;
            rt.block_on(user_cmd(&cfg, cmd))
        }
        Command::Apikey(cmd) => {
            let _guard = logging::init("cli", "warn", None)?;
            rt.block_on(apikey_cmd(&cfg, cmd))
        }
        Command::Market(MarketCmd::Generate { symbol, ticks, seed, out, step_ms }) => {
            generate(&symbol, ticks, seed, &out, step_ms)
        }
        Command::Signals(SignalsCmd::Parse { jsonl }) => signals_parse(jsonl.as_deref()),
        Command::Import(ImportCmd::Lowdb { file }) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let doc: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
            let _guard = logging::init("cli", "warn", None)?;
            let report = rt.block_on(async {
                std::fs::create_dir_all(&cfg.data_dir)?;
                let db = serve::open_db(&cfg).await?;
                let r = tradingsystem::import::import_lowdb(&db, &doc).await;
                db.close().await;
                r
            })?;
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
        Command::Retention(RetentionCmd::Run { keep_days, signal_days }) => {
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
            let _guard = logging::init("cli", "warn", None)?;
            let t = rt.block_on(async {
                std::fs::create_dir_all(&cfg.data_dir)?;
                let db = serve::open_db(&cfg).await?;
                let t = tp_capital::apply_retention(&db, &cfg.data_dir, chrono::Utc::now(), signal_days, 90).await;
                db.close().await;
                anyhow::Ok(t?)
            })?;
            let file = t.export_file.map(|f| format!(" to {}", f.display())).unwrap_or_default();
            println!(
                "signals: {} older than {signal_days} days exported{file}, {} removed; {} deleted signal(s) left the archive; {} ingestion log line(s) removed",
                t.exported, t.removed_live, t.removed_archived, t.removed_log_lines
            );
            Ok(())
        }
        Command::Migrate => {
            let _guard = logging::init("cli", "warn", None)?;
            rt.block_on(async {
                std::fs::create_dir_all(&cfg.data_dir)?;
                let db = serve::open_db(&cfg).await?;
                db.close().await;
                println!("migrations applied to {}", serve::redact(&cfg.database_url));
                Ok(())
            })
        }
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

fn generate(symbol: &str, ticks: u64, seed: u64, out: &std::path::Path, step_ms: u64) -> Result<()> {
    if ticks == 0 || ticks > 100_000_000 {
        bail!("--ticks must be between 1 and 100000000");
    }
    if step_ms == 0 {
        bail!("--step-ms must be at least 1");
    }
    let symbol = symbol.trim().to_ascii_uppercase();
    // Today's 10:00 in São Paulo (13:00 UTC): the synthetic session starts at the open.
    let start = chrono::Utc::now().date_naive().and_hms_opt(13, 0, 0).unwrap_or_default().and_utc();
    let instruments = domain::Instruments::b3_defaults(start.date_naive());
    if instruments.get(&symbol).is_none() {
        let known: Vec<&str> = instruments.iter().map(|i| i.symbol.as_str()).collect();
        bail!("unknown symbol {symbol:?}; the simulated market lists {}", known.join(", "));
    }
    let market = market_sim::SimMarket::new(instruments, market_sim::SimConfig { seed, trades_per_second: 50.0 });
    let mut store = market_store::ParquetStore::new(out);
    let mut batch = Vec::with_capacity(500_000);
    let (mut written, mut files) = (0u64, 0usize);
    let mut now = start;
    while written + (batch.len() as u64) < ticks {
        now += chrono::Duration::milliseconds(step_ms as i64);
        for mut t in market.step(&symbol, now) {
            if written + (batch.len() as u64) >= ticks {
                break;
            }
            t.receive_ts = now;
            batch.push(t);
        }
        if batch.len() >= 500_000 {
            files += store.write_trades(&batch)?.len();
            written += batch.len() as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        files += store.write_trades(&batch)?.len();
        written += batch.len() as u64;
    }
    println!(
        "wrote {written} {symbol} trades in {files} file(s) under {}",
        out.join("market").join("trades").display()
    );
    Ok(())
}

fn read_password(args: &PasswordArgs) -> Result<Option<String>> {
    if let Some(p) = &args.password {
        return Ok(Some(p.clone()));
    }
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()));
    }
    Ok(None)
}

async fn user_cmd(cfg: &config::Config, cmd: UserCmd) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    let db = serve::open_db(cfg).await?;
    match cmd {
        UserCmd::Add { username, role, password } => {
            check_username(&username).map_err(|m| anyhow::anyhow!("username: {m}"))?;
            let (pw, generated) = match read_password(&password)? {
                Some(p) => (p, false),
                None => (random_hex(12), true),
            };
            check_password_policy(&pw).map_err(|m| anyhow::anyhow!("password: {m}"))?;
            let role = Role::parse(&role).context("unknown role")?;
            let hash = hash_password(&pw).map_err(anyhow::Error::msg)?;
            db.create_user(&username, &hash, role.as_str()).await?;
            println!("created user {username} with role {}", role.as_str());
            if generated {
                println!("password: {pw}");
            }
        }
        UserCmd::List => {
            for u in db.list_users().await? {
                println!(
                    "{}\t{}\t{}{}",
                    u.username,
                    u.role,
                    u.created_at.to_rfc3339(),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        UserCmd::Passwd { username, password } => {
            let pw = read_password(&password)?.context("give the new password with --password or --password-stdin")?;
            check_password_policy(&pw).map_err(|m| anyhow::anyhow!("password: {m}"))?;
            let hash = hash_password(&pw).map_err(anyhow::Error::msg)?;
            db.set_password(&username, &hash).await?;
            println!("password changed for {username}");
        }
        UserCmd::Disable { username } => {
            let u = db.user_by_name(&username).await?.with_context(|| format!("no user named {username:?}"))?;
            db.update_user(&u.id, Some(true), None).await?;
            println!("disabled user {username}");
        }
        UserCmd::Enable { username } => {
            let u = db.user_by_name(&username).await?.with_context(|| format!("no user named {username:?}"))?;
            db.update_user(&u.id, Some(false), None).await?;
            println!("enabled user {username}");
        }
        UserCmd::Role { username, role } => {
            let u = db.user_by_name(&username).await?.with_context(|| format!("no user named {username:?}"))?;
            db.update_user(&u.id, None, Some(&role)).await?;
            println!("user {username} now has role {role}");
        }
    }
    db.close().await;
    Ok(())
}

async fn apikey_cmd(cfg: &config::Config, cmd: ApiKeyCmd) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    let db = serve::open_db(cfg).await?;
    match cmd {
        ApiKeyCmd::Create { name, role } => {
            let role = Role::parse(&role).context("unknown role")?;
            let (key, prefix, hash) = new_api_key();
            let k = db.create_api_key(&name, &hash, &prefix, role.as_str(), "cli").await?;
            println!("created API key {} ({}) with role {}", k.name, k.id, k.role);
            println!("key (shown once): {key}");
        }
        ApiKeyCmd::List => {
            for k in db.list_api_keys().await? {
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}…\t{}\t{}", k.id, k.name, k.prefix, k.role, state);
            }
        }
        ApiKeyCmd::Revoke { id_or_name } => {
            // Names are not unique: a name revokes its key only when exactly one active key carries it.
            let keys = db.list_api_keys().await?;
            let id = if keys.iter().any(|k| k.id == id_or_name) {
                id_or_name
            } else {
                let named: Vec<_> = keys.iter().filter(|k| k.name == id_or_name && k.revoked_at.is_none()).collect();
                match named.as_slice() {
                    [] => anyhow::bail!("no active API key with id or name {id_or_name:?}"),
                    [one] => one.id.clone(),
                    many => anyhow::bail!(
                        "{} active keys are named {id_or_name:?}; revoke one by id ({})",
                        many.len(),
                        many.iter().map(|k| k.id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                }
            };
            let k = db.revoke_api_key(&id).await?;
            println!("revoked API key {} ({})", k.name, k.id);
        }
    }
    db.close().await;
    Ok(())
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
