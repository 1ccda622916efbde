//! `breakout`: a Donchian channel breakout. Long when the price rises above the highest of the previous `period`
//! prices, short when it falls below the lowest; back to flat when it crosses the channel of the previous
//! `exit_period` prices the other way (a shorter channel, so a trend that stalls is left early). The price is the
//! mid of quotes or the trade price (`price`); with `interval` (`1m`, `5m`, ...) it acts on bar closes instead.

use super::common::{check_lots, move_to, Pricer};
use crate::api::{BarEvent, Context, Interval, QuoteTick, Strategy, TradeTick};
use crate::params::{invalid, typed, ParamError, Params};
use domain::Symbol;
use indicators::Donchian;
use serde::Deserialize;

pub const NAME: &str = "breakout";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakoutParams {
    /// Prices (or bars) in the entry channel.
    #[serde(default = "defaults::period")]
    pub period: usize,
    /// Prices (or bars) in the exit channel; shorter than `period`.
    #[serde(default = "defaults::exit_period")]
    pub exit_period: usize,
    #[serde(default = "defaults::lots")]
    pub lots: i64,
    #[serde(default = "defaults::price")]
    pub price: String,
    /// A bar interval to act on closes of (`1m`, `5m`, `15m`, `1h`, `1d`); none: every tick.
    #[serde(default)]
    pub interval: Option<String>,
}

mod defaults {
    pub fn period() -> usize {
        20
    }
    pub fn exit_period() -> usize {
        10
    }
    pub fn lots() -> i64 {
        1
    }
    pub fn price() -> String {
        "auto".into()
    }
}

struct Track {
    entry: Donchian,
    exit: Donchian,
    /// +1 long, −1 short, 0 flat: what the strategy last asked for.
    state: i8,
}

pub struct Breakout {
    symbols: Vec<Symbol>,
    p: BreakoutParams,
    pricer: Pricer,
    intervals: Vec<Interval>,
    tracks: Vec<(Symbol, Track)>,
}

impl Breakout {
    pub fn new(symbols: &[Symbol], params: &Params) -> Result<Breakout, ParamError> {
        let p: BreakoutParams = typed(NAME, params)?;
        if p.period < 2 || p.period > 100_000 {
            return Err(invalid(NAME, "period: 2 to 100000"));
        }
        if p.exit_period == 0 || p.exit_period > p.period {
            return Err(invalid(NAME, format!("need 1 <= exit_period <= period (exit_period = {})", p.exit_period)));
        }
        check_lots(NAME, p.lots)?;
        let pricer = Pricer::parse(NAME, &p.price)?;
        let intervals = match &p.interval {
            None => Vec::new(),
            Some(text) => vec![Interval::parse(text)
                .ok_or_else(|| invalid(NAME, format!("interval: 1m, 5m, 15m, 1h or 1d, not {text:?}")))?],
        };
        if symbols.is_empty() {
            return Err(invalid(NAME, "needs at least one symbol"));
        }
        let tracks = symbols
            .iter()
            .map(|s| (*s, Track { entry: Donchian::new(p.period), exit: Donchian::new(p.exit_period), state: 0 }))
            .collect();
        Ok(Breakout { symbols: symbols.to_vec(), p, pricer, intervals, tracks })
    }

    /// `high`/`low` are the new observation (a price twice, or a bar's range); `close` decides.
    fn observe(&mut self, ctx: &mut dyn Context, symbol: Symbol, high: f64, low: f64, close: f64) {
        let Some((_, t)) = self.tracks.iter_mut().find(|(s, _)| *s == symbol) else { return };
        // The channels of the observations before this one: a price cannot break out of a range it is part of.
        let (entry, exit) = (t.entry.value(), t.exit.value());
        t.entry.update(high, low);
        t.exit.update(high, low);
        let (Some((lo, hi)), Some((exit_lo, exit_hi))) = (entry, exit) else { return };
        let next = if close > hi {
            1
        } else if close < lo {
            -1
        } else if (t.state > 0 && close < exit_lo) || (t.state < 0 && close > exit_hi) {
            0
        } else {
            t.state
        };
        if next == t.state {
            return;
        }
        t.state = next;
        let lots = self.p.lots * i64::from(next);
        move_to(ctx, symbol, lots, || match next {
            1 => format!("breakout: {close:.4} above the {}-high {hi:.4}", self.p.period),
            -1 => format!("breakout: {close:.4} below the {}-low {lo:.4}", self.p.period),
            _ => format!("breakout: exit at {close:.4} across the {}-channel", self.p.exit_period),
        });
    }
}

impl Strategy for Breakout {
    fn name(&self) -> &str {
        NAME
    }

    fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    fn bar_intervals(&self) -> &[Interval] {
        &self.intervals
    }

    fn on_quote(&mut self, ctx: &mut dyn Context, q: &QuoteTick) {
        if self.intervals.is_empty() {
            if let Some(p) = self.pricer.quote(q) {
                self.observe(ctx, q.symbol, p, p, p);
            }
        }
    }

    fn on_trade(&mut self, ctx: &mut dyn Context, t: &TradeTick) {
        if self.intervals.is_empty() {
            if let Some(p) = self.pricer.trade(t) {
                self.observe(ctx, t.symbol, p, p, p);
            }
        }
    }

    fn on_bar(&mut self, ctx: &mut dyn Context, b: &BarEvent) {
        let bar = &b.bar;
        self.observe(ctx, b.symbol, bar.high.to_f64(), bar.low.to_f64(), bar.close.to_f64());
    }
}
