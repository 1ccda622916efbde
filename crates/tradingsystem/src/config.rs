//! Configuration: a TOML file (`--config`, default `./tradingsystem.toml` when present) overridden by the
//! environment variables of the API contract.

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use data_capture::feed::Speed;
use domain::calendar::TradingCalendar;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub bus_url: Option<String>,
    pub market: Option<String>,
    pub broker: Option<String>,
    pub docs_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub token_ttl_minutes: Option<i64>,
    pub sim: SimSection,
    pub gateway: GatewaySection,
    pub trading_hours: Option<HoursSection>,
    /// Live strategies (`[[strategies]]`).
    pub strategies: Vec<strategy::live::LiveConfig>,
    /// Several brokers (`[[brokers]]`), orders routed by account.
    pub brokers: Vec<BrokerSection>,
    /// The FIX session of `broker = "fix"` / `TS_BROKER=fix` (one FIX broker for every account).
    pub fix: Option<fix_broker::FixSettings>,
}

/// One `[[brokers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    pub name: String,
    /// `paper` or `fix`.
    pub kind: String,
    /// The accounts (user or API key names) whose orders go here; `*` for every account no other broker names.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// The FIX session's settings (kind `fix` only).
    pub fix: Option<fix_broker::FixSettings>,
}

/// A broker `serve` starts.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerSpec {
    pub name: String,
    pub accounts: Vec<String>,
    pub kind: BrokerKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BrokerKind {
    Paper,
    Fix(Box<fix_broker::FixSettings>),
}

