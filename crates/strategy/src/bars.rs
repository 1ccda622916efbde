//! Bars built from trades for the strategies that ask for them, the same way in a backtest and live: a bar of an
//! interval collects the trades of its bucket and is finished by the first trade of a later bucket (a quiet market
//! delays it; nothing is invented for buckets without trades).

use crate::api::{Bar, BarEvent, Interval};
use chrono::{DateTime, Utc};
use domain::{Price, Qty, Symbol};

pub struct BarBuilder {
    series: Vec<(Symbol, Interval, Option<Bar>)>,
}

impl BarBuilder {
    pub fn new(symbols: &[Symbol], intervals: &[Interval]) -> BarBuilder {
        let series = symbols.iter().flat_map(|s| intervals.iter().map(move |i| (*s, *i, None))).collect();
        BarBuilder { series }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// A trade; the bars it finished are appended to `out`.
    pub fn on_trade(&mut self, symbol: Symbol, ts: DateTime<Utc>, price: Price, qty: Qty, out: &mut Vec<BarEvent>) {
        for (s, interval, slot) in self.series.iter_mut().filter(|(s, _, _)| *s == symbol) {
            let start = market_data::processor::bucket_start(ts, *interval);
            match slot {
                Some(bar) if bar.open_time == start => {
                    bar.high = bar.high.max(price);
                    bar.low = bar.low.min(price);
                    bar.close = price;
                    bar.volume += qty;
                    bar.trade_count += 1;
                }
                _ => {
                    if let Some(done) = slot.take() {
                        out.push(BarEvent { symbol: *s, interval: *interval, bar: done });
                    }
                    *slot = Some(Bar {
                        open_time: start,
                        open: price,
                        high: price,
                        low: price,
                        close: price,
                        volume: qty,
                        trade_count: 1,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_is_finished_by_the_first_trade_of_the_next_bucket() {
        let pet = Symbol::lit("PETR4");
        let mut b = BarBuilder::new(&[pet], &[Interval::M1]);
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let mut out = Vec::new();
        b.on_trade(pet, t("2025-03-10T13:00:05Z"), Price(385_000), Qty(100), &mut out);
        b.on_trade(pet, t("2025-03-10T13:00:50Z"), Price(386_000), Qty(200), &mut out);
        b.on_trade(Symbol::lit("VALE3"), t("2025-03-10T13:01:00Z"), Price(1), Qty(1), &mut out);
        assert!(out.is_empty());
        b.on_trade(pet, t("2025-03-10T13:03:01Z"), Price(384_000), Qty(100), &mut out);
        assert_eq!(out.len(), 1);
        let bar = out[0].bar;
        assert_eq!(
            (bar.open, bar.high, bar.close, bar.volume, bar.trade_count),
            (Price(385_000), Price(386_000), Price(386_000), Qty(300), 2)
        );
        assert_eq!(bar.open_time, t("2025-03-10T13:00:00Z"));
    }
}
