//! The run's books for its report: positions marked to the replayed market, fills with their settled costs, round
//! trips, the equity curve and one close per trading day. Money is exact (fixed-point); only the curve handed to
//! the metrics is in floating point.

use crate::costs::{CostModel, DayFill, FillCost, MonthTax, TaxEstimator};
use crate::event::SymbolIdx;
use chrono::NaiveDate;
use domain::order::{OrderId, Side};
use domain::{Instrument, Money, Position, Price, Qty};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FillRow {
    pub order_id: OrderId,
    pub ts: i64,
    pub sym: SymbolIdx,
    pub side: Side,
    pub quantity: Qty,
    pub price: Price,
    pub value: Money,
    /// Settled at the end of its day (provisional, at the normal rate, before).
    pub cost: FillCost,
    pub realized: Money,
    /// The first fill of its order (brokerage per order is charged on it).
    #[serde(skip)]
    pub first_of_order: bool,
}

/// A position from flat back to flat (a flip closes one and opens the next).
#[derive(Debug, Clone, Serialize)]
pub struct Trip {
    pub sym: SymbolIdx,
    /// +1 long, −1 short.
    pub direction: i8,
    pub open_ts: i64,
    pub close_ts: i64,
    /// The largest quantity held.
    pub max_quantity: Qty,
    pub gross: Money,
    pub costs: Money,
    pub net: Money,
    /// (fill index, quantity of that fill in this trip).
    #[serde(skip)]
    fills: Vec<(usize, Qty)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayClose {
    pub date: NaiveDate,
    pub equity: Money,
    pub realized: Money,
    pub costs: Money,
    pub fills: usize,
}

struct Book {
    inst: Instrument,
    pos: Position,
    day_fills: Vec<usize>,
    realized_day: Money,
    trip: Option<Trip>,
    last_sample_minute: i64,
}

pub struct Ledger {
    capital: Money,
    books: Vec<Book>,
    pub fills: Vec<FillRow>,
    pub trips: Vec<Trip>,
    pub days: Vec<DayClose>,
    /// (ts, equity) at each fill and at the first event of each minute.
    pub curve: Vec<(i64, f64)>,
    /// Per symbol: (ts, mark) at the first event of each minute, for the price chart.
    pub prices: Vec<Vec<(i64, f64)>>,
    realized: Money,
    costs_settled: Money,
    costs_provisional: Money,
    open_positions: usize,
    pub events: u64,
    pub events_in_position: u64,
    last_curve_minute: i64,
    costs: CostModel,
    tax: TaxEstimator,
    /// Futures roots with no fee in the schedule.
    pub unpriced: Vec<String>,
    seen_orders: std::collections::HashSet<OrderId>,
    day: Option<NaiveDate>,
    day_realized: Money,
    day_fill_count: usize,
}

const MINUTE: i64 = 60_000_000_000;

impl Ledger {
    /// `instruments` in the order of the run's symbol table.
    pub fn new(capital: Money, instruments: &[Instrument], costs: CostModel) -> Ledger {
        let books = instruments
            .iter()
            .map(|i| Book {
                inst: i.clone(),
                pos: Position::new(i.symbol, i.multiplier),
                day_fills: Vec::new(),
                realized_day: Money::ZERO,
                trip: None,
                last_sample_minute: i64::MIN,
            })
            .collect();
        Ledger {
            capital,
            books,
            fills: Vec::new(),
            trips: Vec::new(),
            days: Vec::new(),
            curve: Vec::new(),
            prices: vec![Vec::new(); instruments.len()],
            realized: Money::ZERO,
            costs_settled: Money::ZERO,
            costs_provisional: Money::ZERO,
            open_positions: 0,
            events: 0,
            events_in_position: 0,
            last_curve_minute: i64::MIN,
            costs,
            tax: TaxEstimator::default(),
            unpriced: Vec::new(),
            seen_orders: Default::default(),
            day: None,
            day_realized: Money::ZERO,
            day_fill_count: 0,
        }
    }

    pub fn capital(&self) -> Money {
        self.capital
    }

    /// Capital + realized + unrealized at the marks − costs. Computed when asked (each minute of the curve, each
    /// fill, each close), not per event: the per-event work is storing the mark.
    pub fn equity(&self) -> Money {
        let unrealized = self.books.iter().fold(Money::ZERO, |a, b| a + b.pos.unrealized().unwrap_or_default());
        self.capital + self.realized + unrealized - self.costs_settled - self.costs_provisional
    }

    /// Realized + unrealized − costs so far.
    pub fn pnl(&self) -> Money {
        self.equity() - self.capital
    }

    pub fn costs(&self) -> Money {
        self.costs_settled + self.costs_provisional
    }

    pub fn position(&self, sym: SymbolIdx) -> Qty {
        self.books[usize::from(sym)].pos.quantity
    }

    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.books.iter().map(|b| &b.pos)
    }

    pub fn instrument(&self, sym: SymbolIdx) -> &Instrument {
        &self.books[usize::from(sym)].inst
    }

    /// A market event for `sym` at `ts`, marking it at `mark` (when there is one).
    #[inline]
    pub fn on_event(&mut self, ts: i64, sym: SymbolIdx, mark: Option<Price>) {
        self.events += 1;
        if self.open_positions > 0 {
            self.events_in_position += 1;
        }
        let Some(mark) = mark else { return };
        let b = &mut self.books[usize::from(sym)];
        b.pos.last_price = Some(mark);
        let minute = ts.div_euclid(MINUTE);
        if minute != b.last_sample_minute {
            b.last_sample_minute = minute;
            self.prices[usize::from(sym)].push((ts, mark.to_f64()));
        }
        if minute != self.last_curve_minute {
            self.last_curve_minute = minute;
            let e = self.equity().to_f64();
            self.curve.push((ts, e));
        }
    }