impl BrokerKind {
    pub fn name(&self) -> &'static str {
        match self {
            BrokerKind::Paper => "paper",
            BrokerKind::Fix(_) => "fix",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Per API key, user or IP; 0 turns the limit off.
    pub rate_limit_per_minute: Option<u32>,
    /// Per IP on `POST /api/v1/auth/login`.
    pub login_rate_limit_per_minute: Option<u32>,
    pub request_timeout_seconds: Option<u64>,
    pub body_limit_bytes: Option<usize>,
    pub cors_origins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimSection {
    pub seed: Option<u64>,
    pub trades_per_second: Option<f64>,
    /// Lose every n-th trade between the market and Data Capture (0 = never): exercises gap backfill.
    pub drop_every: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSection {
    /// "HH:MM" São Paulo time.
    pub open: String,
    pub close: String,
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// `None`: the in-process bus.
    pub bus_url: Option<String>,
    pub market: String,
    /// How the brokers were chosen, for the log: `paper`, `fix:PATH` or `[[brokers]]`.
    pub broker: String,
    /// The brokers orders route to (by account): one for the `TS_BROKER` shortcut, or the `[[brokers]]`.
    pub brokers: Vec<BrokerSpec>,
    pub log_level: String,
    pub token_ttl_minutes: i64,
    pub sim_seed: u64,
    pub sim_trades_per_second: f64,
    pub sim_drop_every: u64,
    /// Session hours for real feeds; the simulated market is always open.
    pub real_calendar: TradingCalendar,
    pub protection: gateway::protect::ProtectionConfig,
    /// `TS_TELEGRAM_BOT_TOKEN`: long polling runs when it is set.
    pub telegram_bot_token: Option<String>,
    /// `TS_TELEGRAM_API_URL`, default the public Bot API.
    pub telegram_api_url: String,
    /// `TS_SIGNAL_UNPROTECTED` (`flatten`, default, or `alert`): what happens when a signal's filled entry cannot
    /// get its stop.
    pub signal_unprotected: signal_trading::Unprotected,
    /// `TS_TELEGRAM_POLL_SECONDS` (1 to 50, default 25): how long one `getUpdates` long poll may hold.
    pub telegram_poll_seconds: u64,
    /// `TS_TELEGRAM_WEBHOOK_SECRET`: the webhook answers 401 without it.
    pub telegram_webhook_secret: Option<String>,
    /// `TS_DOCS_DIR` (`./docs`): the Markdown the Documentation API indexes.
    pub docs_dir: PathBuf,
    /// `TS_SIGNAL_MIN_CONFIDENCE` (0.60): strategy/ML signals below it are recorded, not traded.
    pub signal_min_confidence: f64,
    /// `TS_SIGNAL_SIZING` (`lots:1`, or `notional:BRL`): how much a signal trades.
    pub signal_sizing: signal_trading::Sizing,
    /// `[[strategies]]`: the live strategies `serve` runs.
    pub strategies: Vec<strategy::live::LiveConfig>,
}

impl Config {
    pub fn journal_path(&self) -> PathBuf {
        self.data_dir.join("journal").join("oms.journal")
    }

    pub fn market_source(&self) -> Result<MarketSource> {
        parse_market(&self.market)
    }

    /// The session calendar that applies to the configured market. The simulated market is always open, and a
    /// replay runs on its own recorded timeline, so the wall-clock session applies to neither.
    pub fn calendar(&self) -> TradingCalendar {
        match parse_market(&self.market) {
            Ok(MarketSource::Sim | MarketSource::Replay { .. }) => TradingCalendar::Continuous,
            Err(_) => self.real_calendar.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MarketSource {
    Sim,
    /// `replay:PATH` or `replay:PATH@SPEED` (`1x`, `10x`, `max`; default `1x`).
    Replay {
        path: PathBuf,
        speed: Speed,
    },
}

pub fn parse_market(s: &str) -> Result<MarketSource> {
    if s == "sim" {
        return Ok(MarketSource::Sim);
    }
    if let Some(rest) = s.strip_prefix("replay:") {
        let (path, speed) = match rest.rsplit_once('@') {
            Some((p, sp)) => (
                p,
                Speed::parse(sp)
                    .with_context(|| format!("TS_MARKET: replay speed {sp:?} must be like 1x, 10x or max"))?,
            ),
            None => (rest, Speed::Times(1.0)),
        };
        if path.is_empty() {
            bail!("TS_MARKET=replay:PATH needs the path of recorded Parquet trades");
        }
        return Ok(MarketSource::Replay { path: PathBuf::from(path), speed });
    }
    bail!("TS_MARKET={s}: use 'sim' or 'replay:PATH[@SPEED]' (the FIX feed is not built yet)")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_number<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    env(name)
        .map(|v| v.trim().parse::<T>().map_err(|_| anyhow::anyhow!("{name} must be a whole number, got {v:?}")))
        .transpose()
}

fn protection(file: &GatewaySection) -> Result<gateway::protect::ProtectionConfig> {
    let d = gateway::protect::ProtectionConfig::default();
    let timeout = env_number::<u64>("TS_REQUEST_TIMEOUT_SECONDS")?.or(file.request_timeout_seconds).unwrap_or(30);
    if !(1..=3600).contains(&timeout) {
        bail!("request_timeout_seconds must be between 1 and 3600");
    }
    let body_limit = env_number::<usize>("TS_BODY_LIMIT_BYTES")?.or(file.body_limit_bytes).unwrap_or(d.body_limit);
    if !(1024..=1 << 30).contains(&body_limit) {
        bail!("body_limit_bytes must be between 1024 and 1073741824");
    }
    let cors_origins = match env("TS_CORS_ORIGINS") {
        Some(v) => v.split(',').map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect(),
        None => file.cors_origins.clone().unwrap_or_default(),
    };
    for o in &cors_origins {
        if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
            bail!("CORS origin {o:?} must look like https://host[:port] (or be *)");
        }
    }
    Ok(gateway::protect::ProtectionConfig {
        requests_per_minute: env_number("TS_RATE_LIMIT_PER_MINUTE")?
            .or(file.rate_limit_per_minute)
            .unwrap_or(d.requests_per_minute),
        logins_per_minute: env_number("TS_LOGIN_RATE_LIMIT_PER_MINUTE")?
            .or(file.login_rate_limit_per_minute)
            .unwrap_or(d.logins_per_minute),
        request_timeout: std::time::Duration::from_secs(timeout),
        cors_origins,
        body_limit,
    })
}

fn parse_hhmm(s: &str, field: &str) -> Result<chrono::NaiveTime> {
    chrono::NaiveTime::parse_from_str(s, "%H:%M")
        .with_context(|| format!("trading_hours.{field} must be HH:MM, got {s:?}"))
}

pub fn load(path: Option<&Path>) -> Result<Config> {
    let default_path = Path::new("tradingsystem.toml");
    let file: FileConfig = match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("cannot read config file {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("invalid config file {}", p.display()))?
        }
        None if default_path.exists() => {
            let text = std::fs::read_to_string(default_path).context("cannot read ./tradingsystem.toml")?;
            toml::from_str(&text).context("invalid config file ./tradingsystem.toml")?
        }
        None => FileConfig::default(),
    };
    let listen_s = env("TS_LISTEN").or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen: SocketAddr =
        listen_s.parse().with_context(|| format!("TS_LISTEN must be host:port, got {listen_s:?}"))?;
    let data_dir = env("TS_DATA_DIR").map(PathBuf::from).or(file.data_dir).unwrap_or_else(|| PathBuf::from("./data"));
    let database_url = env("TS_DATABASE_URL")
        .or(file.database_url)
        .unwrap_or_else(|| format!("sqlite://{}/tradingsystem.db", data_dir.display()));
    let bus_url = match env("TS_BUS_URL").or(file.bus_url) {
        None => None,
        Some(b) if b == "in-process" => None,
        Some(b) if b.starts_with("nats://") || b.starts_with("tls://") => Some(b),
        Some(b) => bail!("TS_BUS_URL={b}: use nats://host:4222 (or leave it unset for the in-process bus)"),
    };
    let market = env("TS_MARKET").or(file.market).unwrap_or_else(|| "sim".into());
    parse_market(&market)?;
    let fix_section = file.fix;
    let (broker, brokers) = match (env("TS_BROKER"), file.broker, file.brokers) {
        // The environment's shortcut wins over the file, as every TS_ variable does.
        (Some(b), _, _) => (b.clone(), parse_broker(&b, fix_section)?),
        (None, Some(_), list) if !list.is_empty() => bail!("use either broker = \"...\" or [[brokers]], not both"),
        (None, Some(b), _) => (b.clone(), parse_broker(&b, fix_section)?),
        (None, None, list) if list.is_empty() => ("paper".to_string(), parse_broker("paper", None)?),
        (None, None, list) => ("[[brokers]]".to_string(), broker_specs(list)?),
    };
    let log_level = env("TS_LOG").or(file.log_level).unwrap_or_else(|| "info".into());
    let token_ttl_minutes = env_number::<i64>("TS_TOKEN_TTL_MINUTES")?.or(file.token_ttl_minutes).unwrap_or(8 * 60);
    if !(1..=60 * 24 * 30).contains(&token_ttl_minutes) {
        bail!("token_ttl_minutes must be between 1 and 43200");
    }
    let sim_trades_per_second = file.sim.trades_per_second.unwrap_or(50.0);
    if !(0.1..=1_000_000.0).contains(&sim_trades_per_second) {
        bail!("sim.trades_per_second must be between 0.1 and 1000000");
    }
    let real_calendar = match file.trading_hours {
        None => TradingCalendar::b3_regular(),
        Some(h) => TradingCalendar::Sessions {
            open: parse_hhmm(&h.open, "open")?,
            close: parse_hhmm(&h.close, "close")?,
            holidays: h.holidays,
        },
    };
    let protection = protection(&file.gateway)?;
    let telegram_api_url = env("TS_TELEGRAM_API_URL").unwrap_or_else(|| "https://api.telegram.org".into());
    if !(telegram_api_url.starts_with("http://") || telegram_api_url.starts_with("https://")) {
        bail!("TS_TELEGRAM_API_URL must be an http(s) URL, got {telegram_api_url:?}");
    }
    let telegram_poll_seconds = env_in_range("TS_TELEGRAM_POLL_SECONDS", 25u64, 1..=50, "a whole number from 1 to 50")?;
    let signal_min_confidence = env_in_range("TS_SIGNAL_MIN_CONFIDENCE", 0.60, 0.0..=1.0, "a number from 0 to 1")?;
    let signal_unprotected =
        signal_trading::Unprotected::parse(&env("TS_SIGNAL_UNPROTECTED").unwrap_or_else(|| "flatten".into()))
            .map_err(|e| anyhow::anyhow!("TS_SIGNAL_UNPROTECTED: {e}"))?;
    let signal_sizing = signal_trading::Sizing::parse(&env("TS_SIGNAL_SIZING").unwrap_or_else(|| "lots:1".into()))
        .map_err(|e| anyhow::anyhow!("TS_SIGNAL_SIZING: {e}"))?;
    let docs_dir =
        env("TS_DOCS_DIR").map(PathBuf::from).or(file.docs_dir.clone()).unwrap_or_else(|| PathBuf::from("./docs"));
    Ok(Config {
        strategies: file.strategies,
        docs_dir,
        signal_min_confidence,
        signal_sizing,
        signal_unprotected,
        telegram_bot_token: env("TS_TELEGRAM_BOT_TOKEN"),
        telegram_api_url,
        telegram_poll_seconds,
        telegram_webhook_secret: env("TS_TELEGRAM_WEBHOOK_SECRET"),
        protection,
        listen,
        data_dir,
        database_url,
        bus_url,
        market,
        broker,
        brokers,
        log_level,
        token_ttl_minutes,
        sim_seed: file.sim.seed.unwrap_or(42),
        sim_trades_per_second,
        sim_drop_every: file.sim.drop_every.unwrap_or(0),
        real_calendar,
    })
}

/// A number from the environment variable `name`, `default` when unset; outside `range` or unreadable is an error
/// that says what was expected (`what`) and what was given.
fn env_in_range<T>(name: &str, default: T, range: std::ops::RangeInclusive<T>, what: &str) -> Result<T>
where
    T: std::str::FromStr + PartialOrd,
{
    match env(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<T>()
            .ok()
            .filter(|x| range.contains(x))
            .with_context(|| format!("{name} must be {what}, got {v:?}")),
    }
}

/// The one-broker shortcut: `paper`; `fix` with the FIX session's settings in the TOML's `[fix]` table; or
/// `fix:PATH` with them in the TOML file at PATH.
fn parse_broker(broker: &str, fix_section: Option<fix_broker::FixSettings>) -> Result<Vec<BrokerSpec>> {
    let kind = match broker.split_once(':') {
        None if broker == "paper" => BrokerKind::Paper,
        None if broker == "fix" => match fix_section {
            Some(f) => {
                f.check().map_err(|e| anyhow::anyhow!("[fix]: {e}"))?;
                BrokerKind::Fix(Box::new(f))
            }
            None => bail!("TS_BROKER=fix needs its session settings: a [fix] table in the TOML, or TS_BROKER=fix:PATH"),
        },
        Some(("fix", path)) if !path.is_empty() => BrokerKind::Fix(Box::new(
            fix_broker::FixSettings::from_file(Path::new(path)).map_err(|e| anyhow::anyhow!("TS_BROKER: {e}"))?,
        )),
        _ => bail!("TS_BROKER={broker}: use 'paper' or 'fix:PATH'"),
    };
    Ok(vec![BrokerSpec { name: kind.name().to_string(), accounts: vec!["*".into()], kind }])
}

/// `[[brokers]]`, checked: a kind we know with the settings it needs, unique names, each account served once, FIX
/// sessions that do not share a store.
fn broker_specs(list: Vec<BrokerSection>) -> Result<Vec<BrokerSpec>> {
    let mut specs: Vec<BrokerSpec> = Vec::new();
    for b in list {
        let name = b.name.trim().to_string();
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            bail!("[[brokers]] name {:?}: 1 to 64 letters, digits, '-', '_' or '.'", b.name);
        }
        let kind = match (b.kind.as_str(), b.fix) {
            ("paper", None) => BrokerKind::Paper,
            ("paper", Some(_)) => bail!("[[brokers]] {name}: a paper broker takes no [brokers.fix] settings"),
            ("fix", Some(f)) => {
                f.check().map_err(|e| anyhow::anyhow!("[[brokers]] {name}: {e}"))?;
                BrokerKind::Fix(Box::new(f))
            }
            ("fix", None) => bail!("[[brokers]] {name}: kind = \"fix\" needs its session settings in [brokers.fix]"),
            (other, _) => bail!("[[brokers]] {name}: unknown kind {other:?} (paper or fix)"),
        };
        if let BrokerKind::Fix(f) = &kind {
            let clash = specs.iter().find(|s| {
                matches!(&s.kind, BrokerKind::Fix(o) if o.sender_comp_id == f.sender_comp_id && o.target_comp_id == f.target_comp_id)
            });
            if let Some(other) = clash {
                bail!("[[brokers]] {name} and {}: the same FIX session (SenderCompID and TargetCompID)", other.name);
            }
        }
        specs.push(BrokerSpec { name, accounts: b.accounts, kind });
    }
    order_manager::routing::plan(specs.iter().map(|s| (s.name.as_str(), s.accounts.as_slice())))
        .map_err(|e| anyhow::anyhow!("[[brokers]]: {e}"))?;
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn market_sources() {
        assert_eq!(parse_market("sim").unwrap(), MarketSource::Sim);
        assert_eq!(
            parse_market("replay:/d/market").unwrap(),
            MarketSource::Replay { path: "/d/market".into(), speed: Speed::Times(1.0) }
        );
        assert_eq!(
            parse_market("replay:/d@max").unwrap(),
            MarketSource::Replay { path: "/d".into(), speed: Speed::Max }
        );
        assert!(parse_market("replay:").is_err());
        assert!(parse_market("replay:/d@warp").is_err());
        assert!(parse_market("fix:host").is_err());
    }
}
