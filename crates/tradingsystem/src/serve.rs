//! `tradingsystem serve`: every service in one process on embedded defaults.

use crate::config::{BrokerKind, BrokerSpec};
use crate::config::{Config, MarketSource};
use crate::jobs::{Jobs, When};
use anyhow::{Context, Result};
use bus::{subjects, Bus, Event};
use chrono::Utc;
use clock::{SharedClock, WallClock};
use data_capture::feed::ReplayFeed;
use domain::broker::{Broker, BrokerEvent};
use domain::order::Order;
use domain::Instruments;
use fix_broker::FixBroker;
use gateway::auth::{hash_password, random_hex, JwtKeys};
use gateway::routes::brokers::BrokerEntry;
use gateway::AppState;
use market_sim::{SimConfig, SimMarket};
use order_manager::routing::{BrokerRouter, Route, ANY_ACCOUNT};
use order_manager::{OmsUpdate, OrderManager};
use paper_broker::PaperBroker;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::Db;
use tokio::sync::broadcast::error::RecvError;

/// Connects, migrates, and makes sure an admin exists (printing a generated password once when none was given).
pub async fn open_db(cfg: &Config) -> Result<Db> {
    let db = Db::connect(&cfg.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&cfg.database_url)))?;
    db.migrate().await.context("database migrations failed")?;
    Ok(db)
}

pub async fn ensure_admin(db: &Db) -> Result<()> {
    if db.count_users().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("TS_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty()) {
        Some(p) => (p, false),
        None => (random_hex(12), true),
    };
    let hash = tokio::task::spawn_blocking(move || hash_password(&password).map(|h| (h, password)))
        .await?
        .map_err(anyhow::Error::msg)?;
    db.create_user("admin", &hash.0, storage::Role::Admin).await?;
    if generated {
        // Printed once, on stderr only, never into the log files.
        eprintln!("\n  First start: created user 'admin' with password: {}\n  (set TS_ADMIN_PASSWORD to choose it; change it with `tradingsystem user passwd admin`)\n", hash.1);
    } else {
        tracing::info!("first start: created user 'admin' from TS_ADMIN_PASSWORD");
    }
    Ok(())
}

/// Signals waiting for the auto-trade worker before new ones are refused.
const AUTO_TRADE_QUEUE: usize = 1024;

/// Every secret of the configuration is masked in logs and stored messages from here on (see `redact`).
fn register_secrets(cfg: &Config) {
    let admin = std::env::var("TS_ADMIN_PASSWORD").ok();
    let db_password = cfg.database_url.split_once("://").and_then(|(_, rest)| {
        let creds = &rest[..rest.rfind('@')?];
        creds.split_once(':').map(|(_, p)| p.to_string())
    });
    for s in [&admin, &cfg.telegram_bot_token, &cfg.telegram_webhook_secret, &db_password].into_iter().flatten() {
        redact::register(s);
    }
}

/// Hides the password part of a database URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Serves on `cfg.listen` until SIGINT/SIGTERM.
pub async fn run(cfg: Config, metrics: Option<gateway::telemetry::PrometheusHandle>) -> Result<()> {
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("cannot listen on {}", cfg.listen))?;
    run_with(cfg, metrics, listener, shutdown_signal()).await
}

/// Recovers, starts every service and serves on `listener` until `shutdown` completes.
pub async fn run_with(
    cfg: Config,
    metrics: Option<gateway::telemetry::PrometheusHandle>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    App::build(cfg, metrics).await?.serve(listener, shutdown).await
}

/// When the daily retention runs (São Paulo time): after the evening, before the pre-market.
const RETENTION_AT: (u32, u32) = (2, 30);

/// Every service of `serve`, wired: [`App::build`] starts them, [`App::serve`] answers HTTP until shutdown and then
/// stops them in order.
pub struct App {
    cfg: Config,
    state: AppState,
    jobs: Jobs,
    recorder: data_capture::recorder::Recorder,
    /// The FIX sessions, logged out at shutdown.
    fix: Vec<Arc<FixBroker>>,
}

/// The market the process trades: the simulated one, or a recorded tape replayed into it.
struct Market {
    sim: SimMarket,
    replay: Option<Arc<ReplayFeed>>,
    instruments: Instruments,
}