    /// A fill of one of the strategy's orders. Returns the P&L it realized.
    pub fn on_fill(
        &mut self,
        order_id: OrderId,
        ts: i64,
        sym: SymbolIdx,
        side: Side,
        quantity: Qty,
        price: Price,
    ) -> Money {
        let first_of_order = self.seen_orders.insert(order_id);
        let idx = self.fills.len();
        let b = &mut self.books[usize::from(sym)];
        let value = domain::price::notional(price, quantity, b.inst.multiplier).unwrap_or_default();
        let before = b.pos.quantity;
        let realized = b.pos.apply_fill(side, quantity, price).unwrap_or_default();
        if b.pos.last_price.is_none() {
            b.pos.last_price = Some(price);
        }
        self.realized += realized;
        b.realized_day += realized;
        let after = b.pos.quantity;
        match (before.is_zero(), after.is_zero()) {
            (true, false) => self.open_positions += 1,
            (false, true) => self.open_positions -= 1,
            _ => {}
        }
        let date = crate::source::trading_date_of(ts);
        let usd = b.pos.last_price;
        let provisional =
            self.costs.provisional(date, &b.inst, &DayFill { side, quantity, price, value, first_of_order }, usd);
        self.costs_provisional += provisional;
        b.day_fills.push(idx);
        self.fills.push(FillRow {
            order_id,
            ts,
            sym,
            side,
            quantity,
            price,
            value,
            cost: FillCost { day_trade_qty: Qty::ZERO, exchange: provisional, brokerage: Money::ZERO },
            realized,
            first_of_order,
        });
        // Round trips: the closing part of the fill ends the open trip, an opening part starts (or grows) one.
        let signed = quantity.signed(side);
        let closing =
            if before.is_zero() || before.signum() == signed.signum() { Qty::ZERO } else { quantity.min(before.abs()) };
        if closing.is_positive() {
            if let Some(t) = b.trip.as_mut() {
                t.fills.push((idx, closing));
                t.gross += realized;
                t.close_ts = ts;
            }
            if after.is_zero() || after.signum() != before.signum() {
                if let Some(t) = b.trip.take() {
                    self.trips.push(t);
                }
            }
        }
        let opening = quantity - closing;
        if opening.is_positive() {
            let t = b.trip.get_or_insert_with(|| Trip {
                sym,
                direction: if signed.is_positive() { 1 } else { -1 },
                open_ts: ts,
                close_ts: ts,
                max_quantity: Qty::ZERO,
                gross: Money::ZERO,
                costs: Money::ZERO,
                net: Money::ZERO,
                fills: Vec::new(),
            });
            t.fills.push((idx, opening));
            t.max_quantity = t.max_quantity.max(after.abs());
        }
        self.curve.push((ts, self.equity().to_f64()));
        realized
    }

    /// The trading day of `ts` begins: the previous one (if any) is settled and closed.
    pub fn roll_to(&mut self, date: NaiveDate) {
        if let Some(prev) = self.day {
            if prev != date {
                self.close_day(prev);
            }
        }
        self.day = Some(date);
    }

    /// Settles the day's costs instrument by instrument and records its close.
    fn close_day(&mut self, date: NaiveDate) {
        let mut day_costs = Money::ZERO;
        for b in &mut self.books {
            if b.day_fills.is_empty() {
                continue;
            }
            let day: Vec<DayFill> = b
                .day_fills
                .iter()
                .map(|&i| {
                    let f = &self.fills[i];
                    DayFill {
                        side: f.side,
                        quantity: f.quantity,
                        price: f.price,
                        value: f.value,
                        first_of_order: f.first_of_order,
                    }
                })
                .collect();
            let s = self.costs.settle_day(date, &b.inst, &day, b.pos.last_price);
            if let Some(root) = &s.unknown_fee {
                if !self.unpriced.contains(root) {
                    self.unpriced.push(root.clone());
                }
            }
            for (&i, c) in b.day_fills.iter().zip(&s.costs) {
                self.costs_provisional = self.costs_provisional - self.fills[i].cost.total();
                self.costs_settled += c.total();
                day_costs += c.total();
                self.fills[i].cost = *c;
            }
            self.tax.add_day(date, &b.inst, b.realized_day, &s);
            self.day_fill_count += b.day_fills.len();
            self.day_realized += b.realized_day;
            b.day_fills.clear();
            b.realized_day = Money::ZERO;
            b.pos.realized_today = Money::ZERO;
        }
        self.days.push(DayClose {
            date,
            equity: self.equity(),
            realized: self.day_realized,
            costs: day_costs,
            fills: self.day_fill_count,
        });
        self.day_realized = Money::ZERO;
        self.day_fill_count = 0;
    }

    /// The end of the data: the last day closes, round trips still open stay open (their positions are marked).
    pub fn finish(&mut self) {
        if let Some(d) = self.day.take() {
            self.close_day(d);
        }
        for t in &mut self.trips {
            let costs: Money = t
                .fills
                .iter()
                .map(|&(i, q)| {
                    let f = &self.fills[i];
                    if f.quantity.is_zero() {
                        Money::ZERO
                    } else {
                        Money(
                            domain::price::div_round(f.cost.total().0 as i128 * i128::from(q), i128::from(f.quantity))
                                as i64,
                        )
                    }
                })
                .fold(Money::ZERO, |a, b| a + b);
            t.costs = costs;
            t.net = t.gross - costs;
        }
    }

    pub fn tax(&self) -> Vec<MonthTax> {
        self.tax.months()
    }
}
