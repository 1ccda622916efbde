//! `book_imbalance`: trades the pressure in the book. The imbalance is (bid size − ask size) / (bid size + ask
//! size) over the best `levels` levels of each side (the top of book with quotes only). Above `threshold` it goes
//! long, below −`threshold` short; back inside ±`exit` it goes flat; at least `hold_ticks` book updates between
//! changes, so it does not churn on every flicker.

use super::common::{check_lots, move_to};
use crate::api::{BookView, Context, Level, QuoteTick, Strategy};
use crate::params::{invalid, typed, ParamError, Params};
use domain::Symbol;
use serde::Deserialize;

pub const NAME: &str = "book_imbalance";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookImbalanceParams {
    #[serde(default = "defaults::levels")]
    pub levels: usize,
    #[serde(default = "defaults::threshold")]
    pub threshold: f64,
    #[serde(default = "defaults::exit")]
    pub exit: f64,
    #[serde(default)]
    pub hold_ticks: u64,
    #[serde(default = "defaults::lots")]
    pub lots: i64,
}

mod defaults {
    pub fn levels() -> usize {
        3
    }
    pub fn threshold() -> f64 {
        0.6
    }
    pub fn exit() -> f64 {
        0.2
    }
    pub fn lots() -> i64 {
        1
    }
}

struct Track {
    state: i8,
    since_change: u64,
    changed: bool,
}

pub struct BookImbalance {
    symbols: Vec<Symbol>,
    p: BookImbalanceParams,
    /// Set by the first book: from then on quotes (which a book also implies) do not count twice.
    books_seen: bool,
    tracks: Vec<(Symbol, Track)>,
}

/// (bid − ask) / (bid + ask) over sizes; `None` when both sides are empty.
pub fn imbalance(bids: &[Level], asks: &[Level], levels: usize) -> Option<f64> {
    let sum = |side: &[Level]| side.iter().take(levels).map(|l| l.quantity.get() as f64).sum::<f64>();
    let (b, a) = (sum(bids), sum(asks));
    (b + a > 0.0).then(|| (b - a) / (b + a))
}

impl BookImbalance {
    pub fn new(symbols: &[Symbol], params: &Params) -> Result<BookImbalance, ParamError> {
        let p: BookImbalanceParams = typed(NAME, params)?;
        if !(1..=50).contains(&p.levels) {
            return Err(invalid(NAME, "levels: 1 to 50"));
        }
        if !(p.threshold > 0.0 && p.threshold < 1.0) {
            return Err(invalid(NAME, "threshold: between 0 and 1, exclusive"));
        }
        if !(p.exit >= 0.0 && p.exit < p.threshold) {
            return Err(invalid(NAME, format!("need 0 <= exit < threshold (exit = {})", p.exit)));
        }
        check_lots(NAME, p.lots)?;
        if symbols.is_empty() {
            return Err(invalid(NAME, "needs at least one symbol"));
        }
        let tracks = symbols.iter().map(|s| (*s, Track { state: 0, since_change: 0, changed: false })).collect();
        Ok(BookImbalance { symbols: symbols.to_vec(), p, books_seen: false, tracks })
    }

    fn observe(&mut self, ctx: &mut dyn Context, symbol: Symbol, x: f64) {
        let Some((_, t)) = self.tracks.iter_mut().find(|(s, _)| *s == symbol) else { return };
        t.since_change = t.since_change.saturating_add(1);
        let next = if x > self.p.threshold {
            1
        } else if x < -self.p.threshold {
            -1
        } else if x.abs() < self.p.exit {
            0
        } else {
            t.state
        };
        if next == t.state || (t.changed && t.since_change < self.p.hold_ticks) {
            return;
        }
        t.state = next;
        t.changed = true;
        t.since_change = 0;
        move_to(ctx, symbol, self.p.lots * i64::from(next), || format!("book_imbalance: {x:+.3}"));
    }
}

impl Strategy for BookImbalance {
    fn name(&self) -> &str {
        NAME
    }

    fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    fn on_book(&mut self, ctx: &mut dyn Context, b: &BookView<'_>) {
        self.books_seen = true;
        if let Some(x) = imbalance(b.bids, b.asks, self.p.levels) {
            self.observe(ctx, b.symbol, x);
        }
    }

    fn on_quote(&mut self, ctx: &mut dyn Context, q: &QuoteTick) {
        if self.books_seen {
            return;
        }
        let bid = [Level { price: q.bid, quantity: q.bid_size }];
        let ask = [Level { price: q.ask, quantity: q.ask_size }];
        if let Some(x) = imbalance(&bid, &ask, 1) {
            self.observe(ctx, q.symbol, x);
        }
    }
}
