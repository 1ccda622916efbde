//! Netting positions with the average-cost method.
//!
//! Buying into a long (or selling into a short) adds to the cost basis; reducing releases cost pro rata
//! (average cost, not FIFO) and books realized P&L = (exit − average) × quantity × multiplier. Crossing through
//! zero closes the old side completely and opens the new one at the fill price.

use crate::order::Side;
use crate::price::{clamp_i64, div_round, Money, Price, Qty, PRICE_SCALE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Position {
    pub symbol: String,
    /// Signed: positive long, negative short.
    pub quantity: Qty,
    /// Σ price × quantity of the open quantity, before the multiplier (always ≥ 0).
    pub cost: Price,
    pub multiplier: Money,
    pub realized_today: Money,
    pub realized_total: Money,
    pub last_price: Option<Price>,
}

impl Position {
    pub fn new(symbol: &str, multiplier: Money) -> Self {
        Position {
            symbol: symbol.to_string(),
            quantity: 0,
            cost: Price::ZERO,
            multiplier,
            realized_today: Money::ZERO,
            realized_total: Money::ZERO,
            last_price: None,
        }
    }

    fn points_to_money(&self, price_units_times_qty: i128) -> Money {
        let v = price_units_times_qty * self.multiplier.0 as i128;
        Money(clamp_i64(div_round(v, PRICE_SCALE as i128)))
    }

    /// Applies one execution and returns the P&L it realized.
    pub fn apply_fill(&mut self, side: Side, qty: Qty, price: Price) -> Money {
        let signed = side.sign() * qty;
        let value = price.units() as i128 * qty as i128;
        if self.quantity == 0 || self.quantity.signum() == signed.signum() {
            self.quantity += signed;
            self.cost = Price(clamp_i64(self.cost.0 as i128 + value));
            return Money::ZERO;
        }
        let open = self.quantity.abs();
        let closing = qty.min(open);
        let released = div_round(self.cost.0 as i128 * closing as i128, open as i128);
        let exit_value = price.units() as i128 * closing as i128;
        let realized = self.points_to_money((exit_value - released) * self.quantity.signum() as i128);
        self.quantity += signed;
        self.cost = Price(clamp_i64(self.cost.0 as i128 - released));
        if self.quantity == 0 {
            self.cost = Price::ZERO;
        } else if qty > closing {
            self.cost = Price(clamp_i64(price.units() as i128 * (qty - closing) as i128));
        }
        self.realized_today += realized;
        self.realized_total += realized;
        realized
    }

    /// Average entry price of the open quantity, in price units (not on the tick grid in general).
    pub fn avg_price(&self) -> Option<f64> {
        (self.quantity != 0).then(|| self.cost.0 as f64 / self.quantity.abs() as f64 / PRICE_SCALE as f64)
    }

    /// Marked to `last_price`; zero without a mark.
    pub fn unrealized(&self) -> Money {
        match self.last_price {
            Some(mark) if self.quantity != 0 => {
                let mark_value = mark.units() as i128 * self.quantity.abs() as i128;
                self.points_to_money((mark_value - self.cost.0 as i128) * self.quantity.signum() as i128)
            }
            _ => Money::ZERO,
        }
    }

    /// Absolute market value of the open quantity at the mark (or at cost without one).
    pub fn exposure(&self) -> Money {
        let value = match self.last_price {
            Some(mark) => mark.units() as i128 * self.quantity.abs() as i128,
            None => self.cost.0 as i128,
        };
        self.points_to_money(value)
    }

    pub fn daily_pnl(&self) -> Money {
        self.realized_today + self.unrealized()
    }
}

/// All positions of the desk, keyed by symbol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionBook {
    positions: BTreeMap<String, Position>,
}

impl PositionBook {
    pub fn get(&self, symbol: &str) -> Option<&Position> {
        self.positions.get(symbol)
    }

    pub fn net_quantity(&self, symbol: &str) -> Qty {
        self.positions.get(symbol).map_or(0, |p| p.quantity)
    }