impl Market {
    fn open(cfg: &Config, clock: &SharedClock) -> Result<Market> {
        let calendar = cfg.calendar();
        // A replay loads its tape first: its instruments are the contracts of its own dates.
        let replay = match cfg.market_source()? {
            MarketSource::Replay { path, speed } => Some(
                ReplayFeed::open(path.clone(), speed)
                    .with_context(|| format!("cannot read the replay data at {}", path.display()))?,
            ),
            MarketSource::Sim => None,
        };
        let first_day = replay.as_ref().and_then(|r| r.first_trade_ts()).map(market_store::trading_date);
        let instruments = Instruments::b3_defaults(first_day.unwrap_or_else(|| calendar.session_date(clock.now())));
        let sim = SimMarket::new(
            instruments.clone(),
            SimConfig { seed: cfg.sim_seed, trades_per_second: cfg.sim_trades_per_second },
        );
        if replay.is_none() {
            sim.warm_up(clock.now());
        }
        Ok(Market { sim, replay, instruments })
    }
}

impl App {
    pub async fn build(cfg: Config, metrics: Option<gateway::telemetry::PrometheusHandle>) -> Result<App> {
        let started = Instant::now();
        register_secrets(&cfg);
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("cannot create data dir {}", cfg.data_dir.display()))?;
        let db = open_db(&cfg).await?;
        ensure_admin(&db).await?;
        let secret = db.setting_or_insert("jwt_secret", || random_hex(32)).await?;
        redact::register(&secret);
        let jwt = Arc::new(JwtKeys::new(secret.as_bytes(), chrono::Duration::minutes(cfg.token_ttl_minutes)));
        let mut jobs = Jobs::new();

        // The one clock of the market and order path; a backtest hands these services a simulated one instead.
        let clock = WallClock::shared();
        let Market { sim: market, replay, instruments } = Market::open(&cfg, &clock)?;
        let (oms, (brokers, fix)) = start_order_manager(&cfg, &market, &instruments, &clock).await?;
        let bus = match &cfg.bus_url {
            None => Bus::new(),
            Some(url) => Bus::connect_nats(url).await.context("cannot connect to the bus")?,
        };
        tracing::info!(bus = %bus.describe(), "bus ready");
        // The Order Manager's changes go out on the bus for the WebSocket and any other consumer.
        jobs.task("order-updates-to-bus", forward_updates(oms.subscribe(), bus.clone()));

        // Marks for P&L, the price band and the daily loss limit follow the processed tape inline, on Data
        // Capture's thread: no queue can fall behind, and a strategy's order is checked against the trade that
        // prompted it.
        let marks = oms.clone();
        let mut taps: Vec<data_capture::TradeTap> =
            vec![Arc::new(move |t: &market_data::Trade| marks.on_market_trade(&t.symbol, t.price))];
        // The live strategies of `[[strategies]]` (a bad entry stops the start with its name), in place before the
        // feed starts: they take trades on its thread, after the replayed exchange has followed each one.
        let (strategies, strategy_tap) =
            strategy::live::LiveStrategies::new(oms.clone(), bus.clone(), clock.clone()).inline_trades();
        for c in cfg.strategies.clone() {
            let name = c.name.clone();
            strategies.add(c).with_context(|| format!("[[strategies]] {name:?}"))?;
        }
        let market_data = match replay {
            Some(feed) => {
                tracing::info!(trades = feed.len(), "replaying recorded market data");
                // The paper broker's exchange follows the replayed tape: its book is re-centred on every print.
                let exchange = market.clone();
                taps.push(Arc::new(move |t: &market_data::Trade| exchange.follow(t)));
                taps.push(strategy_tap);
                data_capture::DataCapture::start(feed, instruments.clone(), bus.clone(), taps, clock.clone())
            }
            None => {
                taps.push(strategy_tap);
                let dc =
                    data_capture::DataCapture::start_sim(&market, bus.clone(), cfg.sim_drop_every, taps, clock.clone());
                jobs.task("simulated-market", market.clone().run());
                dc
            }
        };
        let recorder = data_capture::recorder::Recorder::start(&bus, &cfg.data_dir, Duration::from_secs(5), 200_000)?;
        schedule_retention(&mut jobs, &cfg, &db);

