//! The engine's compact market events: a symbol index instead of a name, fixed-point prices, no strings, so a
//! million of them stream through without an allocation each.

use domain::{Price, Qty};
use market_data::{Aggressor, Level};

/// An index into the run's symbol table.
pub type SymbolIdx = u16;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Nanoseconds since the Unix epoch (UTC): the exchange's timestamp.
    pub ts: i64,
    pub sym: SymbolIdx,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Trade {
        price: Price,
        quantity: Qty,
        aggressor: Aggressor,
    },
    /// The top of the book; a side with quantity zero is absent.
    Quote {
        bid: Level,
        ask: Level,
    },
    /// An L2 snapshot, best level first on each side (rare next to trades and quotes, so boxed).
    Book(Box<BookLevels>),
    /// A trading signal (TP-Capital's) for this symbol.
    Signal(Box<strategy::api::SignalEvent>),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BookLevels {
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// A side of a quote that is not there.
pub const NO_LEVEL: Level = Level { price: Price::ZERO, quantity: Qty::ZERO };

pub fn level_or_none(l: Option<Level>) -> Level {
    l.filter(|l| l.quantity.is_positive()).unwrap_or(NO_LEVEL)
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_stay_small() {
        // The data path moves events by value: keep them within a cache line.
        assert!(std::mem::size_of::<super::Event>() <= 56, "{}", std::mem::size_of::<super::Event>());
    }
}
