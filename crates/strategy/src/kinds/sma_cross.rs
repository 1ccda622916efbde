//! `sma_cross`: long when the fast SMA of the price is above the slow one, short when below. It acts on a cross
//! only (the side found when both averages first exist is not a cross), at least `hold_ticks` ticks after its last
//! signal (a cross inside that window is skipped), with a market order for the difference between the target
//! position (± `lots` lots) and the position it holds, so a flip is twice the size. The price is the mid of quotes
//! when the data has quotes, and the trade price of trades otherwise (`price = "mid"` or `"trade"` chooses).
//! `fast = 1` is the price itself.

use super::common::{check_lots, move_to, Pricer};
use crate::api::{Context, QuoteTick, Strategy, TradeTick};
use crate::params::{invalid, typed, ParamError, Params};
use domain::Symbol;
use indicators::Sma;
use serde::Deserialize;

pub const NAME: &str = "sma_cross";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmaCrossParams {
    /// Ticks in the fast average (1: the price itself).
    #[serde(default = "defaults::fast")]
    pub fast: usize,
    #[serde(default = "defaults::slow")]
    pub slow: usize,
    /// Ticks to wait after a signal before acting on the next one.
    #[serde(default)]
    pub hold_ticks: u64,
    /// The size of the position it takes, in lots of the instrument.
    #[serde(default = "defaults::lots")]
    pub lots: i64,
    /// `mid` (quotes), `trade` (trades) or `auto` (quotes when there are any).
    #[serde(default = "defaults::price")]
    pub price: String,
}

mod defaults {
    pub fn fast() -> usize {
        10
    }
    pub fn slow() -> usize {
        30
    }
    pub fn lots() -> i64 {
        1
    }
    pub fn price() -> String {
        "auto".into()
    }
}

struct Track {
    fast: Sma,
    slow: Sma,
    /// +1 fast above slow, −1 below; 0 before both exist.
    side: i8,
    ticks_since_signal: u64,
    signalled: bool,
}

pub struct SmaCross {
    symbols: Vec<Symbol>,
    p: SmaCrossParams,
    pricer: Pricer,
    /// Per symbol, searched linearly: a strategy has a handful of symbols, and this runs on every tick.
    tracks: Vec<(Symbol, Track)>,
}

impl SmaCross {
    pub fn new(symbols: &[Symbol], params: &Params) -> Result<SmaCross, ParamError> {
        let p: SmaCrossParams = typed(NAME, params)?;
        if p.fast == 0 || p.slow <= p.fast {
            return Err(invalid(NAME, format!("need 1 <= fast < slow (fast = {}, slow = {})", p.fast, p.slow)));
        }
        if p.slow > 1_000_000 {
            return Err(invalid(NAME, "slow: at most 1000000 ticks"));
        }
        check_lots(NAME, p.lots)?;
        let pricer = Pricer::parse(NAME, &p.price)?;
        if symbols.is_empty() {
            return Err(invalid(NAME, "needs at least one symbol"));
        }
        let tracks = symbols
            .iter()
            .map(|s| {
                let t = Track {
                    fast: Sma::new(p.fast),
                    slow: Sma::new(p.slow),
                    side: 0,
                    ticks_since_signal: 0,
                    signalled: false,
                };
                (*s, t)
            })
            .collect();
        Ok(SmaCross { symbols: symbols.to_vec(), p, pricer, tracks })
    }

    fn on_price(&mut self, ctx: &mut dyn Context, symbol: Symbol, price: f64) {
        let Some((_, t)) = self.tracks.iter_mut().find(|(s, _)| *s == symbol) else { return };
        t.ticks_since_signal = t.ticks_since_signal.saturating_add(1);
        let (Some(fast), Some(slow)) = (t.fast.update(price), t.slow.update(price)) else { return };
        let side = match fast.partial_cmp(&slow) {
            Some(std::cmp::Ordering::Greater) => 1,
            Some(std::cmp::Ordering::Less) => -1,
            _ => return,
        };
        let crossed = t.side != 0 && side != t.side;
        t.side = side;
        if !crossed || (t.signalled && t.ticks_since_signal < self.p.hold_ticks) {
            return;
        }
        t.signalled = true;
        t.ticks_since_signal = 0;
        let target = self.p.lots * i64::from(side);
        move_to(ctx, symbol, target, || {
            format!("sma_cross: fast {fast:.4} {} slow {slow:.4}", if side > 0 { ">" } else { "<" })
        });
    }
}

impl Strategy for SmaCross {
    fn name(&self) -> &str {
        NAME
    }

    fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    fn on_quote(&mut self, ctx: &mut dyn Context, q: &QuoteTick) {
        if let Some(p) = self.pricer.quote(q) {
            self.on_price(ctx, q.symbol, p);
        }
    }

    fn on_trade(&mut self, ctx: &mut dyn Context, t: &TradeTick) {
        if let Some(p) = self.pricer.trade(t) {
            self.on_price(ctx, t.symbol, p);
        }
    }
}
