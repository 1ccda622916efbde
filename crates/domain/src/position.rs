//! Netting positions with the average-cost method.
//!
//! Buying into a long (or selling into a short) adds to the cost basis; reducing releases cost pro rata
//! (average cost, not FIFO) and books realized P&L = (exit − average) × quantity × multiplier. Crossing through
//! zero closes the old side completely and opens the new one at the fill price.

use crate::order::Side;
use crate::price::{div_round, Money, Price, PRICE_SCALE};
use crate::quantity::Qty;
use crate::symbol::Symbol;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Position {
    pub symbol: Symbol,
    /// Signed: positive long, negative short.
    pub quantity: Qty,
    /// Σ price × quantity of the open quantity, before the multiplier (always ≥ 0).
    pub cost: Price,
    pub multiplier: Money,
    pub realized_today: Money,
    pub realized_total: Money,
    pub last_price: Option<Price>,
}

/// A fill or a valuation whose amount does not fit the books' 64-bit units: far beyond any real desk, so a bug or a
/// corrupted input upstream. It is refused, never clipped to the nearest representable amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("position in {0} overflows the books")]
pub struct PositionOverflow(pub &'static str);

/// What one execution does to a position, computed before anything changes so that an overflow changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillEffect {
    quantity: Qty,
    cost: Price,
    realized: Money,
    realized_today: Money,
    realized_total: Money,
}

impl FillEffect {
    pub fn realized(&self) -> Money {
        self.realized
    }
}

fn fits(v: i128) -> Option<i64> {
    i64::try_from(v).ok()
}

impl Position {
    pub fn new(symbol: Symbol, multiplier: Money) -> Self {
        Position {
            symbol,
            quantity: Qty::ZERO,
            cost: Price::ZERO,
            multiplier,
            realized_today: Money::ZERO,
            realized_total: Money::ZERO,
            last_price: None,
        }
    }

    fn points_to_money(&self, price_units_times_qty: i128) -> Option<Money> {
        let v = price_units_times_qty.checked_mul(self.multiplier.0 as i128)?;
        fits(div_round(v, PRICE_SCALE as i128)).map(Money)
    }

    /// What an execution would do, without doing it. `None`: an amount would not fit the books.
    pub fn effect_of_fill(&self, side: Side, qty: Qty, price: Price) -> Option<FillEffect> {
        let signed = qty.signed(side);
        let value = price.units() as i128 * i128::from(qty);
        let quantity = self.quantity.checked_add(signed)?;
        if self.quantity.is_zero() || self.quantity.signum() == signed.signum() {
            let cost = Price(fits(self.cost.0 as i128 + value)?);
            let (realized_today, realized_total) = (self.realized_today, self.realized_total);
            return Some(FillEffect { quantity, cost, realized: Money::ZERO, realized_today, realized_total });
        }
        let open = i128::from(self.quantity.abs());
        let closing = i128::from(qty).min(open);
        let released = div_round(self.cost.0 as i128 * closing, open);
        let exit_value = price.units() as i128 * closing;
        let realized = self.points_to_money((exit_value - released) * self.quantity.signum() as i128)?;
        let cost = if quantity.is_zero() {
            Price::ZERO
        } else if i128::from(qty) > closing {
            Price(fits(price.units() as i128 * (i128::from(qty) - closing))?)
        } else {
            Price(fits(self.cost.0 as i128 - released)?)
        };
        Some(FillEffect {
            quantity,
            cost,
            realized,
            realized_today: self.realized_today.checked_add(realized)?,
            realized_total: self.realized_total.checked_add(realized)?,
        })
    }

    /// Books an effect computed by [`Position::effect_of_fill`] on this position.
    pub fn commit(&mut self, effect: FillEffect) -> Money {
        self.quantity = effect.quantity;
        self.cost = effect.cost;
        self.realized_today = effect.realized_today;
        self.realized_total = effect.realized_total;
        effect.realized
    }

    /// Applies one execution and returns the P&L it realized; an overflow changes nothing.
    pub fn apply_fill(&mut self, side: Side, qty: Qty, price: Price) -> Result<Money, PositionOverflow> {
        let effect = self.effect_of_fill(side, qty, price).ok_or(PositionOverflow("a fill"))?;
        Ok(self.commit(effect))
    }

    /// Average entry price of the open quantity, in price units (not on the tick grid in general).
    pub fn avg_price(&self) -> Option<f64> {
        (!self.quantity.is_zero()).then(|| self.cost.0 as f64 / self.quantity.abs().get() as f64 / PRICE_SCALE as f64)
    }

    /// Marked to `last_price`; zero without a mark. `None` when the amount does not fit.
    pub fn unrealized(&self) -> Option<Money> {
        match self.last_price {
            Some(mark) if !self.quantity.is_zero() => {
                let mark_value = mark.units() as i128 * i128::from(self.quantity.abs());
                self.points_to_money((mark_value - self.cost.0 as i128) * self.quantity.signum() as i128)
            }
            _ => Some(Money::ZERO),
        }
    }

