//! The simulated exchange's view of the replayed market: the last print, the top of book and the L2 book of each
//! symbol, as the paper broker's [`Matcher`](paper_broker::matching::Matcher) consumes them through [`Liquidity`].
//!
//! Fill model:
//! - with a replayed book, marketable quantity walks its levels; what an order takes stays taken until the next
//!   snapshot (two orders cannot both take the same displayed size);
//! - without one, at the touch (ask to buy, bid to sell) or, with no quote, the last print, plus `slippage_ticks`
//!   ticks against the order, never beyond its limit;
//! - resting limits fill when the tape trades through them (the matcher's rule) or when the replayed quote moves
//!   through them, at their own price.

use crate::event::{BookLevels, NO_LEVEL};
use crate::source::SymbolTable;
use chrono::{DateTime, Utc};
use domain::order::Side;
use domain::{Instrument, Price, Qty, Symbol};
use market_data::Level;
use paper_broker::matching::Liquidity;

#[derive(Debug, Clone)]
struct Market {
    tick: Price,
    last: Option<Price>,
    bid: Level,
    ask: Level,
    book: Option<BookLevels>,
    /// Quantity taken from each level of `book` since it was replayed.
    taken_bids: Vec<Qty>,
    taken_asks: Vec<Qty>,
}

#[derive(Debug, Clone)]
pub struct Venue {
    table: SymbolTable,
    markets: Vec<Market>,
    slippage_ticks: i64,
}

impl Venue {
    /// `instruments` in the order of `table`.
    pub fn new(table: SymbolTable, instruments: &[Instrument], slippage_ticks: i64) -> Venue {
        let markets = instruments
            .iter()
            .map(|i| Market {
                tick: i.tick_size,
                last: None,
                bid: NO_LEVEL,
                ask: NO_LEVEL,
                book: None,
                taken_bids: Vec::new(),
                taken_asks: Vec::new(),
            })
            .collect();
        Venue { table, markets, slippage_ticks: slippage_ticks.max(0) }
    }

    pub fn on_trade(&mut self, sym: u16, price: Price) {
        self.markets[usize::from(sym)].last = Some(price);
    }

    pub fn on_quote(&mut self, sym: u16, bid: Level, ask: Level) {
        let m = &mut self.markets[usize::from(sym)];
        m.bid = bid;
        m.ask = ask;
        // A quote at the book's best prices (the recorder writes both from one book) keeps the depth behind it; a
        // quote elsewhere means the book no longer describes the market.
        let same_top = m.book.as_ref().is_some_and(|b| {
            b.bids.first().map(|l| l.price) == Some(bid.price) && b.asks.first().map(|l| l.price) == Some(ask.price)
        });
        match (&mut m.book, same_top) {
            (Some(b), true) => {
                b.bids[0].quantity = bid.quantity;
                b.asks[0].quantity = ask.quantity;
            }
            _ => m.book = None,
        }
    }

    pub fn on_book(&mut self, sym: u16, book: &BookLevels) {
        let m = &mut self.markets[usize::from(sym)];
        m.bid = book.bids.first().copied().unwrap_or(NO_LEVEL);
        m.ask = book.asks.first().copied().unwrap_or(NO_LEVEL);
        m.taken_bids.clear();
        m.taken_bids.resize(book.bids.len(), Qty::ZERO);
        m.taken_asks.clear();
        m.taken_asks.resize(book.asks.len(), Qty::ZERO);
        match &mut m.book {
            Some(b) => b.clone_from(book),
            None => m.book = Some(book.clone()),
        }
    }

    /// The price to value a position at: the mid when both sides are quoted, else the last print.
    pub fn mark(&self, sym: u16) -> Option<Price> {
        let m = &self.markets[usize::from(sym)];
        if m.bid.quantity.is_positive() && m.ask.quantity.is_positive() {
            Some(Price((m.bid.price.units() + m.ask.price.units()) / 2))
        } else {
            m.last
        }
    }

    fn market(&self, symbol: &Symbol) -> Option<usize> {
        self.table.index(symbol.as_str()).map(usize::from)
    }
}

fn within(side: Side, price: Price, limit: Option<Price>) -> bool {
    match (side, limit) {
        (_, None) => true,
        (Side::Buy, Some(l)) => price <= l,
        (Side::Sell, Some(l)) => price >= l,
    }
}

impl Liquidity for Venue {
    fn knows(&self, symbol: &Symbol) -> bool {
        self.market(symbol).is_some()
    }

    fn execute(
        &mut self,
        symbol: &Symbol,
        side: Side,
        qty: Qty,
        limit: Option<Price>,
        _now: DateTime<Utc>,
    ) -> Vec<(Price, Qty)> {
        let Some(i) = self.market(symbol) else { return Vec::new() };
        let slippage = self.slippage_ticks;
        let m = &mut self.markets[i];
        let mut out = Vec::new();
        if let Some(book) = &m.book {
            let (levels, taken) = match side {
                Side::Buy => (&book.asks, &mut m.taken_asks),
                Side::Sell => (&book.bids, &mut m.taken_bids),
            };
            let mut left = qty;
            for (l, t) in levels.iter().zip(taken.iter_mut()) {
                if left.is_zero() || !within(side, l.price, limit) {
                    break;
                }
                let take = left.min(l.quantity - *t);
                if take.is_positive() {
                    out.push((l.price, take));
                    *t += take;
                    left -= take;
                }
            }
            return out;
        }
        let touch = match side {
            Side::Buy if m.ask.quantity.is_positive() => Some(m.ask.price),
            Side::Sell if m.bid.quantity.is_positive() => Some(m.bid.price),
            _ => m.last,
        };
        let Some(touch) = touch else { return out };
        if !within(side, touch, limit) {
            return out;
        }
        let slip = m.tick.units().saturating_mul(slippage);
        let mut price = match side {
            Side::Buy => Price(touch.units().saturating_add(slip)),
            Side::Sell => Price(touch.units().saturating_sub(slip).max(m.tick.units())),
        };
        if let Some(l) = limit {
            price = match side {
                Side::Buy => price.min(l),
                Side::Sell => price.max(l),
            };
        }
        out.push((price, qty));
        out
    }