    pub fn apply_fill(&mut self, symbol: &str, multiplier: Money, side: Side, qty: Qty, price: Price) -> Money {
        let pos = self.positions.entry(symbol.to_string()).or_insert_with(|| Position::new(symbol, multiplier));
        if pos.last_price.is_none() {
            pos.last_price = Some(price);
        }
        pos.apply_fill(side, qty, price)
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

    pub fn daily_pnl(&self) -> Money {
        self.positions.values().fold(Money::ZERO, |acc, p| acc + p.daily_pnl())
    }

    pub fn realized_today(&self) -> Money {
        self.positions.values().fold(Money::ZERO, |acc, p| acc + p.realized_today)
    }

    pub fn unrealized(&self) -> Money {
        self.positions.values().fold(Money::ZERO, |acc, p| acc + p.unrealized())
    }

    pub fn exposure(&self) -> Money {
        self.positions.values().fold(Money::ZERO, |acc, p| acc + p.exposure())
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
        let mut pos = Position::new("PETR4", Money::from_brl(1));
        assert_eq!(pos.apply_fill(Side::Buy, 100, p(30.0)), Money::ZERO);
        assert_eq!(pos.apply_fill(Side::Buy, 100, p(31.0)), Money::ZERO);
        assert_eq!(pos.avg_price(), Some(30.5));
        pos.last_price = Some(p(32.0));
        assert_eq!(pos.unrealized(), brl(300.0));
        assert_eq!(pos.apply_fill(Side::Sell, 100, p(32.0)), brl(150.0));
        assert_eq!(pos.quantity, 100);
        assert_eq!(pos.avg_price(), Some(30.5), "average cost is unchanged by a reduction");
        assert_eq!(pos.apply_fill(Side::Sell, 100, p(29.0)), brl(-150.0));
        assert_eq!((pos.quantity, pos.cost), (0, Price::ZERO));
        assert_eq!(pos.realized_total, Money::ZERO);
    }

    #[test]
    fn short_and_flip() {
        let mut pos = Position::new("VALE3", Money::from_brl(1));
        pos.apply_fill(Side::Sell, 200, p(60.0));
        assert_eq!(pos.quantity, -200);
        // Buy 300 at 58: closes 200 (+R$ 400) and opens 100 long at 58.
        assert_eq!(pos.apply_fill(Side::Buy, 300, p(58.0)), brl(400.0));
        assert_eq!(pos.quantity, 100);
        assert_eq!(pos.avg_price(), Some(58.0));
        pos.last_price = Some(p(57.5));
        assert_eq!(pos.unrealized(), brl(-50.0));
        assert_eq!(pos.daily_pnl(), brl(350.0));
    }

    #[test]
    fn win_multiplier() {
        // WIN: R$ 0.20 per point. Long 5 at 128,000, sell at 128,500: 500 pts × 5 × 0.20 = R$ 500.
        let mut pos = Position::new("WINZ25", Money(2_000));
        pos.apply_fill(Side::Buy, 5, p(128_000.0));
        pos.last_price = Some(p(127_900.0));
        assert_eq!(pos.unrealized(), brl(-100.0));
        assert_eq!(pos.exposure(), brl(127_900.0 * 5.0 * 0.2));
        assert_eq!(pos.apply_fill(Side::Sell, 5, p(128_500.0)), brl(500.0));
    }

    #[test]
    fn wdo_multiplier() {
        // WDO: R$ 10 per point. Short 3 at 5,400.5, cover at 5,390.0: 10.5 pts × 3 × 10 = R$ 315.
        let mut pos = Position::new("WDOZ25", Money::from_brl(10));
        pos.apply_fill(Side::Sell, 3, p(5_400.5));
        pos.last_price = Some(p(5_410.0));
        assert_eq!(pos.unrealized(), brl(-285.0));
        assert_eq!(pos.apply_fill(Side::Buy, 3, p(5_390.0)), brl(315.0));
    }

    #[test]
    fn uneven_average_rounds_once_and_nets_to_zero() {
        let mut pos = Position::new("PETR4", Money::from_brl(1));
        pos.apply_fill(Side::Buy, 100, p(30.01));
        pos.apply_fill(Side::Buy, 200, p(30.02));
        let r1 = pos.apply_fill(Side::Sell, 100, p(30.02));
        let r2 = pos.apply_fill(Side::Sell, 200, p(30.02));
        // Total realized equals total sells minus total buys exactly, whatever rounding happened in between.
        assert_eq!(r1 + r2, brl(1.0));
        assert_eq!(pos.cost, Price::ZERO);
    }

    #[test]
    fn book_totals_and_day_reset() {
        let mut book = PositionBook::default();
        book.apply_fill("PETR4", Money::from_brl(1), Side::Buy, 100, p(30.0));
        book.apply_fill("PETR4", Money::from_brl(1), Side::Sell, 100, p(31.0));
        book.apply_fill("WINZ25", Money(2_000), Side::Buy, 1, p(128_000.0));
        book.mark("WINZ25", p(128_100.0));
        assert_eq!(book.realized_today(), brl(100.0));
        assert_eq!(book.daily_pnl(), brl(120.0));
        book.reset_day();
        assert_eq!(book.daily_pnl(), brl(20.0));
        assert_eq!(book.get("PETR4").unwrap().realized_total, brl(100.0));
    }
}
