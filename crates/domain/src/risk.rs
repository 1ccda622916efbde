//! The pre-trade risk engine. Checks run in the order of the spec table; the first failure decides.

use crate::account::AccountId;
use crate::instrument::{Instrument, InstrumentKind};
use crate::order::{OrderRequest, OrderType, Side};
use crate::price::{notional, Money, Price};
use crate::quantity::Qty;
use crate::symbol::Symbol;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RiskCheck {
    KillSwitch,
    TradingState,
    TradingHours,
    OrderRate,
    MaxOrderQty,
    MaxNotional,
    PriceBand,
    PositionLimit,
    DailyLossLimit,
}

impl RiskCheck {
    /// The error code a rejection carries, as the API contract names them.
    pub fn code(self) -> &'static str {
        match self {
            RiskCheck::KillSwitch => "KILL_SWITCH_ACTIVE",
            RiskCheck::TradingState => "REDUCE_ONLY",
            RiskCheck::TradingHours => "OUTSIDE_TRADING_HOURS",
            RiskCheck::OrderRate => "RATE_LIMIT",
            RiskCheck::MaxOrderQty => "MAX_ORDER_QTY",
            RiskCheck::MaxNotional => "MAX_NOTIONAL",
            RiskCheck::PriceBand => "PRICE_BAND",
            RiskCheck::PositionLimit => "POSITION_LIMIT",
            RiskCheck::DailyLossLimit => "DAILY_LOSS_LIMIT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskRejection {
    pub check: RiskCheck,
    pub message: String,
}

impl RiskRejection {
    pub fn code(&self) -> &'static str {
        self.check.code()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TradingState {
    #[default]
    Normal,
    /// Only orders that reduce the absolute position pass.
    Reducing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SymbolLimits {
    pub max_order_qty: Option<Qty>,
    pub position_limit: Option<Qty>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskLimits {
    pub max_orders_per_second: u32,
    pub max_order_qty_stock: Qty,
    pub max_order_qty_future: Qty,
    pub max_notional: Money,
    /// Allowed distance of a limit/stop price from the last trade, in basis points (1,000 = 10 %).
    pub price_band_bps: u32,
    pub position_limit_stock: Qty,
    pub position_limit_future: Qty,
    pub daily_loss_limit: Money,
    pub trading_state: TradingState,
    pub symbols: BTreeMap<Symbol, SymbolLimits>,
}

impl Default for RiskLimits {
    fn default() -> Self {
        RiskLimits {
            max_orders_per_second: 50,
            max_order_qty_stock: Qty(10_000),
            max_order_qty_future: Qty(100),
            max_notional: Money::from_brl(1_000_000),
            price_band_bps: 1_000,
            position_limit_stock: Qty(10_000),
            position_limit_future: Qty(50),
            daily_loss_limit: Money::from_brl(5_000),
            trading_state: TradingState::Normal,
            symbols: BTreeMap::new(),
        }
    }
}

pub const DAILY_LOSS_MIN: Money = Money(100 * crate::PRICE_SCALE);
pub const DAILY_LOSS_MAX: Money = Money(1_000_000 * crate::PRICE_SCALE);

impl RiskLimits {
    /// Returns the offending field and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.daily_loss_limit < DAILY_LOSS_MIN || self.daily_loss_limit > DAILY_LOSS_MAX {
            return Err(("daily_loss_limit", "must be between 100 and 1,000,000 BRL".into()));
        }
        if self.max_orders_per_second == 0 || self.max_orders_per_second > 100_000 {
            return Err(("max_orders_per_second", "must be between 1 and 100,000".into()));
        }
        if self.max_notional <= Money::ZERO {
            return Err(("max_notional", "must be positive".into()));
        }
        if self.price_band_bps == 0 || self.price_band_bps > 10_000 {
            return Err(("price_band_pct", "must be above 0 and at most 100".into()));
        }
        for (field, v) in [
            ("max_order_qty_stock", self.max_order_qty_stock),
            ("max_order_qty_future", self.max_order_qty_future),
            ("position_limit_stock", self.position_limit_stock),
            ("position_limit_future", self.position_limit_future),
        ] {
            if !v.is_positive() {
                return Err((field, "must be positive".into()));
            }
        }
        for limits in self.symbols.values() {
            if limits.max_order_qty.is_some_and(|q| !q.is_positive()) {
                return Err(("symbols.max_order_qty", "must be positive".into()));
            }
            if limits.position_limit.is_some_and(|q| !q.is_positive()) {
                return Err(("symbols.position_limit", "must be positive".into()));
            }
        }
        Ok(())
    }

    pub fn max_order_qty(&self, ins: &Instrument) -> Qty {
        self.symbols.get(&ins.symbol).and_then(|s| s.max_order_qty).unwrap_or(match ins.kind {
            InstrumentKind::Future => self.max_order_qty_future,
            _ => self.max_order_qty_stock,
        })
    }

    pub fn position_limit(&self, ins: &Instrument) -> Qty {
        self.symbols.get(&ins.symbol).and_then(|s| s.position_limit).unwrap_or(match ins.kind {
            InstrumentKind::Future => self.position_limit_future,
            _ => self.position_limit_stock,
        })
    }
}

/// Everything outside the order that a decision depends on, gathered by the Order Manager.
#[derive(Debug, Clone)]
pub struct RiskContext<'a> {
    pub account: &'a AccountId,
    pub now: DateTime<Utc>,
    pub kill_switch_active: bool,
    pub market_open: bool,
    pub last_price: Option<Price>,
    /// Signed net position in the symbol.
    pub net_position: Qty,
    /// Unfilled quantity of open orders in the symbol on the same side as the new order.
    pub open_same_side: Qty,
    /// `None` when the day's P&L does not fit the books: judged a breach, never clipped.
    pub daily_pnl: Option<Money>,
}

/// The stateful part of risk: per-account order-rate windows.
#[derive(Debug, Default)]
pub struct RiskEngine {
    rate_windows: HashMap<AccountId, VecDeque<DateTime<Utc>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LossLevel {
    Normal,
    /// At or beyond 80 % of the daily loss limit.
    Warning,
    /// At or beyond 100 %: the kill switch must activate.
    Breached,
}

/// Where the day's P&L stands against the loss limit. A P&L too large to book (`None`) is a breach: nothing
/// should trade on figures the desk cannot represent.
pub fn loss_level(daily_pnl: Option<Money>, limit: Money) -> LossLevel {
    let Some(daily_pnl) = daily_pnl else {
        return LossLevel::Breached;
    };
    let loss = -(daily_pnl.0 as i128);
    let limit = limit.0 as i128;
    if loss >= limit {
        LossLevel::Breached
    } else if loss * 10 >= limit * 8 {
        LossLevel::Warning
    } else {
        LossLevel::Normal
    }
}

fn reject(check: RiskCheck, message: impl Into<String>) -> Result<(), RiskRejection> {
    Err(RiskRejection { check, message: message.into() })
}

impl RiskEngine {
    /// Runs every check in order. A passing order is counted in its account's rate window.
    pub fn check(
        &mut self,
        req: &OrderRequest,
        ins: &Instrument,
        limits: &RiskLimits,
        ctx: &RiskContext<'_>,
    ) -> Result<(), RiskRejection> {
        if ctx.kill_switch_active {
            return reject(RiskCheck::KillSwitch, "the kill switch is active: new orders are blocked");
        }
        // i128: the quantity is bounded by validation, but the position it meets is whatever the books say.
        let signed = i128::from(req.side.sign()) * i128::from(req.quantity);
        if limits.trading_state == TradingState::Reducing {
            let net = i128::from(ctx.net_position);
            let after = net + signed;
            let reduces = net != 0 && after.abs() < net.abs() && after.signum() != -net.signum();
            if !reduces {
                return reject(
                    RiskCheck::TradingState,
                    format!("trading state is REDUCING: only orders that reduce the {} position pass", ins.symbol),
                );
            }
        }
        if !ctx.market_open {
            return reject(RiskCheck::TradingHours, "the market is closed");
        }
        self.check_rate(ctx, limits)?;
        let max_qty = limits.max_order_qty(ins);
        if req.quantity > max_qty {
            return reject(
                RiskCheck::MaxOrderQty,
                format!("quantity {} exceeds the maximum {max_qty} per order for {}", req.quantity, ins.symbol),
            );
        }
        let reference = match req.order_type {
            OrderType::Limit | OrderType::StopLimit => req.price,
            OrderType::Stop => req.stop_price.or(ctx.last_price),
            OrderType::Market => ctx.last_price,
        };
        let Some(reference) = reference else {
            return reject(RiskCheck::MaxNotional, format!("no last trade for {} to value a MARKET order", ins.symbol));
        };
        let Some(value) = notional(reference, req.quantity, ins.multiplier) else {
            return reject(
                RiskCheck::MaxNotional,
                format!("the notional of {} {} is beyond range", req.quantity, ins.symbol),
            );
        };
        if value > limits.max_notional {
            return reject(
                RiskCheck::MaxNotional,
                format!("notional {value} exceeds the maximum {}", limits.max_notional),
            );
        }
        if let Some(last) = ctx.last_price {
            for (field, p) in [("price", req.price), ("stop_price", req.stop_price)] {
                if let Some(p) = p {
                    let diff = (p.units() as i128 - last.units() as i128).abs();
                    if diff * 10_000 > last.units() as i128 * limits.price_band_bps as i128 {
                        return reject(
                            RiskCheck::PriceBand,
                            format!(
                                "{field} {p} is more than {}% away from the last trade {last}",
                                limits.price_band_bps as f64 / 100.0
                            ),
                        );
                    }
                }
            }
        }
        let limit = limits.position_limit(ins);
        let projected = i128::from(ctx.net_position)
            + i128::from(req.side.sign()) * (i128::from(ctx.open_same_side) + i128::from(req.quantity));
        if projected.abs() > i128::from(limit) {
            return reject(
                RiskCheck::PositionLimit,
                format!("position in {} would reach {projected} (limit ±{limit}, counting open orders)", ins.symbol),
            );
        }
        if loss_level(ctx.daily_pnl, limits.daily_loss_limit) == LossLevel::Breached {
            return reject(
                RiskCheck::DailyLossLimit,
                match ctx.daily_pnl {
                    Some(pnl) => format!("daily P&L {pnl} is beyond the loss limit {}", limits.daily_loss_limit),
                    None => "daily P&L is beyond the range of the books".to_string(),
                },
            );
        }
        self.record(ctx);
        Ok(())
    }

