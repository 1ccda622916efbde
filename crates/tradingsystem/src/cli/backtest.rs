//! `tradingsystem backtest`: one run, a parameter sweep on all cores, or a walk-forward optimisation.

use anyhow::{anyhow, bail, Context as _, Result};
use backtest::event::Event;
use backtest::source::{b3, store, trading_date_of};
use backtest::{Control, DateRange, Feed, Latency, Outcome, RunSpec, SymbolTable};
use chrono::NaiveDate;
use clap::Args;
use domain::{Money, Symbol};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use strategy::params::{parse_assignment, Params};

#[derive(Args)]
pub struct BacktestArgs {
    /// The strategy (`--list` shows them).
    #[arg(long, required_unless_present = "list")]
    strategy: Option<String>,
    /// Symbols, comma-separated.
    #[arg(long, value_delimiter = ',', required_unless_present = "list")]
    symbols: Vec<String>,
    /// First trading date (inclusive, YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Last trading date (inclusive).
    #[arg(long)]
    to: Option<String>,
    /// A strategy parameter, `name=value`; `name=a:b:step` or `name=v1,v2,...` sweeps it.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Market data: a directory of our Parquet store (its `market/` or the data dir holding it) or a B3 trade file
    /// (text, `;`-separated with a header). Repeatable. Default: the data dir's `market/` and `archive/market/`.
    #[arg(long)]
    data: Vec<PathBuf>,
    /// Trading signals for strategies that take them (`tp_signals`): TP-Capital's signals as JSON, the body of
    /// `GET /api/v1/tp-capital/signals` or one signal per line.
    #[arg(long)]
    signals: Option<PathBuf>,
    /// Where to write summary.json, report.html and the orders, fills, positions and trades files.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Starting capital in R$.
    #[arg(long, default_value = "100000")]
    capital: String,
    /// Ticks of slippage on market orders filled at the touch or last price (no replayed book).
    #[arg(long, default_value_t = 0)]
    slippage_ticks: i64,
    /// Resting limits also fill at the touch, behind the quantity displayed at their price when they arrived
    /// (without it, only prints through their price fill them).
    #[arg(long)]
    queue_position: bool,
    /// Microseconds from an order to the exchange.
    #[arg(long, default_value_t = 0)]
    latency_to_venue_us: u64,
    /// Microseconds from the exchange's report back to us.
    #[arg(long, default_value_t = 0)]
    latency_to_us_us: u64,
    /// Annual CDI rate for the second Sharpe ratio (0.1065 for 10.65 %).
    #[arg(long, default_value_t = 0.0)]
    cdi: f64,
    /// Sweeps and walk-forward: how many runs at once (default: every core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Sweeps and walk-forward: the figure to rank by (sharpe, sortino, calmar, net_pnl, total_return, profit_factor).
    #[arg(long, default_value = "sharpe")]
    rank_by: String,
    /// Walk-forward optimisation: `TRAIN:TEST` trading days, e.g. `20:5`; the sweep is re-run on each train window
    /// and its best parameters are tested on the following test window.
    #[arg(long, value_name = "TRAIN:TEST")]
    walk_forward: Option<String>,
    /// Reads all the data into memory before the run (instead of streaming it), and reports the load and the run
    /// apart: what a benchmark of the run phase wants.
    #[arg(long)]
    preload: bool,
    /// Lists the strategies and exits.
    #[arg(long)]
    list: bool,
}

fn date(text: &Option<String>, name: &str) -> Result<Option<NaiveDate>> {
    text.as_deref()
        .map(|t| {
            NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                .map_err(|_| anyhow!("--{name} must be a date such as 2025-03-10, not {t:?}"))
        })
        .transpose()
}

