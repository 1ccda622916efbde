//! `sma_cross`: long when the fast SMA of the price is above the slow one, short when below. It acts on a cross
//! only (the side found when both averages first exist is not a cross), at least `hold_ticks` ticks after its last
//! signal (a cross inside that window is skipped), with a market order for the difference between the target
//! position (± `lots` lots) and the position it holds, so a flip is twice the size. The price is the mid of quotes
//! when the data has quotes, and the trade price of trades otherwise (`price = "mid"` or `"trade"` chooses).
//! `fast = 1` is the price itself.

use crate::api::{Context, QuoteTick, Strategy, TradeTick};
use crate::params::{invalid, typed, ParamError, Params};
use domain::order::{OrderRequest, OrderType, PositionType, Side, TimeInForce};
use domain::{Qty, Symbol};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PriceSource {
    Mid,
    Trade,
    Auto,
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
    source: PriceSource,
    /// Set by the first quote under `auto`: from then on trades do not move the averages.
    quotes_seen: bool,
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
        if !(1..=1_000_000).contains(&p.lots) {
            return Err(invalid(NAME, "lots: 1 to 1000000"));
        }
        let source = match p.price.as_str() {
            "mid" => PriceSource::Mid,
            "trade" => PriceSource::Trade,
            "auto" => PriceSource::Auto,
            other => return Err(invalid(NAME, format!("price: mid, trade or auto, not {other:?}"))),
        };
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
        Ok(SmaCross { symbols: symbols.to_vec(), p, source, quotes_seen: false, tracks })
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
        let Some(lot) = ctx.instrument(&symbol).map(|i| i.lot) else { return };
        let target = lot * (self.p.lots * i64::from(side));
        let delta = target - ctx.position(&symbol);
        if delta.is_zero() {
            return;
        }
        let (order_side, quantity) =
            if delta.is_positive() { (Side::Buy, delta) } else { (Side::Sell, Qty::ZERO - delta) };
        let req = OrderRequest {
            symbol,
            side: order_side,
            order_type: OrderType::Market,
            quantity,
            price: None,
            stop_price: None,
            time_in_force: TimeInForce::Day,
            client_order_id: None,
            position_type: PositionType::Daytrade,
            justification: Some(format!(
                "sma_cross: fast {fast:.4} {} slow {slow:.4}",
                if side > 0 { ">" } else { "<" }
            )),
            source: None,
        };
        // A refusal also arrives as on_refused; the next cross tries again.
        let _ = ctx.submit(req);
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
        if self.source == PriceSource::Trade {
            return;
        }
        self.quotes_seen = true;
        self.on_price(ctx, q.symbol, q.mid());
    }

    fn on_trade(&mut self, ctx: &mut dyn Context, t: &TradeTick) {
        if self.source == PriceSource::Mid || (self.source == PriceSource::Auto && self.quotes_seen) {
            return;
        }
        self.on_price(ctx, t.symbol, t.price.to_f64());
    }
}