    fn window(&mut self, account: &AccountId, now: DateTime<Utc>) -> &mut VecDeque<DateTime<Utc>> {
        if !self.rate_windows.contains_key(account) {
            self.rate_windows.insert(account.clone(), VecDeque::new());
        }
        let w = self.rate_windows.get_mut(account).expect("inserted above");
        let horizon = now - chrono::Duration::seconds(1);
        while w.front().is_some_and(|t| *t <= horizon) {
            w.pop_front();
        }
        w
    }

    fn check_rate(&mut self, ctx: &RiskContext<'_>, limits: &RiskLimits) -> Result<(), RiskRejection> {
        let max = limits.max_orders_per_second as usize;
        if self.window(ctx.account, ctx.now).len() >= max {
            return reject(
                RiskCheck::OrderRate,
                format!("more than {max} orders per second for account {}", ctx.account),
            );
        }
        Ok(())
    }

    fn record(&mut self, ctx: &RiskContext<'_>) {
        self.window(ctx.account, ctx.now).push_back(ctx.now);
    }
}

/// Which side reduces a position: the side a flatten order takes.
pub fn flatten_side(net: Qty) -> Option<Side> {
    match net.signum() {
        1 => Some(Side::Sell),
        -1 => Some(Side::Buy),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Instruments;
    use chrono::NaiveDate;

    fn ins(sym: &str) -> Instrument {
        Instruments::b3_defaults(NaiveDate::from_ymd_opt(2025, 11, 24).unwrap()).get(sym).unwrap().clone()
    }

    fn limit_req(sym: &str, side: Side, qty: Qty, price: f64) -> OrderRequest {
        OrderRequest::new(Symbol::parse(sym).unwrap(), side, OrderType::Limit, qty, Price::from_f64(price))
    }

    fn ctx() -> RiskContext<'static> {
        RiskContext {
            account: Box::leak(Box::new(AccountId::new("trader"))),
            now: DateTime::<Utc>::UNIX_EPOCH,
            kill_switch_active: false,
            market_open: true,
            last_price: Price::from_f64(30.0),
            net_position: Qty::ZERO,
            open_same_side: Qty::ZERO,
            daily_pnl: Some(Money::ZERO),
        }
    }

    fn run(req: &OrderRequest, ctx: &RiskContext<'_>, limits: &RiskLimits) -> Result<(), &'static str> {
        RiskEngine::default().check(req, &ins(&req.symbol), limits, ctx).map_err(|r| r.code())
    }

    #[test]
    fn passes_a_normal_order() {
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(100), 30.0), &ctx(), &RiskLimits::default()), Ok(()));
    }