/// A `--param` value: one, or the list a sweep runs over.
fn param_values(text: &str) -> Result<(String, Vec<Value>)> {
    let (name, raw) = text.split_once('=').ok_or_else(|| anyhow!("--param {text:?}: expected name=value"))?;
    let raw = raw.trim();
    let number = |s: &str| -> Result<f64> {
        s.trim().parse::<f64>().map_err(|_| anyhow!("--param {text:?}: {s:?} is not a number"))
    };
    let as_value = |v: f64, ints: bool| if ints { Value::from(v.round() as i64) } else { Value::from(v) };
    let parts: Vec<&str> = raw.split(':').collect();
    if parts.len() == 3 {
        let (a, b, step) = (number(parts[0])?, number(parts[1])?, number(parts[2])?);
        if step <= 0.0 || b < a {
            bail!("--param {text:?}: a sweep is start:end:step with start <= end and step > 0");
        }
        let ints = parts.iter().all(|p| p.trim().parse::<i64>().is_ok());
        let n = ((b - a) / step + 1e-9).floor() as usize + 1;
        if n > 10_000 {
            bail!("--param {text:?}: {n} values; at most 10000");
        }
        return Ok((name.trim().to_string(), (0..n).map(|i| as_value(a + step * i as f64, ints)).collect()));
    }
    if raw.contains(',') {
        let values = raw
            .split(',')
            .map(|v| parse_assignment(&format!("{name}={v}")).map(|(_, v)| v))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((name.trim().to_string(), values));
    }
    let (n, v) = parse_assignment(text)?;
    Ok((n, vec![v]))
}

/// Every combination of the swept values.
fn grid(params: &[(String, Vec<Value>)]) -> Vec<Params> {
    let mut out = vec![Params::new()];
    for (name, values) in params {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for p in &out {
            for v in values {
                let mut q = p.clone();
                q.insert(name.clone(), v.clone());
                next.push(q);
            }
        }
        out = next;
    }
    out
}

fn rank_value(o: &Outcome, by: &str) -> f64 {
    let s = &o.summary;
    let v = match by {
        "sortino" => s.returns.sortino,
        "calmar" => s.returns.calmar,
        "net_pnl" => Some(s.net_pnl.to_f64()),
        "total_return" => Some(s.returns.total_return),
        "profit_factor" => s.trades.profit_factor,
        _ => s.returns.sharpe,
    };
    v.filter(|x| x.is_finite()).unwrap_or(f64::NEG_INFINITY)
}

