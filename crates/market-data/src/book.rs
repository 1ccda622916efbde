//! An L2 book maintained from snapshots and incremental updates.

use crate::types::{BookSide, BookSnapshot, BookUpdate, Level};
use chrono::{DateTime, Utc};
use domain::{Price, Qty};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct L2Book {
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
    /// Sequence of the last update applied (0 after a snapshot that carries none).
    seq: u64,
    /// An update was missed: the book is wrong until the next snapshot.
    pub stale: bool,
    pub ts: Option<DateTime<Utc>>,
}

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// The update skipped sequence numbers: applied, but the book is marked stale.
    Gap,
}

impl L2Book {
    pub fn replace(&mut self, snapshot: &BookSnapshot, seq: u64) {
        self.bids = snapshot.bids.iter().map(|l| (l.price, l.quantity)).collect();
        self.asks = snapshot.asks.iter().map(|l| (l.price, l.quantity)).collect();
        self.seq = seq;
        self.stale = false;
        self.ts = Some(snapshot.ts);
    }

    pub fn apply(&mut self, u: &BookUpdate) -> Applied {
        let gap = self.seq != 0 && u.seq != self.seq + 1;
        for c in &u.changes {
            let side = match c.side {
                BookSide::Bid => &mut self.bids,
                BookSide::Ask => &mut self.asks,
            };
            if !c.quantity.is_positive() {
                side.remove(&c.price);
            } else {
                side.insert(c.price, c.quantity);
            }
        }
        self.seq = u.seq;
        self.ts = Some(u.ts);
        if gap {
            self.stale = true;
            Applied::Gap
        } else {
            Applied::Applied
        }
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.iter().next_back().map(|(p, q)| Level { price: *p, quantity: *q })
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.iter().next().map(|(p, q)| Level { price: *p, quantity: *q })
    }

    pub fn snapshot(&self, symbol: &str, depth: usize) -> BookSnapshot {
        BookSnapshot {
            symbol: symbol.to_string(),
            bids: self.bids.iter().rev().take(depth).map(|(p, q)| Level { price: *p, quantity: *q }).collect(),
            asks: self.asks.iter().take(depth).map(|(p, q)| Level { price: *p, quantity: *q }).collect(),
            ts: self.ts.unwrap_or_default(),
        }
    }
}

/// The changes that turn book `before` into book `after` (both best first), as one update.
pub fn diff(symbol: &str, seq: u64, before: &BookSnapshot, after: &BookSnapshot) -> BookUpdate {
    let mut changes = Vec::new();
    for (side, old, new) in [(BookSide::Bid, &before.bids, &after.bids), (BookSide::Ask, &before.asks, &after.asks)] {
        let old: BTreeMap<Price, Qty> = old.iter().map(|l| (l.price, l.quantity)).collect();
        let new: BTreeMap<Price, Qty> = new.iter().map(|l| (l.price, l.quantity)).collect();
        for (p, q) in &new {
            if old.get(p) != Some(q) {
                changes.push(crate::types::LevelChange { side, price: *p, quantity: *q });
            }
        }
        for p in old.keys() {
            if !new.contains_key(p) {
                changes.push(crate::types::LevelChange { side, price: *p, quantity: Qty::ZERO });
            }
        }
    }
    BookUpdate { symbol: symbol.to_string(), seq, changes, ts: after.ts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn levels(v: &[(i64, i64)]) -> Vec<Level> {
        v.iter().map(|&(p, q)| Level { price: Price(p), quantity: Qty(q) }).collect()
    }

    fn snap(bids: &[(i64, i64)], asks: &[(i64, i64)]) -> BookSnapshot {
        BookSnapshot { symbol: "PETR4".into(), bids: levels(bids), asks: levels(asks), ts: DateTime::<Utc>::UNIX_EPOCH }
    }

    #[test]
    fn updates_and_gaps() {
        let mut b = L2Book::default();
        b.replace(&snap(&[(100, 5), (99, 3)], &[(101, 4), (102, 1)]), 7);
        let u = diff(
            "PETR4",
            8,
            &snap(&[(100, 5), (99, 3)], &[(101, 4), (102, 1)]),
            &snap(&[(100, 2)], &[(101, 4), (103, 9)]),
        );
        assert_eq!(b.apply(&u), Applied::Applied);
        assert_eq!(b.snapshot("PETR4", 10), snap(&[(100, 2)], &[(101, 4), (103, 9)]));
        assert_eq!(b.best_bid(), Some(Level { price: Price(100), quantity: Qty(2) }));
        let skipped = BookUpdate { seq: 10, ..u };
        assert_eq!(b.apply(&skipped), Applied::Gap);
        assert!(b.stale);
        b.replace(&snap(&[(100, 1)], &[(101, 1)]), 11);
        assert!(!b.stale);
    }

    proptest! {
        /// Applying the diff of two books to the first always gives the second.
        #[test]
        fn diff_then_apply_is_identity(a in proptest::collection::btree_map(1i64..50, 1i64..9, 0..12), b in proptest::collection::btree_map(1i64..50, 1i64..9, 0..12),
                                       c in proptest::collection::btree_map(51i64..99, 1i64..9, 0..12), d in proptest::collection::btree_map(51i64..99, 1i64..9, 0..12)) {
            let best_first = |m: &std::collections::BTreeMap<i64, i64>, rev: bool| {
                let mut v: Vec<(i64, i64)> = m.iter().map(|(p, q)| (*p, *q)).collect();
                if rev { v.reverse(); }
                v
            };
            let before = snap(&best_first(&a, true), &best_first(&c, false));
            let after = snap(&best_first(&b, true), &best_first(&d, false));
            let mut book = L2Book::default();
            book.replace(&before, 1);
            book.apply(&diff("PETR4", 2, &before, &after));
            prop_assert_eq!(book.snapshot("PETR4", 100), after);
        }
    }
}