    #[test]
    fn kill_switch_both_ways() {
        let r = limit_req("PETR4", Side::Buy, Qty(100), 30.0);
        assert_eq!(
            run(&r, &RiskContext { kill_switch_active: true, ..ctx() }, &RiskLimits::default()),
            Err("KILL_SWITCH_ACTIVE")
        );
        assert_eq!(run(&r, &RiskContext { kill_switch_active: false, ..ctx() }, &RiskLimits::default()), Ok(()));
    }

    #[test]
    fn reducing_state_both_ways() {
        let limits = RiskLimits { trading_state: TradingState::Reducing, ..RiskLimits::default() };
        let long = RiskContext { net_position: Qty(500), ..ctx() };
        assert_eq!(run(&limit_req("PETR4", Side::Sell, Qty(200), 30.0), &long, &limits), Ok(()));
        assert_eq!(run(&limit_req("PETR4", Side::Sell, Qty(500), 30.0), &long, &limits), Ok(()));
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(100), 30.0), &long, &limits), Err("REDUCE_ONLY"));
        // Selling through zero would open a short: not a reduction.
        assert_eq!(run(&limit_req("PETR4", Side::Sell, Qty(600), 30.0), &long, &limits), Err("REDUCE_ONLY"));
        assert_eq!(run(&limit_req("PETR4", Side::Sell, Qty(100), 30.0), &ctx(), &limits), Err("REDUCE_ONLY"));
        // Positions at the edge of i64 are judged, not overflowed.
        let huge = RiskContext { net_position: Qty(i64::MAX), open_same_side: Qty(i64::MAX), ..ctx() };
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(i64::MAX), 30.0), &huge, &limits), Err("REDUCE_ONLY"));
        let huge_short = RiskContext { net_position: Qty(i64::MIN + 1), ..ctx() };
        assert_eq!(run(&limit_req("PETR4", Side::Sell, Qty(i64::MAX), 30.0), &huge_short, &limits), Err("REDUCE_ONLY"));
        let open = RiskLimits::default();
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(100), 30.0), &huge, &open), Err("POSITION_LIMIT"));
    }

    #[test]
    fn trading_hours_both_ways() {
        let r = limit_req("PETR4", Side::Buy, Qty(100), 30.0);
        assert_eq!(
            run(&r, &RiskContext { market_open: false, ..ctx() }, &RiskLimits::default()),
            Err("OUTSIDE_TRADING_HOURS")
        );
        assert_eq!(run(&r, &ctx(), &RiskLimits::default()), Ok(()));
    }

    #[test]
    fn order_rate_both_ways() {
        let limits = RiskLimits::default();
        let mut engine = RiskEngine::default();
        let r = limit_req("PETR4", Side::Buy, Qty(100), 30.0);
        let i = ins("PETR4");
        let c = ctx();
        for _ in 0..50 {
            assert_eq!(engine.check(&r, &i, &limits, &c), Ok(()));
        }
        assert_eq!(engine.check(&r, &i, &limits, &c).map_err(|e| e.code()), Err("RATE_LIMIT"));
        // Another account has its own window.
        assert_eq!(
            engine.check(&r, &i, &limits, &RiskContext { account: &AccountId::new("other"), ..c.clone() }),
            Ok(())
        );
        // One second later the window has slid.
        let later = RiskContext { now: c.now + chrono::Duration::milliseconds(1001), ..c };
        assert_eq!(engine.check(&r, &i, &limits, &later), Ok(()));
    }

    #[test]
    fn max_order_qty_both_ways() {
        let limits = RiskLimits::default();
        let c = RiskContext { last_price: Price::from_f64(10.0), ..ctx() };
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(10_000), 10.0), &c, &limits), Ok(()));
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(10_100), 10.0), &c, &limits), Err("MAX_ORDER_QTY"));
        let win = ins("WINZ25");
        let wc = RiskContext { last_price: Price::from_f64(128_000.0), ..ctx() };
        let big = RiskLimits {
            position_limit_future: Qty(1_000),
            max_notional: Money::from_brl(10_000_000),
            ..RiskLimits::default()
        };
        assert_eq!(run(&limit_req(&win.symbol, Side::Buy, Qty(100), 128_000.0), &wc, &big), Ok(()));
        assert_eq!(run(&limit_req(&win.symbol, Side::Buy, Qty(101), 128_000.0), &wc, &big), Err("MAX_ORDER_QTY"));
        let mut per_symbol = RiskLimits::default();
        per_symbol
            .symbols
            .insert(Symbol::lit("PETR4"), SymbolLimits { max_order_qty: Some(Qty(500)), position_limit: None });
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(600), 10.0), &c, &per_symbol), Err("MAX_ORDER_QTY"));
    }

    #[test]
    fn max_notional_both_ways() {
        let limits = RiskLimits::default();
        let c = RiskContext { last_price: Price::from_f64(100.0), ..ctx() };
        // 10,000 × R$ 100 = R$ 1,000,000: at the limit passes.
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(10_000), 100.0), &c, &limits), Ok(()));
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(10_000), 100.01), &c, &limits), Err("MAX_NOTIONAL"));
        let mut market = limit_req("PETR4", Side::Buy, Qty(100), 30.0);
        market.order_type = OrderType::Market;
        market.price = None;
        assert_eq!(run(&market, &RiskContext { last_price: None, ..ctx() }, &limits), Err("MAX_NOTIONAL"));
        assert_eq!(run(&market, &ctx(), &limits), Ok(()));
    }

    #[test]
    fn price_band_both_ways() {
        let limits = RiskLimits::default();
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(100), 33.0), &ctx(), &limits), Ok(()));
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(100), 27.0), &ctx(), &limits), Ok(()));
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(100), 33.01), &ctx(), &limits), Err("PRICE_BAND"));
        assert_eq!(run(&limit_req("PETR4", Side::Sell, Qty(100), 26.99), &ctx(), &limits), Err("PRICE_BAND"));
    }

    #[test]
    fn position_limit_both_ways_counting_open_orders() {
        let limits = RiskLimits::default();
        let c = RiskContext {
            last_price: Price::from_f64(10.0),
            net_position: Qty(5_000),
            open_same_side: Qty(4_000),
            ..ctx()
        };
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(1_000), 10.0), &c, &limits), Ok(()));
        assert_eq!(run(&limit_req("PETR4", Side::Buy, Qty(1_100), 10.0), &c, &limits), Err("POSITION_LIMIT"));
        // Selling reduces: passes even though open buys are large.
        let sell = RiskContext { open_same_side: Qty::ZERO, ..c.clone() };
        assert_eq!(run(&limit_req("PETR4", Side::Sell, Qty(10_000), 10.0), &sell, &limits), Ok(()));
        let short = RiskContext { net_position: Qty(-9_000), open_same_side: Qty(1_000), ..c };
        assert_eq!(run(&limit_req("PETR4", Side::Sell, Qty(100), 10.0), &short, &limits), Err("POSITION_LIMIT"));
        let wc = RiskContext { last_price: Price::from_f64(128_000.0), net_position: Qty(50), ..ctx() };
        let win = ins("WINZ25").symbol;
        assert_eq!(run(&limit_req(&win, Side::Buy, Qty(1), 128_000.0), &wc, &limits), Err("POSITION_LIMIT"));
        assert_eq!(run(&limit_req(&win, Side::Sell, Qty(1), 128_000.0), &wc, &limits), Ok(()));
    }

    #[test]
    fn daily_loss_both_ways() {
        let limits = RiskLimits::default();
        let r = limit_req("PETR4", Side::Buy, Qty(100), 30.0);
        assert_eq!(run(&r, &RiskContext { daily_pnl: Some(Money::from_brl(-4_999)), ..ctx() }, &limits), Ok(()));
        assert_eq!(
            run(&r, &RiskContext { daily_pnl: Some(Money::from_brl(-5_000)), ..ctx() }, &limits),
            Err("DAILY_LOSS_LIMIT")
        );
    }

    #[test]
    fn order_of_checks() {
        // Everything wrong at once: the kill switch decides first, then trading hours, then quantity.
        let limits = RiskLimits::default();
        let all_bad = RiskContext {
            kill_switch_active: true,
            market_open: false,
            daily_pnl: Some(Money::from_brl(-10_000)),
            ..ctx()
        };
        let r = limit_req("PETR4", Side::Buy, Qty(20_000), 99.0);
        assert_eq!(run(&r, &all_bad, &limits), Err("KILL_SWITCH_ACTIVE"));
        assert_eq!(
            run(&r, &RiskContext { kill_switch_active: false, ..all_bad.clone() }, &limits),
            Err("OUTSIDE_TRADING_HOURS")
        );
        assert_eq!(
            run(&r, &RiskContext { kill_switch_active: false, market_open: true, ..all_bad }, &limits),
            Err("MAX_ORDER_QTY")
        );
    }

    #[test]
    fn loss_levels() {
        let limit = Money::from_brl(5_000);
        assert_eq!(loss_level(Some(Money::from_brl(-3_999)), limit), LossLevel::Normal);
        assert_eq!(loss_level(Some(Money::from_brl(-4_000)), limit), LossLevel::Warning);
        assert_eq!(loss_level(Some(Money::from_brl(-5_000)), limit), LossLevel::Breached);
        assert_eq!(loss_level(Some(Money::from_brl(1_000)), limit), LossLevel::Normal);
        assert_eq!(loss_level(None, limit), LossLevel::Breached, "a P&L beyond the books is a breach");
    }

    #[test]
    fn limits_validation() {
        assert!(RiskLimits::default().validate().is_ok());
        let bad = RiskLimits { daily_loss_limit: Money::from_brl(99), ..RiskLimits::default() };
        assert_eq!(bad.validate().unwrap_err().0, "daily_loss_limit");
        let bad = RiskLimits { daily_loss_limit: Money::from_brl(1_000_001), ..RiskLimits::default() };
        assert_eq!(bad.validate().unwrap_err().0, "daily_loss_limit");
    }
}