    /// Absolute market value of the open quantity at the mark (or at cost without one).
    pub fn exposure(&self) -> Option<Money> {
        let value = match self.last_price {
            Some(mark) => mark.units() as i128 * i128::from(self.quantity.abs()),
            None => self.cost.0 as i128,
        };
        self.points_to_money(value)
    }

    pub fn daily_pnl(&self) -> Option<Money> {
        self.realized_today.checked_add(self.unrealized()?)
    }
}

/// All positions of the desk, keyed by symbol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionBook {
    positions: BTreeMap<Symbol, Position>,
}

impl PositionBook {
    pub fn get(&self, symbol: &str) -> Option<&Position> {
        self.positions.get(symbol)
    }

    pub fn net_quantity(&self, symbol: &str) -> Qty {
        self.positions.get(symbol).map_or(Qty::ZERO, |p| p.quantity)
    }

    /// What an execution would do to the symbol's position (a new one if there is none), without doing it.
    pub fn effect_of_fill(
        &self,
        symbol: Symbol,
        multiplier: Money,
        side: Side,
        qty: Qty,
        price: Price,
    ) -> Option<FillEffect> {
        match self.positions.get(&symbol) {
            Some(p) => p.effect_of_fill(side, qty, price),
            None => Position::new(symbol, multiplier).effect_of_fill(side, qty, price),
        }
    }

    /// Books an effect computed by [`PositionBook::effect_of_fill`] at `price`; returns the realized P&L.
    pub fn commit_fill(&mut self, symbol: Symbol, multiplier: Money, price: Price, effect: FillEffect) -> Money {
        let pos = self.positions.entry(symbol).or_insert_with(|| Position::new(symbol, multiplier));
        if pos.last_price.is_none() {
            pos.last_price = Some(price);
        }
        pos.commit(effect)
    }

    pub fn apply_fill(
        &mut self,
        symbol: Symbol,
        multiplier: Money,
        side: Side,
        qty: Qty,
        price: Price,
    ) -> Result<Money, PositionOverflow> {
        let effect = self.effect_of_fill(symbol, multiplier, side, qty, price).ok_or(PositionOverflow("a fill"))?;
        Ok(self.commit_fill(symbol, multiplier, price, effect))
    }

    /// Returns true when a position exists for the symbol (only those need marking).
    pub fn mark(&mut self, symbol: &str, price: Price) -> bool {
        match self.positions.get_mut(symbol) {
            Some(p) => {
                p.last_price = Some(price);
                true
            }
            None => false,
        }
    }

