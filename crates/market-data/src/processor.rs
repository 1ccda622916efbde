//! Tick processing.
//!
//! - Validation: known symbol, positive price on the instrument's tick grid, positive quantity, an exchange time
//!   that is neither ahead of the receive time (beyond a small skew) nor absurdly old.
//! - De-duplication and gaps by `trade_id`, the exchange's per-session sequence: an id above the high-water mark
//!   plus one opens a gap for the ids in between; an id inside an open gap fills it (a backfill or a late packet);
//!   any other id at or below the high-water mark is a duplicate. A new session date resets the sequence.
//! - Corrections: an edit or cancel of a trade still on the in-memory tape rewrites it and rebuilds its one-minute
//!   bar from the tape when the tape still holds that whole minute; otherwise volume and count are corrected
//!   exactly and the bar's extremes can only widen.
//! - Candles: one-minute bars are the base; 5m, 15m, 1h and 1d are aggregated from them, so one correction path
//!   serves every interval. Daily bars follow the São Paulo trading date.

use crate::types::{BookSnapshot, Candle, Interval, Quote, Trade, TradeKind};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::America::Sao_Paulo;
use domain::{Instruments, Price, Qty};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Trades kept per symbol for `/market/trades` and corrections.
    pub tape_len: usize,
    /// One-minute bars kept per symbol (2 days by default: enough to aggregate today's daily bar).
    pub minute_bars: usize,
    pub max_future_skew: Duration,
    pub max_age: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            tape_len: 10_000,
            minute_bars: 2 * 1440,
            max_future_skew: Duration::seconds(5),
            max_age: Duration::days(1),
        }
    }
}

/// A bar without its symbol (the symbol lives with the series).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bar {
    pub open_time: DateTime<Utc>,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    pub volume: Qty,
    pub trade_count: u64,
}

impl Bar {
    fn new(open_time: DateTime<Utc>, price: Price, qty: Qty) -> Bar {
        Bar { open_time, open: price, high: price, low: price, close: price, volume: qty, trade_count: 1 }
    }

    fn add(&mut self, price: Price, qty: Qty) {
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.close = price;
        self.volume += qty;
        self.trade_count += 1;
    }

    fn merge(&mut self, later: &Bar) {
        self.high = self.high.max(later.high);
        self.low = self.low.min(later.low);
        self.close = later.close;
        self.volume += later.volume;
        self.trade_count += later.trade_count;
    }

    pub fn to_candle(self, symbol: &str, interval: Interval) -> Candle {
        Candle {
            symbol: symbol.to_string(),
            interval,
            open_time: self.open_time,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            trade_count: self.trade_count,
        }
    }
}

/// Ids `[from, to]` never received (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gap {
    pub from: u64,
    pub to: u64,
    pub detected_at: DateTime<Utc>,
}