        let rate_limits = gateway::protect::RateLimits::new(&cfg.protection);
        let purge = rate_limits.clone();
        jobs.schedule("rate-limit-purge", When::Every(Duration::from_secs(60)), false, move || {
            purge.purge();
            async {}
        });
        let trader =
            signal_trading::Trader::new(oms.clone(), db.clone(), "signals", cfg.signal_sizing, cfg.signal_unprotected)
                .await
                .context("cannot load the signal brackets")?;
        jobs.task("signal-brackets", trader.follow());
        let tp = start_tp_capital(&mut jobs, &cfg, &db, &bus, &trader);
        let docs = Arc::new(
            docs_index::DocsIndex::open(&cfg.docs_dir)
                .await
                .with_context(|| format!("cannot index the documentation in {}", cfg.docs_dir.display()))?,
        );
        if !cfg.docs_dir.exists() {
            tracing::warn!(dir = %cfg.docs_dir.display(), "TS_DOCS_DIR does not exist: documentation search is empty");
        }
        // Edited, added or removed files are picked up within a few seconds (a scan of the folder's file times).
        let watched = docs.clone();
        jobs.schedule("docs-reindex", When::Every(Duration::from_secs(2)), false, move || {
            let docs = watched.clone();
            async move {
                if let Err(e) = docs.reindex_if_changed().await {
                    tracing::warn!(error = %e, "documentation reindex failed");
                }
            }
        });
        let probes = db.clone();
        let client = reqwest::Client::new();
        jobs.schedule("system-probes", When::Every(Duration::from_secs(60)), true, move || {
            gateway::probe_systems(probes.clone(), client.clone())
        });
        let state = AppState {
            auth_cache: Default::default(),
            oms,
            db,
            jwt,
            metrics,
            market_data,
            bus,
            started,
            protection: Arc::new(cfg.protection.clone()),
            tp,
            trader,
            docs,
            min_signal_confidence: cfg.signal_min_confidence,
            telegram_webhook_secret: cfg.telegram_webhook_secret.clone(),
            rate_limits,
            strategies,
            brokers: Arc::new(brokers),
            backtests: backtest::jobs::Jobs::start(
                vec![cfg.data_dir.join("market"), cfg.data_dir.join("archive").join("market")],
                cfg.data_dir.join("backtests"),
                // One core stays with the server however many backtests wait.
                std::thread::available_parallelism().map(|n| n.get().saturating_sub(1)).unwrap_or(1).max(1),
                32,
            ),
        };
        Ok(App { cfg, state, jobs, recorder, fix })
    }

    /// Serves until `shutdown` completes (or a background task that cannot be restarted dies), then stops the
    /// jobs, flushes market data and closes the journal and the database.
    pub async fn serve(
        mut self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let cfg = &self.cfg;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, market = %cfg.market, broker = %cfg.broker, data_dir = %cfg.data_dir.display(), database = %redact(&cfg.database_url), "serving");
        eprintln!("TradingSystem listening on http://{addr}  (data: {})", cfg.data_dir.display());
        let died = self.jobs.died();
        let (dead_tx, dead_rx) = tokio::sync::oneshot::channel();
        let stop = async move {
            tokio::select! {
                _ = shutdown => {}
                name = died => { let _ = dead_tx.send(name); }
            }
        };
        let (oms, db, backtests) = (self.state.oms.clone(), self.state.db.clone(), self.state.backtests.clone());
        gateway::serve(listener, self.state, stop).await?;
        tracing::info!("shutting down: stopping jobs, flushing market data and the journal");
        // A running backtest stops at its next check and is not kept (only finished runs are listed again).
        backtests.shutdown();
        self.jobs.shutdown(Duration::from_secs(10)).await;
        self.recorder.flush().await;
        for fix in &self.fix {
            fix.stop();
        }
        oms.shutdown();
        db.close().await;
        match dead_rx.await {
            Ok(name) => anyhow::bail!("the background task {name} panicked (see the log); stopped"),
            Err(_) => Ok(()),
        }
    }
}

