//! `tp_signals`: trades TP-Capital's signals as brackets, the way `signal-trading` does live for the desk: a limit
//! entry at the far end of the signal's range (the highest buy, the lowest sell), and once the entry is done, a
//! protective stop and take-profit limits for the quantity filled, the targets sharing it (whole lots, the
//! remainder to the first). The exits are kept one-cancels-other: a take-profit fill shrinks the stop (canceled and
//! placed again for what is left), a stop fill cancels the take-profits. A signal seen again (an edit) is not
//! traded twice; a signal without an entry price, or for a symbol the strategy was not given, is skipped.

use super::common::check_lots;
use crate::api::{Context, SignalEvent, Strategy};
use crate::params::{invalid, typed, ParamError, Params};
use domain::order::{Fill, Order, OrderId, OrderRequest, OrderStatus, OrderType, Side};
use domain::{Price, Qty, Symbol};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

pub const NAME: &str = "tp_signals";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpSignalsParams {
    /// Lots per signal.
    #[serde(default = "one")]
    pub lots: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone)]
struct Bracket {
    signal: i64,
    symbol: Symbol,
    side: Side,
    stop: Option<Price>,
    targets: Vec<Price>,
    entry: OrderId,
    filled: Qty,
    stop_order: Option<OrderId>,
    take_profits: Vec<OrderId>,
    /// Quantity the take-profits filled.
    taken: Qty,
    /// The exits were sent (whether or not risk took them): once per bracket.
    protected: bool,
    closed: bool,
}

pub struct TpSignals {
    symbols: Vec<Symbol>,
    p: TpSignalsParams,
    seen: HashSet<i64>,
    brackets: Vec<Bracket>,
    by_order: HashMap<OrderId, usize>,
}

impl TpSignals {
    pub fn new(symbols: &[Symbol], params: &Params) -> Result<TpSignals, ParamError> {
        let p: TpSignalsParams = typed(NAME, params)?;
        check_lots(NAME, p.lots)?;
        if symbols.is_empty() {
            return Err(invalid(NAME, "needs at least one symbol (the assets whose signals it trades)"));
        }
        Ok(TpSignals {
            symbols: symbols.to_vec(),
            p,
            seen: HashSet::new(),
            brackets: Vec::new(),
            by_order: HashMap::new(),
        })
    }

    fn send(&mut self, ctx: &mut dyn Context, i: usize, req: OrderRequest) -> Option<OrderId> {
        let id = ctx.submit(req).ok()?;
        self.by_order.insert(id, i);
        Some(id)
    }

    fn exit_side(side: Side) -> Side {
        match side {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// The entry is done with `filled` > 0: protect it.
    fn place_exits(&mut self, ctx: &mut dyn Context, i: usize) {
        let b = self.brackets[i].clone();
        let Some(lot) = ctx.instrument(&b.symbol).map(|x| x.lot) else { return };
        let side = Self::exit_side(b.side);
        let why = |what: &str| Some(format!("tp_signals: signal {} {what}", b.signal));
        if let Some(stop) = b.stop {
            let req = OrderRequest {
                stop_price: Some(stop),
                justification: why("stop"),
                ..OrderRequest::new(b.symbol, side, OrderType::Stop, b.filled, None)
            };
            self.brackets[i].stop_order = self.send(ctx, i, req);
        }
        if b.targets.is_empty() {
            return;
        }
        let (lots, _) = b.filled.in_lots(lot);
        let n = b.targets.len() as i64;
        for (k, target) in b.targets.iter().enumerate() {
            let mut share = lots / n;
            if k == 0 {
                share += lots % n;
            }
            if share == 0 {
                continue;
            }
            let req = OrderRequest {
                justification: why(&format!("target {}", k + 1)),
                ..OrderRequest::new(b.symbol, side, OrderType::Limit, lot * share, Some(*target))
            };
            if let Some(id) = self.send(ctx, i, req) {
                self.brackets[i].take_profits.push(id);
            }
        }
    }
}

impl Strategy for TpSignals {
    fn name(&self) -> &str {
        NAME
    }

    fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    fn on_signal(&mut self, ctx: &mut dyn Context, s: &SignalEvent) {
        if !self.symbols.contains(&s.symbol) || !self.seen.insert(s.id) {
            return;
        }
        let entry = match s.side {
            Side::Buy => s.buy_max,
            Side::Sell => s.buy_min,
        };
        let (Some(entry), Some(lot)) = (entry, ctx.instrument(&s.symbol).map(|x| x.lot)) else { return };
        let req = OrderRequest {
            justification: Some(format!("tp_signals: signal {} entry", s.id)),
            ..OrderRequest::new(s.symbol, s.side, OrderType::Limit, lot * self.p.lots, Some(entry))
        };
        let i = self.brackets.len();
        let Ok(entry_id) = ctx.submit(req) else { return };
        self.by_order.insert(entry_id, i);
        self.brackets.push(Bracket {
            signal: s.id,
            symbol: s.symbol,
            side: s.side,
            stop: s.stop,
            targets: s.targets.clone(),
            entry: entry_id,
            filled: Qty::ZERO,
            stop_order: None,
            take_profits: Vec::new(),
            taken: Qty::ZERO,
            protected: false,
            closed: false,
        });
    }

    fn on_order(&mut self, ctx: &mut dyn Context, o: &Order) {
        let Some(&i) = self.by_order.get(&o.id) else { return };
        let b = &mut self.brackets[i];
        if o.id == b.entry && o.status.is_terminal() && !b.protected {
            b.protected = true;
            b.filled = o.filled_quantity;
            if b.filled.is_positive() {
                self.place_exits(ctx, i);
            } else {
                b.closed = true;
            }
        }
    }

    fn on_fill(&mut self, ctx: &mut dyn Context, o: &Order, f: &Fill) {
        let Some(&i) = self.by_order.get(&o.id) else { return };
        let b = self.brackets[i].clone();
        if b.closed {
            return;
        }
        if Some(o.id) == b.stop_order {
            // Stopped out: the targets go.
            for id in &b.take_profits {
                let _ = ctx.cancel(*id);
            }
            self.brackets[i].closed = o.status == OrderStatus::Filled;
        } else if b.take_profits.contains(&o.id) {
            let taken = b.taken + f.quantity;
            self.brackets[i].taken = taken;
            let left = b.filled - taken;
            // The stop protects only what is left: cancel it and place it again for the rest.
            if let Some(stop_id) = b.stop_order {
                let _ = ctx.cancel(stop_id);
                self.brackets[i].stop_order = None;
                if let (true, Some(stop)) = (left.is_positive(), b.stop) {
                    let req = OrderRequest {
                        stop_price: Some(stop),
                        justification: Some(format!("tp_signals: signal {} stop for the rest", b.signal)),
                        ..OrderRequest::new(b.symbol, Self::exit_side(b.side), OrderType::Stop, left, None)
                    };
                    self.brackets[i].stop_order = self.send(ctx, i, req);
                }
            }
            self.brackets[i].closed = !left.is_positive();
        }
    }
}