impl Gap {
    /// How many ids are missing.
    pub fn count(&self) -> u64 {
        self.to - self.from + 1
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new trade; `gap` when it revealed missing ids before it.
    New {
        gap: Option<Gap>,
    },
    /// A trade that filled part of an open gap.
    Backfilled,
    Edited,
    Canceled,
    Duplicate,
    Invalid(String),
}

impl Outcome {
    pub fn is_accepted(&self) -> bool {
        matches!(self, Outcome::New { .. } | Outcome::Backfilled | Outcome::Edited | Outcome::Canceled)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub outcome: Outcome,
    /// The one-minute bar the trade changed.
    pub bar: Option<Bar>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SymbolStats {
    pub trades: u64,
    pub duplicates: u64,
    pub invalid: u64,
    pub corrections: u64,
    pub gaps_detected: u64,
    pub missing_ids: u64,
    pub backfilled: u64,
    /// Book updates that arrived after a missed one.
    pub book_gaps: u64,
    pub high_water: u64,
    pub open_gaps: Vec<Gap>,
    pub last_trade_ts: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Series {
    session: Option<NaiveDate>,
    /// The UTC span of `session`'s São Paulo day, so most trades skip the time-zone conversion.
    session_span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    high_water: u64,
    gaps: Vec<Gap>,
    tape: VecDeque<Trade>,
    /// The tape has dropped old trades (so it may not hold a whole minute any more).
    tape_dropped: bool,
    minutes: VecDeque<Bar>,
    book: Option<crate::book::L2Book>,
    stats: SymbolStats,
}

pub struct TickProcessor {
    instruments: Instruments,
    config: ProcessorConfig,
    series: HashMap<String, Series>,
}

fn minute_start(ts: DateTime<Utc>) -> DateTime<Utc> {
    let secs = ts.timestamp().div_euclid(60) * 60;
    Utc.timestamp_opt(secs, 0).single().unwrap_or(ts)
}

/// The start of the `interval` bucket holding `ts`. Minutes and hours align in UTC (São Paulo is a whole number of
/// hours away); days start at São Paulo midnight.
pub fn bucket_start(ts: DateTime<Utc>, interval: Interval) -> DateTime<Utc> {
    match interval {
        Interval::D1 => {
            let date = ts.with_timezone(&Sao_Paulo).date_naive();
            let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
            Sao_Paulo.from_local_datetime(&midnight).earliest().map(|t| t.with_timezone(&Utc)).unwrap_or(ts)
        }
        other => {
            let step = other.minutes() * 60;
            let secs = ts.timestamp().div_euclid(step) * step;
            Utc.timestamp_opt(secs, 0).single().unwrap_or(ts)
        }
    }
}

fn session_of(ts: DateTime<Utc>) -> NaiveDate {
    ts.with_timezone(&Sao_Paulo).date_naive()
}

impl TickProcessor {
    pub fn new(instruments: Instruments, config: ProcessorConfig) -> Self {
        TickProcessor { instruments, config, series: HashMap::new() }
    }

    pub fn instruments(&self) -> &Instruments {
        &self.instruments
    }

    fn validate(&self, t: &Trade) -> Result<(), String> {
        let Some(ins) = self.instruments.get(&t.symbol) else {
            return Err(format!("unknown symbol {:?}", t.symbol));
        };
        if !t.price.is_positive() {
            return Err(format!("non-positive price {}", t.price));
        }
        if !t.price.is_on_grid(ins.tick_size) {
            return Err(format!("price {} is off the tick grid ({})", t.price, ins.tick_size));
        }
        if t.kind != TradeKind::Cancel && !t.quantity.is_positive() {
            return Err(format!("non-positive quantity {}", t.quantity));
        }
        if t.exchange_ts > t.receive_ts + self.config.max_future_skew {
            return Err("exchange time is ahead of the receive time".into());
        }
        if t.exchange_ts < t.receive_ts - self.config.max_age {
            return Err("exchange time is too old".into());
        }
        Ok(())
    }

    /// Processes one trade event.
    pub fn on_trade(&mut self, t: Trade) -> Processed {
        if let Err(reason) = self.validate(&t) {
            if let Some(s) = self.series.get_mut(&t.symbol) {
                s.stats.invalid += 1;
            }
            return Processed { outcome: Outcome::Invalid(reason), bar: None };
        }
        let config = &self.config;
        // Looked up before inserting so the common case does not allocate the key.
        if !self.series.contains_key(&t.symbol) {
            self.series.insert(t.symbol.clone(), Series::default());
        }
        let Some(s) = self.series.get_mut(&t.symbol) else {
            return Processed { outcome: Outcome::Invalid("unknown symbol".into()), bar: None };
        };
        match t.kind {
            TradeKind::New => Self::on_new(s, t, config),
            TradeKind::Edit | TradeKind::Cancel => Self::on_correction(s, t),
        }
    }

    fn on_new(s: &mut Series, t: Trade, config: &ProcessorConfig) -> Processed {
        let ts = t.exchange_ts;
        let session = match s.session_span {
            Some((from, to)) if from <= ts && ts < to => s.session.unwrap_or_else(|| session_of(ts)),
            _ => {
                let day = session_of(ts);
                let start = bucket_start(ts, Interval::D1);
                let next = bucket_start(start + chrono::Duration::hours(36), Interval::D1);
                // Only the span of the newest session is cached, so late trades of an older day still convert.
                if s.session.is_none_or(|d| day >= d) {
                    s.session_span = Some((start, next));
                }
                day
            }
        };
        if s.session.is_some_and(|d| session > d) {
            // Trade ids restart with each session.
            s.high_water = 0;
            s.gaps.clear();
        }
        if s.session.is_none_or(|d| session > d) {
            s.session = Some(session);
        }
        let id = t.trade_id;
        let outcome = if id > s.high_water {
            let gap = (id > s.high_water + 1 && s.high_water > 0).then(|| Gap {
                from: s.high_water + 1,
                to: id - 1,
                detected_at: t.receive_ts,
            });
            if let Some(g) = gap {
                s.gaps.push(g);
                s.stats.gaps_detected += 1;
                s.stats.missing_ids += g.count();
            }
            s.high_water = id;
            Outcome::New { gap }
        } else if let Some(i) = s.gaps.iter().position(|g| g.from <= id && id <= g.to) {
            let g = s.gaps.remove(i);
            if g.from < id {
                s.gaps.push(Gap { to: id - 1, ..g });
            }
            if id < g.to {
                s.gaps.push(Gap { from: id + 1, ..g });
            }
            s.gaps.sort_by_key(|g| g.from);
            s.stats.missing_ids -= 1;
            s.stats.backfilled += 1;
            Outcome::Backfilled
        } else {
            s.stats.duplicates += 1;
            return Processed { outcome: Outcome::Duplicate, bar: None };
        };
        s.stats.trades += 1;
        s.stats.high_water = s.high_water;
        s.stats.last_trade_ts = Some(s.stats.last_trade_ts.map_or(t.exchange_ts, |p| p.max(t.exchange_ts)));
        let bar = Self::add_to_minute(s, &t, config.minute_bars);
        if s.tape.len() == config.tape_len {
            s.tape.pop_front();
            s.tape_dropped = true;
        }
        s.tape.push_back(t);
        Processed { outcome, bar: Some(bar) }
    }

    fn add_to_minute(s: &mut Series, t: &Trade, keep: usize) -> Bar {
        // Most trades land in the current minute: no calendar arithmetic for them.
        if let Some(b) = s.minutes.back_mut() {
            let offset = t.exchange_ts - b.open_time;
            if offset >= chrono::Duration::zero() && offset < chrono::Duration::minutes(1) {
                b.add(t.price, t.quantity);
                return *b;
            }
        }
        let start = minute_start(t.exchange_ts);
        match s.minutes.back_mut() {
            Some(b) if b.open_time == start => {
                b.add(t.price, t.quantity);
                *b
            }
            Some(b) if b.open_time < start => {
                let bar = Bar::new(start, t.price, t.quantity);
                s.minutes.push_back(bar);
                if s.minutes.len() > keep {
                    s.minutes.pop_front();
                }
                bar
            }
            None => {
                let bar = Bar::new(start, t.price, t.quantity);
                s.minutes.push_back(bar);
                bar
            }
            Some(_) => {
                // A late trade for an earlier minute: find (or make) its bar, keeping time order. Close stays the
                // close of the last trade seen in time order only when this trade is not earlier than it; we do not
                // know intra-minute order of late packets, so the close is left as it was.
                match s.minutes.binary_search_by_key(&start, |b| b.open_time) {
                    Ok(i) => {
                        let b = &mut s.minutes[i];
                        let close = b.close;
                        b.add(t.price, t.quantity);
                        b.close = close;
                        *b
                    }
                    Err(i) => {
                        let bar = Bar::new(start, t.price, t.quantity);
                        s.minutes.insert(i, bar);
                        if s.minutes.len() > keep {
                            s.minutes.pop_front();
                        }
                        bar
                    }
                }
            }
        }
    }

    fn on_correction(s: &mut Series, t: Trade) -> Processed {
        let Some(pos) = s.tape.iter().rposition(|x| x.trade_id == t.trade_id) else {
            // The trade is older than the tape: nothing in memory to correct exactly.
            s.stats.invalid += 1;
            return Processed {
                outcome: Outcome::Invalid(format!("correction of unknown trade {}", t.trade_id)),
                bar: None,
            };
        };
        let old = s.tape[pos].clone();
        let outcome = if t.kind == TradeKind::Cancel {
            s.tape.remove(pos);
            Outcome::Canceled
        } else {
            let x = &mut s.tape[pos];
            x.price = t.price;
            x.quantity = t.quantity;
            Outcome::Edited
        };
        s.stats.corrections += 1;
        let start = minute_start(old.exchange_ts);
        let Ok(i) = s.minutes.binary_search_by_key(&start, |b| b.open_time) else {
            return Processed { outcome, bar: None };
        };
        // The tape holds the whole minute if it never dropped a trade, or its oldest trade predates the minute.
        let whole_minute = !s.tape_dropped || s.tape.front().is_some_and(|f| f.exchange_ts < start);
        let rebuilt = if whole_minute {
            let end = start + Duration::minutes(1);
            let mut bar: Option<Bar> = None;
            for x in s.tape.iter().filter(|x| x.exchange_ts >= start && x.exchange_ts < end) {
                match &mut bar {
                    Some(b) => b.add(x.price, x.quantity),
                    None => bar = Some(Bar::new(start, x.price, x.quantity)),
                }
            }
            bar
        } else {
            let mut b = s.minutes[i];
            b.volume -= old.quantity;
            b.trade_count = b.trade_count.saturating_sub(1);
            if t.kind == TradeKind::Edit {
                b.add(t.price, t.quantity);
                b.close = s.minutes[i].close;
            }
            Some(b)
        };
        match rebuilt {
            Some(b) => {
                s.minutes[i] = b;
                Processed { outcome, bar: Some(b) }
            }
            None => {
                s.minutes.remove(i);
                Processed { outcome, bar: None }
            }
        }
    }

    /// A full book: replaces whatever was there (and clears staleness).
    pub fn on_book(&mut self, book: BookSnapshot) {
        self.on_book_seq(book, 0);
    }

    /// A full book as of update `seq` of the symbol's update stream.
    pub fn on_book_seq(&mut self, book: BookSnapshot, seq: u64) {
        let symbol = book.symbol.clone();
        self.series.entry(symbol).or_default().book.get_or_insert_with(Default::default).replace(&book, seq);
    }

    /// An incremental update; returns false when it revealed a missed update (the book stays stale until the
    /// next snapshot).
    pub fn on_book_update(&mut self, u: &crate::types::BookUpdate) -> bool {
        let s = self.series.entry(u.symbol.clone()).or_default();
        let book = s.book.get_or_insert_with(Default::default);
        let ok = book.apply(u) == crate::book::Applied::Applied;
        if !ok {
            s.stats.book_gaps += 1;
        }
        ok
    }

    /// Newest first.
    pub fn last_trades(&self, symbol: &str, limit: usize) -> Vec<Trade> {
        self.series.get(symbol).map(|s| s.tape.iter().rev().take(limit).cloned().collect()).unwrap_or_default()
    }

    pub fn last_trade(&self, symbol: &str) -> Option<&Trade> {
        self.series.get(symbol).and_then(|s| s.tape.back())
    }

    pub fn book(&self, symbol: &str, depth: usize) -> Option<BookSnapshot> {
        self.series.get(symbol)?.book.as_ref().map(|b| b.snapshot(symbol, depth))
    }

    pub fn quote(&self, symbol: &str) -> Option<Quote> {
        let b = self.series.get(symbol)?.book.as_ref()?;
        Some(Quote { symbol: symbol.to_string(), bid: b.best_bid(), ask: b.best_ask(), ts: b.ts.unwrap_or_default() })
    }

    /// Whether the symbol's book missed an update and waits for a snapshot.
    pub fn book_is_stale(&self, symbol: &str) -> bool {
        self.series.get(symbol).and_then(|s| s.book.as_ref()).is_some_and(|b| b.stale)
    }

    /// Candles with `open_time` in `[from, to]`, oldest first, at most `limit` (the newest ones).
    pub fn candles(
        &self,
        symbol: &str,
        interval: Interval,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Vec<Candle> {
        let Some(s) = self.series.get(symbol) else { return Vec::new() };
        let mut out: Vec<Bar> = Vec::new();
        for m in &s.minutes {
            let start = bucket_start(m.open_time, interval);
            match out.last_mut() {
                Some(b) if b.open_time == start => b.merge(m),
                _ => out.push(Bar { open_time: start, ..*m }),
            }
        }
        let selected: Vec<Bar> = out
            .into_iter()
            .filter(|b| from.is_none_or(|f| b.open_time >= f) && to.is_none_or(|t| b.open_time <= t))
            .collect();
        let skip = selected.len().saturating_sub(limit);
        selected.into_iter().skip(skip).map(|b| b.to_candle(symbol, interval)).collect()
    }

    pub fn stats(&self, symbol: &str) -> Option<SymbolStats> {
        self.series.get(symbol).map(|s| SymbolStats { open_gaps: s.gaps.clone(), ..s.stats.clone() })
    }

    pub fn symbols(&self) -> impl Iterator<Item = &String> {
        self.series.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Aggressor;
    use chrono::NaiveDate;

    fn ts(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 11, 24, h, m, s).unwrap()
    }

    fn trade(id: u64, price: f64, qty: i64, at: DateTime<Utc>) -> Trade {
        Trade {
            symbol: "PETR4".into(),
            trade_id: id,
            price: Price::from_f64(price).unwrap(),
            quantity: Qty(qty),
            aggressor: Aggressor::Buy,
            buyer_agent: 1,
            seller_agent: 2,
            exchange_ts: at,
            receive_ts: at,
            kind: TradeKind::New,
        }
    }

    fn processor() -> TickProcessor {
        TickProcessor::new(
            Instruments::b3_defaults(NaiveDate::from_ymd_opt(2025, 11, 24).unwrap()),
            ProcessorConfig::default(),
        )
    }

    #[test]
    fn validation() {
        let mut p = processor();
        let ok = trade(1, 30.0, 100, ts(13, 0, 0));
        assert!(p.on_trade(ok.clone()).outcome.is_accepted());
        let cases = [
            Trade { symbol: "NOPE3".into(), ..ok.clone() },
            Trade { price: Price::from_f64(30.005).unwrap(), trade_id: 2, ..ok.clone() },
            Trade { price: Price(0), trade_id: 3, ..ok.clone() },
            Trade { quantity: Qty(0), trade_id: 4, ..ok.clone() },
            Trade { exchange_ts: ok.receive_ts + Duration::seconds(60), trade_id: 5, ..ok.clone() },
            Trade { exchange_ts: ok.receive_ts - Duration::days(3), trade_id: 6, ..ok.clone() },
        ];
        for c in cases {
            assert!(matches!(p.on_trade(c.clone()).outcome, Outcome::Invalid(_)), "{c:?}");
        }
        assert_eq!(p.stats("PETR4").unwrap().invalid, 5);
    }

    #[test]
    fn duplicates_gaps_and_backfill() {
        let mut p = processor();
        let t0 = ts(13, 0, 0);
        assert_eq!(p.on_trade(trade(1, 30.0, 100, t0)).outcome, Outcome::New { gap: None });
        assert_eq!(p.on_trade(trade(1, 30.0, 100, t0)).outcome, Outcome::Duplicate);
        let Outcome::New { gap: Some(g) } = p.on_trade(trade(5, 30.1, 100, t0)).outcome else { panic!("gap expected") };
        assert_eq!((g.from, g.to), (2, 4));
        assert_eq!(p.on_trade(trade(3, 30.0, 100, t0)).outcome, Outcome::Backfilled);
        assert_eq!(p.on_trade(trade(3, 30.0, 100, t0)).outcome, Outcome::Duplicate);
        let st = p.stats("PETR4").unwrap();
        assert_eq!(st.open_gaps.iter().map(|g| (g.from, g.to)).collect::<Vec<_>>(), vec![(2, 2), (4, 4)]);
        assert_eq!((st.gaps_detected, st.missing_ids, st.backfilled, st.duplicates), (1, 2, 1, 2));
        assert_eq!(p.on_trade(trade(2, 30.0, 100, t0)).outcome, Outcome::Backfilled);
        assert_eq!(p.on_trade(trade(4, 30.0, 100, t0)).outcome, Outcome::Backfilled);
        assert!(p.stats("PETR4").unwrap().open_gaps.is_empty());
        assert_eq!(p.stats("PETR4").unwrap().missing_ids, 0);
    }

    #[test]
    fn a_new_session_restarts_the_sequence() {
        let mut p = processor();
        p.on_trade(trade(500, 30.0, 100, ts(13, 0, 0)));
        let next_day = ts(13, 0, 0) + Duration::days(1);
        let t = Trade { receive_ts: next_day, ..trade(1, 30.0, 100, next_day) };
        assert_eq!(p.on_trade(t).outcome, Outcome::New { gap: None });
    }

    #[test]
    fn candles_from_trades() {
        let mut p = processor();
        p.on_trade(trade(1, 30.00, 100, ts(13, 0, 5)));
        p.on_trade(trade(2, 30.50, 200, ts(13, 0, 30)));
        p.on_trade(trade(3, 29.90, 100, ts(13, 0, 59)));
        p.on_trade(trade(4, 30.10, 300, ts(13, 1, 0)));
        p.on_trade(trade(5, 30.20, 100, ts(13, 7, 0)));
        let m1 = p.candles("PETR4", Interval::M1, None, None, 100);
        assert_eq!(m1.len(), 3);
        let c = &m1[0];
        assert_eq!(
            (c.open, c.high, c.low, c.close, c.volume, c.trade_count),
            (Price(300_000), Price(305_000), Price(299_000), Price(299_000), Qty(400), 3)
        );
        let m5 = p.candles("PETR4", Interval::M5, None, None, 100);
        assert_eq!(m5.len(), 2);
        assert_eq!(
            (m5[0].open, m5[0].close, m5[0].volume, m5[0].trade_count),
            (Price(300_000), Price(301_000), Qty(700), 4)
        );
        assert_eq!(m5[1].open_time, ts(13, 5, 0));
        let d1 = p.candles("PETR4", Interval::D1, None, None, 100);
        assert_eq!(d1.len(), 1);
        // 13:00 UTC on the 24th is the 24th in São Paulo; the day starts at 03:00 UTC.
        assert_eq!(d1[0].open_time, ts(3, 0, 0));
        assert_eq!((d1[0].high, d1[0].low, d1[0].volume), (Price(305_000), Price(299_000), Qty(800)));
        let from = p.candles("PETR4", Interval::M1, Some(ts(13, 1, 0)), Some(ts(13, 1, 0)), 100);
        assert_eq!(from.len(), 1);
        assert_eq!(p.candles("PETR4", Interval::M1, None, None, 1)[0].open_time, ts(13, 7, 0));
    }

    #[test]
    fn corrections_rebuild_the_minute() {
        let mut p = processor();
        p.on_trade(trade(1, 30.00, 100, ts(13, 0, 5)));
        p.on_trade(trade(2, 31.00, 200, ts(13, 0, 30)));
        p.on_trade(trade(3, 30.20, 100, ts(13, 0, 50)));
        let cancel = Trade { kind: TradeKind::Cancel, ..trade(2, 31.00, 200, ts(13, 0, 30)) };
        assert_eq!(p.on_trade(cancel).outcome, Outcome::Canceled);
        let c = &p.candles("PETR4", Interval::M1, None, None, 10)[0];
        assert_eq!((c.high, c.volume, c.trade_count), (Price(302_000), Qty(200), 2), "the canceled high is gone");
        let edit = Trade { kind: TradeKind::Edit, ..trade(3, 29.50, 300, ts(13, 0, 50)) };
        assert_eq!(p.on_trade(edit).outcome, Outcome::Edited);
        let c = &p.candles("PETR4", Interval::M1, None, None, 10)[0];
        assert_eq!((c.low, c.close, c.volume), (Price(295_000), Price(295_000), Qty(400)));
        assert_eq!(p.last_trades("PETR4", 10).len(), 2);
        let unknown = Trade { kind: TradeKind::Cancel, ..trade(99, 30.0, 100, ts(13, 0, 50)) };
        assert!(matches!(p.on_trade(unknown).outcome, Outcome::Invalid(_)));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::types::Aggressor;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    proptest! {
        /// Whatever order and repetition ids arrive in, each id is counted once, the volume of all bars equals
        /// the volume of the distinct trades, and open gaps cover exactly the ids never seen below the high-water mark.
        #[test]
        fn ids_are_counted_once(ids in proptest::collection::vec(1u64..60, 1..200)) {
            let mut p = TickProcessor::new(Instruments::b3_defaults(NaiveDate::from_ymd_opt(2025, 11, 24).unwrap()), ProcessorConfig::default());
            let base = Utc.with_ymd_and_hms(2025, 11, 24, 13, 0, 0).unwrap();
            let mut seen = std::collections::BTreeSet::new();
            let (mut hw, mut first) = (0u64, 0u64);
            for id in &ids {
                let t = Trade {
                    symbol: "PETR4".into(), trade_id: *id, price: Price(300_000), quantity: Qty(100), aggressor: Aggressor::Sell,
                    buyer_agent: 1, seller_agent: 2, exchange_ts: base + Duration::seconds(*id as i64), receive_ts: base + Duration::seconds(100),
                    kind: TradeKind::New,
                };
                let out = p.on_trade(t).outcome;
                // Ids below the first one seen are not gaps (the session's start was never seen): duplicates.
                let expected = *id > hw || (*id > first && !seen.contains(id));
                if expected {
                    prop_assert!(out.is_accepted(), "{}: {:?}", id, out);
                    seen.insert(*id);
                    if first == 0 { first = *id; }
                    hw = hw.max(*id);
                } else {
                    prop_assert_eq!(out, Outcome::Duplicate);
                }
            }
            let st = p.stats("PETR4").unwrap();
            prop_assert_eq!(st.trades, seen.len() as u64);
            let volume: Qty = p.candles("PETR4", Interval::M1, None, None, 10_000).iter().map(|c| c.volume).sum();
            prop_assert_eq!(volume, Qty(100 * seen.len() as i64));
            let missing: Vec<u64> = (first..=hw).filter(|i| !seen.contains(i)).collect();
            let in_gaps: Vec<u64> = st.open_gaps.iter().flat_map(|g| g.from..=g.to).collect();
            prop_assert_eq!(in_gaps, missing);
        }
    }
}
