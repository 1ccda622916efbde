//! What the registry's strategies share: where their price comes from, and moving a position to a target with one
//! market order.

use crate::api::{Context, QuoteTick, TradeTick};
use crate::params::{invalid, ParamError};
use domain::order::{OrderRequest, OrderType, Side};
use domain::{Qty, Symbol};

/// `mid` (quotes), `trade` (trades) or `auto` (quotes once any arrived, trades until then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    Mid,
    Trade,
    Auto,
}

/// Turns quotes and trades into the one price series a strategy follows.
#[derive(Debug, Clone)]
pub struct Pricer {
    source: PriceSource,
    /// Set by the first quote under `auto`: from then on trades do not move the series.
    quotes_seen: bool,
}

impl Pricer {
    pub fn parse(strategy: &str, text: &str) -> Result<Pricer, ParamError> {
        let source = match text {
            "mid" => PriceSource::Mid,
            "trade" => PriceSource::Trade,
            "auto" => PriceSource::Auto,
            other => return Err(invalid(strategy, format!("price: mid, trade or auto, not {other:?}"))),
        };
        Ok(Pricer { source, quotes_seen: false })
    }

    #[inline]
    pub fn quote(&mut self, q: &QuoteTick) -> Option<f64> {
        if self.source == PriceSource::Trade {
            return None;
        }
        self.quotes_seen = true;
        Some(q.mid())
    }

    #[inline]
    pub fn trade(&self, t: &TradeTick) -> Option<f64> {
        if self.source == PriceSource::Mid || (self.source == PriceSource::Auto && self.quotes_seen) {
            return None;
        }
        Some(t.price.to_f64())
    }
}

/// Checks a `lots` parameter.
pub fn check_lots(strategy: &str, lots: i64) -> Result<(), ParamError> {
    if !(1..=1_000_000).contains(&lots) {
        return Err(invalid(strategy, "lots: 1 to 1000000"));
    }
    Ok(())
}

/// Sends the market order that takes the strategy's position in `symbol` to `target_lots` lots (signed; 0 is
/// flat): a flip is one order of twice the size. Nothing when already there, counting orders still working (live,
/// a fill can arrive after the next tick). A refusal also arrives as `on_refused`; the next signal tries again.
pub fn move_to(ctx: &mut dyn Context, symbol: Symbol, target_lots: i64, why: impl FnOnce() -> String) {
    let Some(lot) = ctx.instrument(&symbol).map(|i| i.lot) else { return };
    let delta = lot * target_lots - ctx.committed(&symbol);
    if delta.is_zero() {
        return;
    }
    let (side, quantity) = if delta.is_positive() { (Side::Buy, delta) } else { (Side::Sell, Qty::ZERO - delta) };
    let req = OrderRequest {
        justification: Some(why()),
        ..OrderRequest::new(symbol, side, OrderType::Market, quantity, None)
    };
    let _ = ctx.submit(req);
}