async fn start_order_manager(
    cfg: &Config,
    market: &SimMarket,
    instruments: &Instruments,
    clock: &SharedClock,
) -> Result<(OrderManager, (Vec<BrokerEntry>, Vec<Arc<FixBroker>>))> {
    let (oms, report) = OrderManager::recover(&cfg.journal_path(), instruments.clone(), cfg.calendar(), clock.clone())
        .context("cannot recover the order journal")?;
    tracing::info!(
        records = report.records,
        from_snapshot = report.snapshot_records,
        decoded = report.replayed_records,
        undecodable = report.undecodable_records,
        truncated_bytes = report.truncated_bytes,
        orders = report.orders,
        open_orders = report.open_orders,
        kill_switch = report.kill_switch_active,
        "journal replayed"
    );
    for ins in instruments.iter() {
        if let Some(p) = market.last_price(&ins.symbol) {
            oms.on_market_trade(&ins.symbol, p);
        }
    }
    let (entries, fix, router, events) = start_brokers(cfg, market, &oms, clock)?;
    oms.attach_broker(router, events, &report).await.context("broker reconciliation failed")?;
    Ok((oms, (entries, fix)))
}

type StartedBrokers =
    (Vec<BrokerEntry>, Vec<Arc<FixBroker>>, Arc<BrokerRouter>, tokio::sync::mpsc::UnboundedReceiver<BrokerEvent>);

/// Starts every configured broker with the open orders of the accounts it serves, and attaches them to the Order
/// Manager behind a router (orders go by account).
fn start_brokers(cfg: &Config, market: &SimMarket, oms: &OrderManager, clock: &SharedClock) -> Result<StartedBrokers> {
    let open = oms.open_orders();
    let serves = |spec: &BrokerSpec, account: &str| {
        spec.accounts.iter().any(|a| a == account)
            || (spec.accounts.iter().any(|a| a == ANY_ACCOUNT)
                && !cfg.brokers.iter().any(|other| other.accounts.iter().any(|a| a == account)))
    };
    let (mut routes, mut streams, mut entries, mut fix) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for spec in &cfg.brokers {
        let restore: Vec<Order> = open.iter().filter(|o| serves(spec, o.account.as_str())).cloned().collect();
        let (broker, events, session): (Arc<dyn Broker>, _, _) = match &spec.kind {
            BrokerKind::Paper => {
                let (b, ev) = PaperBroker::start(market.clone(), cfg.calendar(), restore, clock.clone());
                (b, ev, None)
            }
            BrokerKind::Fix(settings) => {
                let (b, ev) = FixBroker::start(settings, &cfg.data_dir, restore, clock.clone())
                    .map_err(|e| anyhow::anyhow!("broker {}: {e}", spec.name))?;
                fix.push(b.clone());
                let session = Some(b.session().clone());
                (b, ev, session)
            }
        };
        streams.push(events);
        let kind = spec.kind.name().to_string();
        routes.push(Route {
            name: spec.name.clone(),
            kind: kind.clone(),
            accounts: spec.accounts.clone(),
            broker: broker.clone(),
        });
        entries.push(BrokerEntry { name: spec.name.clone(), kind, accounts: spec.accounts.clone(), broker, session });
    }
    let router = BrokerRouter::new(routes).map_err(|e| anyhow::anyhow!("[[brokers]]: {e}"))?;
    router.restore(&open);
    let report_events = BrokerRouter::merge(streams);
    Ok((entries, fix, Arc::new(router), report_events))
}