    pub fn reset_day(&mut self) {
        for p in self.positions.values_mut() {
            p.realized_today = Money::ZERO;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Position> {
        self.positions.values()
    }

    fn total(&self, each: impl Fn(&Position) -> Option<Money>) -> Option<Money> {
        self.positions.values().try_fold(Money::ZERO, |acc, p| acc.checked_add(each(p)?))
    }

    /// The desk's P&L today; `None` when it does not fit the books (treated as a breach of the loss limit).
    pub fn daily_pnl(&self) -> Option<Money> {
        self.total(Position::daily_pnl)
    }

    pub fn realized_today(&self) -> Option<Money> {
        self.total(|p| Some(p.realized_today))
    }

    pub fn unrealized(&self) -> Option<Money> {
        self.total(Position::unrealized)
    }

    pub fn exposure(&self) -> Option<Money> {
        self.total(Position::exposure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: f64) -> Price {
        Price::from_f64(v).unwrap()
    }
    fn brl(v: f64) -> Money {
        Money::from_f64(v).unwrap()
    }

    #[test]
    fn stock_round_trip() {
        let mut pos = Position::new(Symbol::lit("PETR4"), Money::from_brl(1));
        assert_eq!(pos.apply_fill(Side::Buy, Qty(100), p(30.0)).unwrap(), Money::ZERO);
        assert_eq!(pos.apply_fill(Side::Buy, Qty(100), p(31.0)).unwrap(), Money::ZERO);
        assert_eq!(pos.avg_price(), Some(30.5));
        pos.last_price = Some(p(32.0));
        assert_eq!(pos.unrealized(), Some(brl(300.0)));
        assert_eq!(pos.apply_fill(Side::Sell, Qty(100), p(32.0)).unwrap(), brl(150.0));
        assert_eq!(pos.quantity, Qty(100));
        assert_eq!(pos.avg_price(), Some(30.5), "average cost is unchanged by a reduction");
        assert_eq!(pos.apply_fill(Side::Sell, Qty(100), p(29.0)).unwrap(), brl(-150.0));
        assert_eq!((pos.quantity, pos.cost), (Qty::ZERO, Price::ZERO));
        assert_eq!(pos.realized_total, Money::ZERO);
    }

    #[test]
    fn short_and_flip() {
        let mut pos = Position::new(Symbol::lit("VALE3"), Money::from_brl(1));
        pos.apply_fill(Side::Sell, Qty(200), p(60.0)).unwrap();
        assert_eq!(pos.quantity, Qty(-200));
        // Buy 300 at 58: closes 200 (+R$ 400) and opens 100 long at 58.
        assert_eq!(pos.apply_fill(Side::Buy, Qty(300), p(58.0)).unwrap(), brl(400.0));
        assert_eq!(pos.quantity, Qty(100));
        assert_eq!(pos.avg_price(), Some(58.0));
        pos.last_price = Some(p(57.5));
        assert_eq!(pos.unrealized(), Some(brl(-50.0)));
        assert_eq!(pos.daily_pnl(), Some(brl(350.0)));
    }

    #[test]
    fn win_multiplier() {
        // WIN: R$ 0.20 per point. Long 5 at 128,000, sell at 128,500: 500 pts × 5 × 0.20 = R$ 500.
        let mut pos = Position::new(Symbol::lit("WINZ25"), Money(2_000));
        pos.apply_fill(Side::Buy, Qty(5), p(128_000.0)).unwrap();
        pos.last_price = Some(p(127_900.0));
        assert_eq!(pos.unrealized(), Some(brl(-100.0)));
        assert_eq!(pos.exposure(), Some(brl(127_900.0 * 5.0 * 0.2)));
        assert_eq!(pos.apply_fill(Side::Sell, Qty(5), p(128_500.0)).unwrap(), brl(500.0));
    }

    #[test]
    fn wdo_multiplier() {
        // WDO: R$ 10 per point. Short 3 at 5,400.5, cover at 5,390.0: 10.5 pts × 3 × 10 = R$ 315.
        let mut pos = Position::new(Symbol::lit("WDOZ25"), Money::from_brl(10));
        pos.apply_fill(Side::Sell, Qty(3), p(5_400.5)).unwrap();
        pos.last_price = Some(p(5_410.0));
        assert_eq!(pos.unrealized(), Some(brl(-285.0)));
        assert_eq!(pos.apply_fill(Side::Buy, Qty(3), p(5_390.0)).unwrap(), brl(315.0));
    }

    #[test]
    fn uneven_average_rounds_once_and_nets_to_zero() {
        let mut pos = Position::new(Symbol::lit("PETR4"), Money::from_brl(1));
        pos.apply_fill(Side::Buy, Qty(100), p(30.01)).unwrap();
        pos.apply_fill(Side::Buy, Qty(200), p(30.02)).unwrap();
        let r1 = pos.apply_fill(Side::Sell, Qty(100), p(30.02)).unwrap();
        let r2 = pos.apply_fill(Side::Sell, Qty(200), p(30.02)).unwrap();
        // Total realized equals total sells minus total buys exactly, whatever rounding happened in between.
        assert_eq!(r1 + r2, brl(1.0));
        assert_eq!(pos.cost, Price::ZERO);
    }

    #[test]
    fn book_totals_and_day_reset() {
        let mut book = PositionBook::default();
        book.apply_fill(Symbol::lit("PETR4"), Money::from_brl(1), Side::Buy, Qty(100), p(30.0)).unwrap();
        book.apply_fill(Symbol::lit("PETR4"), Money::from_brl(1), Side::Sell, Qty(100), p(31.0)).unwrap();
        book.apply_fill(Symbol::lit("WINZ25"), Money(2_000), Side::Buy, Qty(1), p(128_000.0)).unwrap();
        book.mark("WINZ25", p(128_100.0));
        assert_eq!(book.realized_today(), Some(brl(100.0)));
        assert_eq!(book.daily_pnl(), Some(brl(120.0)));
        book.reset_day();
        assert_eq!(book.daily_pnl(), Some(brl(20.0)));
        assert_eq!(book.get("PETR4").unwrap().realized_total, brl(100.0));
    }

    #[test]
    fn an_overflowing_fill_is_refused_and_changes_nothing() {
        let mut pos = Position::new(Symbol::lit("WINZ25"), Money(2_000));
        pos.apply_fill(Side::Buy, Qty(100_000_000), p(5_000_000.0)).unwrap();
        let before = pos.clone();
        assert_eq!(pos.apply_fill(Side::Buy, Qty(100_000_000), p(5_000_000.0)), Err(PositionOverflow("a fill")));
        assert_eq!(pos, before);
        pos.last_price = Some(Price(i64::MAX));
        assert_eq!(pos.unrealized(), None, "a valuation beyond the books is unknown, not clipped");
        let mut book = PositionBook::default();
        book.apply_fill(Symbol::lit("WINZ25"), Money(2_000), Side::Buy, Qty(100_000_000), p(5_000_000.0)).unwrap();
        book.mark("WINZ25", Price(i64::MAX));
        assert_eq!(book.daily_pnl(), None);
    }
}