    fn displayed(&self, symbol: &Symbol, side: Side, price: Price) -> Qty {
        let Some(i) = self.market(symbol) else { return Qty::ZERO };
        let m = &self.markets[i];
        // Our side of the book: bids for a buy.
        if let Some(book) = &m.book {
            let levels = if side == Side::Buy { &book.bids } else { &book.asks };
            return levels.iter().find(|l| l.price == price).map(|l| l.quantity).unwrap_or(Qty::ZERO);
        }
        let touch = if side == Side::Buy { m.bid } else { m.ask };
        if touch.price == price {
            touch.quantity
        } else {
            Qty::ZERO
        }
    }

    fn available(&self, symbol: &Symbol, side: Side, limit: Option<Price>) -> Qty {
        let Some(i) = self.market(symbol) else { return Qty::ZERO };
        let m = &self.markets[i];
        if let Some(book) = &m.book {
            let (levels, taken) = match side {
                Side::Buy => (&book.asks, &m.taken_asks),
                Side::Sell => (&book.bids, &m.taken_bids),
            };
            return levels
                .iter()
                .zip(taken)
                .take_while(|(l, _)| within(side, l.price, limit))
                .fold(Qty::ZERO, |a, (l, t)| a + (l.quantity - *t).max(Qty::ZERO));
        }
        let touch = match side {
            Side::Buy if m.ask.quantity.is_positive() => Some(m.ask.price),
            Side::Sell if m.bid.quantity.is_positive() => Some(m.bid.price),
            _ => m.last,
        };
        // Without a book the model fills any size at the touch.
        match touch {
            Some(t) if within(side, t, limit) => Qty(i64::MAX / 4),
            _ => Qty::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venue(slippage: i64) -> Venue {
        let inst = domain::Instruments::b3_defaults(chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap());
        let petr = inst.get("PETR4").unwrap().clone();
        Venue::new(SymbolTable::new(&[petr.symbol]).unwrap(), &[petr], slippage)
    }

    fn lv(p: i64, q: i64) -> Level {
        Level { price: Price(p), quantity: Qty(q) }
    }

    const PETR: Symbol = Symbol::lit("PETR4");

    #[test]
    fn a_market_order_walks_the_replayed_book_and_what_it_took_stays_taken() {
        let mut v = venue(0);
        let book = BookLevels { bids: vec![lv(384_900, 100)], asks: vec![lv(385_000, 100), lv(385_100, 200)] };
        v.on_book(0, &book);
        let now = Utc::now();
        assert_eq!(
            v.execute(&PETR, Side::Buy, Qty(150), None, now),
            vec![(Price(385_000), Qty(100)), (Price(385_100), Qty(50))]
        );
        assert_eq!(v.available(&PETR, Side::Buy, None), Qty(150));
        // A limit stops the walk: the partial fill leaves the rest to rest.
        assert_eq!(v.execute(&PETR, Side::Buy, Qty(500), Some(Price(385_100)), now), vec![(Price(385_100), Qty(150))]);
        assert!(v.execute(&PETR, Side::Buy, Qty(1), Some(Price(385_100)), now).is_empty());
        // A new snapshot is fresh liquidity.
        v.on_book(0, &book);
        assert_eq!(v.available(&PETR, Side::Buy, None), Qty(300));
        // A quote at the same best prices keeps the depth (with its sizes); one elsewhere drops the book.
        v.on_quote(0, lv(384_900, 100), lv(385_000, 150));
        assert_eq!(v.available(&PETR, Side::Buy, None), Qty(350), "150 at the touch, 200 behind");
        v.on_quote(0, lv(384_800, 100), lv(384_900, 150));
        assert_eq!(v.execute(&PETR, Side::Buy, Qty(400), None, now), vec![(Price(384_900), Qty(400))], "the touch");
    }

    #[test]
    fn without_a_book_the_touch_plus_slippage_never_beyond_the_limit() {
        let mut v = venue(2);
        let now = Utc::now();
        assert!(v.execute(&PETR, Side::Buy, Qty(100), None, now).is_empty(), "no market yet");
        v.on_trade(0, Price(385_000));
        assert_eq!(v.execute(&PETR, Side::Buy, Qty(100), None, now), vec![(Price(385_200), Qty(100))]);
        v.on_quote(0, lv(384_900, 500), lv(385_100, 500));
        assert_eq!(v.execute(&PETR, Side::Sell, Qty(100), None, now), vec![(Price(384_700), Qty(100))]);
        assert_eq!(v.execute(&PETR, Side::Buy, Qty(100), Some(Price(385_200)), now), vec![(Price(385_200), Qty(100))]);
        assert!(
            v.execute(&PETR, Side::Buy, Qty(100), Some(Price(385_000)), now).is_empty(),
            "the ask is above the limit"
        );
        assert_eq!(v.mark(0), Some(Price(385_000)));
    }
}