pub fn run(cfg: &tradingsystem::config::Config, args: BacktestArgs, rt: &tokio::runtime::Runtime) -> Result<()> {
    if args.list {
        for k in strategy::kinds::KINDS {
            println!("{:<16} {}", k.name, k.about);
        }
        return Ok(());
    }
    if !["sharpe", "sortino", "calmar", "net_pnl", "total_return", "profit_factor"].contains(&args.rank_by.as_str()) {
        bail!("--rank-by {:?}: choose sharpe, sortino, calmar, net_pnl, total_return or profit_factor", args.rank_by);
    }
    let name = args.strategy.clone().unwrap_or_default();
    let mut symbols = Vec::new();
    for s in &args.symbols {
        let s = s.trim().to_ascii_uppercase();
        symbols.push(s.parse::<Symbol>().map_err(|e| anyhow!("--symbols {s:?}: {e}"))?);
    }
    let mut spec = RunSpec::new(&name, symbols);
    spec.range = DateRange { from: date(&args.from, "from")?, to: date(&args.to, "to")? };
    if let (Some(f), Some(t)) = (spec.range.from, spec.range.to) {
        if f > t {
            bail!("--from {f} is after --to {t}");
        }
    }
    spec.settings.capital = Money::parse_decimal(&args.capital)
        .ok()
        .filter(|m| m.0 > 0)
        .ok_or_else(|| anyhow!("--capital {:?}: a positive amount in R$", args.capital))?;
    if !(0..=1000).contains(&args.slippage_ticks) {
        bail!("--slippage-ticks: 0 to 1000");
    }
    spec.settings.slippage_ticks = args.slippage_ticks;
    spec.settings.queue_position = args.queue_position;
    spec.settings.latency = Latency { to_venue_us: args.latency_to_venue_us, to_us_us: args.latency_to_us_us };
    if !(0.0..=10.0).contains(&args.cdi) {
        bail!("--cdi: an annual rate such as 0.1065 (10.65 %)");
    }
    spec.settings.cdi = args.cdi;
    let swept: Vec<(String, Vec<Value>)> = args.params.iter().map(|p| param_values(p)).collect::<Result<_>>()?;
    let points = grid(&swept);
    // Every point is checked before any data is read: a typo fails in a millisecond, not after the load.
    for p in &points {
        let mut s = spec.clone();
        s.params = p.clone();
        backtest::check(&s)?;
    }
    // By default the data dir's market data, with what retention moved to the archive.
    let data = if args.data.is_empty() {
        let archive = cfg.data_dir.join("archive").join("market");
        let mut d = vec![cfg.data_dir.join("market")];
        if archive.is_dir() {
            d.push(archive);
        }
        d
    } else {
        args.data.clone()
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping: the report covers what ran so far");
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    if let Some(wf) = &args.walk_forward {
        let (train, test) = wf
            .split_once(':')
            .and_then(|(a, b)| Some((a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?)))
            .filter(|(a, b)| *a > 0 && *b > 0)
            .ok_or_else(|| anyhow!("--walk-forward {wf:?}: TRAIN:TEST trading days, e.g. 20:5"))?;
        let events = load_all(&spec, &data, args.signals.as_deref())?;
        return walk_forward(&spec, &events, &points, (train, test), jobs, &args, &stop);
    }
    if points.len() > 1 {
        let events = load_all(&spec, &data, args.signals.as_deref())?;
        return sweep(&spec, &events, &points, jobs, &args, &stop);
    }
    spec.params = points.into_iter().next().unwrap_or_default();
    if args.preload {
        let events = load_all(&spec, &data, args.signals.as_deref())?;
        let bar = Progress::new("events");
        let total = events.len() as u64;
        let mut progress = |done: u64, _: u64| bar.update(done, total);
        let started = Instant::now();
        let outcome = backtest::run_events(&spec, &events, Control { stop: &stop, progress: &mut progress })?;
        bar.finish();
        return report(&outcome, args.out.as_deref(), started, "data in memory");
    }
    let mut feed = open_feed(&spec, &data, args.signals.as_deref())?;
    let expected = feed.expected_events();
    let bar = Progress::new("events");
    let mut progress = |done: u64, _: u64| bar.update(done, expected);
    let started = Instant::now();
    let outcome = backtest::run(&spec, &mut feed, Control { stop: &stop, progress: &mut progress })?;
    bar.finish();
    report(&outcome, args.out.as_deref(), started, "streamed")
}

/// `phase` says what the timing covers (streaming reads the data during the run).
fn report(o: &Outcome, out: Option<&Path>, started: Instant, phase: &str) -> Result<()> {
    println!("{}", o.summary.to_json());
    let t = o.timing;
    eprintln!(
        "{} events in {:.3} s ({phase}: reading {:.3} s, run phase {:.3} s = {:.2} million events/s); {} orders, {} fills",
        t.events,
        t.total.as_secs_f64(),
        t.reading.as_secs_f64(),
        t.run_phase().as_secs_f64(),
        t.events_per_second() / 1e6,
        o.summary.orders,
        o.summary.fills
    );
    if let Some(dir) = out {
        let files =
            backtest::report::write(dir, o).with_context(|| format!("cannot write the report to {}", dir.display()))?;
        eprintln!(
            "wrote {} files to {} (open report.html) in {:.1} s in all",
            files.len(),
            dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn open_feed(spec: &RunSpec, data: &[PathBuf], signals: Option<&Path>) -> Result<Feed> {
    let table = SymbolTable::new(&spec.symbols)?;
    let mut feed = Feed::new();
    for d in data {
        if d.is_file() {
            b3::add_b3_file(&mut feed, d, &table, spec.range)?;
        } else if d.is_dir() {
            store::add_store(&mut feed, d, &table, spec.range)?;
        } else {
            bail!("--data {}: no such file or directory", d.display());
        }
    }
    let market_only = feed.is_empty();
    if let Some(path) = signals {
        let n = backtest::source::signals::add_signals_file(&mut feed, path, &table, spec.range)?;
        if n == 0 {
            bail!(
                "--signals {}: no signal for {} in the range given",
                path.display(),
                spec.symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    if market_only {
        let which = data.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        bail!(
            "no market data for {} in {which}{}; `tradingsystem market generate --out DIR` writes some",
            spec.symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            match (spec.range.from, spec.range.to) {
                (None, None) => String::new(),
                (f, t) => format!(
                    " between {} and {}",
                    f.map(|d| d.to_string()).unwrap_or("the start".into()),
                    t.map(|d| d.to_string()).unwrap_or("the end".into())
                ),
            }
        );
    }
    Ok(feed)
}

fn load_all(spec: &RunSpec, data: &[PathBuf], signals: Option<&Path>) -> Result<Vec<Event>> {
    let started = Instant::now();
    let mut feed = open_feed(spec, data, signals)?;
    let events = backtest::collect(&mut feed)?;
    eprintln!("loaded {} events in {:.3} s", events.len(), started.elapsed().as_secs_f64());
    Ok(events)
}

/// Runs every point on `jobs` threads; results in point order.
fn run_grid(
    spec: &RunSpec,
    events: &[Event],
    points: &[Params],
    jobs: usize,
    stop: &AtomicBool,
    label: &str,
) -> Vec<Result<Outcome, String>> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Vec<parking_lot::Mutex<Option<Result<Outcome, String>>>> =
        points.iter().map(|_| parking_lot::Mutex::new(None)).collect();
    let bar = Progress::new(label);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(points.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= points.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let mut sp = spec.clone();
                sp.params = points[i].clone();
                let mut quiet = |_: u64, _: u64| {};
                let r = backtest::run_events(&sp, events, Control { stop, progress: &mut quiet })
                    .map_err(|e| e.to_string());
                *results[i].lock() = Some(r);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                bar.update(n as u64, points.len() as u64);
            });
        }
    });
    bar.finish();
    results.into_iter().map(|m| m.into_inner().unwrap_or_else(|| Err("not run (stopped)".into()))).collect()
}

fn params_text(p: &Params) -> String {
    p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn sweep(
    spec: &RunSpec,
    events: &[Event],
    points: &[Params],
    jobs: usize,
    args: &BacktestArgs,
    stop: &AtomicBool,
) -> Result<()> {
    let started = Instant::now();
    let results = run_grid(spec, events, points, jobs, stop, "runs");
    let wall = started.elapsed();
    let mut ranked: Vec<(usize, &Outcome)> =
        results.iter().enumerate().filter_map(|(i, r)| r.as_ref().ok().map(|o| (i, o))).collect();
    ranked
        .sort_by(|a, b| rank_value(b.1, &args.rank_by).total_cmp(&rank_value(a.1, &args.rank_by)).then(a.0.cmp(&b.0)));
    println!(
        "{:>4}  {:<40} {:>8} {:>8} {:>12} {:>9} {:>7} {:>8}",
        "rank", "params", "sharpe", "sortino", "net P&L", "max DD", "trades", "win %"
    );
    let mut csv =
        String::from("rank,params,sharpe,sortino,calmar,net_pnl,total_return,max_drawdown,trades,win_rate,costs\n");
    for (rank, (_, o)) in ranked.iter().enumerate() {
        let s = &o.summary;
        let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
        if rank < 20 {
            println!(
                "{:>4}  {:<40} {:>8} {:>8} {:>12} {:>8.2}% {:>7} {:>8}",
                rank + 1,
                params_text(&s.params),
                f(s.returns.sharpe),
                f(s.returns.sortino),
                s.net_pnl.to_string(),
                s.returns.max_drawdown * 100.0,
                s.trades.trades,
                s.trades.win_rate.map(|w| format!("{:.1}", w * 100.0)).unwrap_or_else(|| "-".into())
            );
        }
        csv.push_str(&format!(
            "{},\"{}\",{},{},{},{},{},{},{},{},{}\n",
            rank + 1,
            params_text(&s.params),
            f(s.returns.sharpe),
            f(s.returns.sortino),
            f(s.returns.calmar),
            s.net_pnl,
            s.returns.total_return,
            s.returns.max_drawdown,
            s.trades.trades,
            s.trades.win_rate.map(|w| w.to_string()).unwrap_or_default(),
            s.costs
        ));
    }
    for (i, r) in results.iter().enumerate() {
        if let Err(e) = r {
            eprintln!("{}: {e}", params_text(&points[i]));
        }
    }
    let events_total = ranked.iter().map(|(_, o)| o.timing.events).sum::<u64>();
    eprintln!(
        "{} runs on {} thread(s) in {:.2} s ({:.2} million events/s in all); ranked by {}",
        ranked.len(),
        jobs.min(points.len()),
        wall.as_secs_f64(),
        events_total as f64 / wall.as_secs_f64().max(1e-9) / 1e6,
        args.rank_by
    );
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("sweep.csv"), csv)?;
        if let Some((_, best)) = ranked.first() {
            backtest::report::write(&dir.join("best"), best)?;
        }
        eprintln!("wrote {}/sweep.csv and the best run's report in {}/best", dir.display(), dir.display());
    }
    Ok(())
}

fn walk_forward(
    spec: &RunSpec,
    events: &[Event],
    points: &[Params],
    (train, test): (usize, usize),
    jobs: usize,
    args: &BacktestArgs,
    stop: &AtomicBool,
) -> Result<()> {
    // Day boundaries: the index of each trading date's first event.
    let mut starts: Vec<(NaiveDate, usize)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let d = trading_date_of(e.ts);
        if starts.last().is_none_or(|(last, _)| *last != d) {
            starts.push((d, i));
        }
    }
    let days = starts.len();
    if days < train + test {
        bail!("--walk-forward {train}:{test} needs at least {} trading days of data; there are {days}", train + test);
    }
    let slice = |from: usize, to: usize| -> &[Event] {
        let a = starts[from].1;
        let b = if to >= days { events.len() } else { starts[to].1 };
        &events[a..b]
    };
    println!(
        "{:<23} {:<23} {:<36} {:>10} {:>12} {:>8}",
        "train", "test", "chosen params", "train rank", "test P&L", "test DD"
    );
    let mut windows = Vec::new();
    let mut oos_pnl = Money::ZERO;
    let mut at = 0;
    while at + train + test <= days && !stop.load(Ordering::Relaxed) {
        let results = run_grid(spec, slice(at, at + train), points, jobs, stop, "train runs");
        let best = results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().ok().map(|o| (i, rank_value(o, &args.rank_by))))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((bi, score)) = best else { bail!("no run of the train window starting {} succeeded", starts[at].0) };
        let mut sp = spec.clone();
        sp.params = points[bi].clone();
        let mut quiet = |_: u64, _: u64| {};
        let o =
            backtest::run_events(&sp, slice(at + train, at + train + test), Control { stop, progress: &mut quiet })?;
        let s = &o.summary;
        oos_pnl += s.net_pnl;
        let train_span = format!("{}..{}", starts[at].0, starts[at + train - 1].0);
        let test_span = format!("{}..{}", starts[at + train].0, starts[(at + train + test - 1).min(days - 1)].0);
        println!(
            "{train_span:<23} {test_span:<23} {:<36} {:>10.3} {:>12} {:>7.2}%",
            params_text(&sp.params),
            score,
            s.net_pnl.to_string(),
            s.returns.max_drawdown * 100.0
        );
        windows.push(serde_json::json!({
            "train": train_span, "test": test_span, "params": sp.params, "train_score": score,
            "test": { "net_pnl": s.net_pnl, "total_return": s.returns.total_return, "sharpe": s.returns.sharpe,
                      "max_drawdown": s.returns.max_drawdown, "trades": s.trades.trades, "costs": s.costs },
        }));
        at += test;
    }
    let summary = serde_json::json!({
        "strategy": spec.strategy, "rank_by": args.rank_by, "train_days": train, "test_days": test,
        "windows": windows, "out_of_sample_net_pnl": oos_pnl,
    });
    eprintln!("out-of-sample net P&L over {} window(s): {oos_pnl}", windows.len());
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("walk_forward.json"), serde_json::to_string_pretty(&summary)? + "\n")?;
        eprintln!("wrote {}/walk_forward.json", dir.display());
    }
    Ok(())
}

/// A progress bar on a terminal, shown once a run has taken a second; nothing when stderr is not a terminal.
struct Progress {
    bar: indicatif::ProgressBar,
    started: Instant,
}

impl Progress {
    fn new(unit: &str) -> Progress {
        let bar = indicatif::ProgressBar::hidden();
        let style = indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit} · {{per_sec}} · ETA {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        Progress { bar, started: Instant::now() }
    }

    fn update(&self, done: u64, total: u64) {
        if self.bar.is_hidden()
            && self.started.elapsed().as_secs_f64() >= 1.0
            && std::io::IsTerminal::is_terminal(&std::io::stderr())
        {
            self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        self.bar.set_length(total.max(done));
        self.bar.set_position(done);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