async fn forward_updates(mut updates: tokio::sync::broadcast::Receiver<OmsUpdate>, bus: Bus) {
    loop {
        match updates.recv().await {
            Ok(u) => publish_update(&bus, u),
            Err(RecvError::Lagged(n)) => {
                metrics::counter!("ts_oms_bus_updates_lagged_total").increment(n);
                tracing::warn!(skipped = n, "order updates lagged: the bus missed some");
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// Parquet older than 90 days moves to archive/, signals older than 30 days are exported and removed, deleted
/// signals leave the archive after 90 days: at start (catching up after downtime), then daily at 02:30 São Paulo.
fn schedule_retention(jobs: &mut Jobs, cfg: &Config, db: &Db) {
    let (dir, db) = (cfg.data_dir.clone(), db.clone());
    let at = chrono::NaiveTime::from_hms_opt(RETENTION_AT.0, RETENTION_AT.1, 0).unwrap_or_default();
    jobs.schedule("retention", When::DailyAt(at), true, move || {
        let (dir, db) = (dir.clone(), db.clone());
        async move {
            let today = market_store::trading_date(Utc::now());
            let parquet = dir.clone();
            match tokio::task::spawn_blocking(move || market_store::apply_retention(&parquet, today, 90)).await {
                Ok(Ok(r)) if r.partitions_archived > 0 => {
                    tracing::info!(partitions = r.partitions_archived, "market data archived")
                }
                Ok(Err(e)) => tracing::error!(error = %e, "market data retention failed"),
                _ => {}
            }
            match tp_capital::apply_retention(&db, &dir, Utc::now(), 30, 90).await {
                Ok(r) if r.exported > 0 || r.removed_archived > 0 || r.removed_log_lines > 0 => tracing::info!(
                    exported = r.exported,
                    file = ?r.export_file,
                    removed_archived = r.removed_archived,
                    removed_log_lines = r.removed_log_lines,
                    "signal retention"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "signal retention failed"),
            }
        }
    });
}

/// TP-Capital: the ingestor, the auto-trade worker and, with a bot token, Telegram long polling.
fn start_tp_capital(
    jobs: &mut Jobs,
    cfg: &Config,
    db: &Db,
    bus: &Bus,
    trader: &Arc<signal_trading::Trader>,
) -> tp_capital::Ingestor {
    // Auto-traded signals go through one worker and a bounded queue: a burst of signals waits its turn (in order)
    // instead of becoming as many tasks; past the bound a signal is refused loudly, never dropped in silence.
    let (auto_tx, mut auto_rx) = tokio::sync::mpsc::channel::<tp_capital::SignalView>(AUTO_TRADE_QUEUE);
    let auto = trader.clone();
    jobs.task("auto-trade", async move {
        while let Some(s) = auto_rx.recv().await {
            let signal = signal_trading::ChannelSignal {
                id: s.id,
                channel_id: &s.channel_id,
                signal_type: s.signal_type,
                asset: &s.asset,
                side: s.side,
                buy_min: s.buy_min,
                buy_max: s.buy_max,
                stop: s.stop,
                targets: &s.targets,
            };
            match auto.channel_plan(&signal) {
                Ok(plan) => {
                    auto.open(plan).await;
                }
                Err(why) => tracing::info!(signal = s.id, %why, "auto-trade: nothing to trade"),
            }
        }
    });
    let tp = tp_capital::Ingestor::new(db.clone(), bus.clone()).with_auto_trade(Arc::new(move |s| {
        let id = s.id;
        if let Err(e) = auto_tx.try_send(s) {
            metrics::counter!("ts_auto_trade_refused_total").increment(1);
            tracing::error!(signal = id, error = %e, "auto-trade queue full: signal not traded");
        }
    }));
    match &cfg.telegram_bot_token {
        Some(token) => {
            tracing::info!(api = %cfg.telegram_api_url, "Telegram long polling on");
            let mut poll = tp_capital::telegram::PollConfig::new(&cfg.telegram_api_url, token);
            poll.long_poll = Duration::from_secs(cfg.telegram_poll_seconds);
            jobs.task("telegram-polling", tp_capital::telegram::poll_forever(poll, tp.clone()));
        }
        None => tracing::info!("TS_TELEGRAM_BOT_TOKEN not set: Telegram polling off (the webhook still works)"),
    }
    tp
}

fn publish_update(bus: &Bus, update: OmsUpdate) {
    match update {
        OmsUpdate::Order(o) => bus.publish(subjects::ORDERS, Event::Order(o)),
        OmsUpdate::Fill { order_id, symbol, fill } => {
            bus.publish(subjects::FILLS, Event::Fill { order_id, symbol, fill })
        }
        OmsUpdate::Position(p) => bus.publish(subjects::POSITIONS, Event::Position(p)),
        other => bus.publish(subjects::RISK, Event::Risk { data: serde_json::to_value(&other).unwrap_or_default() }),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
