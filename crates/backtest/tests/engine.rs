//! The engine end to end on small hand-made data: fill model, latency, no look-ahead, determinism, the store.

use backtest::event::{Body, BookLevels, Event};
use backtest::source::{store, Feed, VecSource};
use backtest::{run_strategy, Control, Latency, RunSpec, SymbolTable};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::order::{Fill, Order, OrderRequest, OrderStatus, OrderType, Side};
use domain::{Price, Qty, Symbol};
use market_data::{Aggressor, Level};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use strategy::api::{Context, QuoteTick, Strategy, TradeTick};

const PETR: Symbol = Symbol::lit("PETR4");

/// 2025-03-10 14:00 UTC (11:00 in São Paulo, the session open) plus `ms` milliseconds, in ns.
fn at(ms: i64) -> i64 {
    Utc.with_ymd_and_hms(2025, 3, 10, 14, 0, 0).unwrap().timestamp_nanos_opt().unwrap() + ms * 1_000_000
}

fn quote(ms: i64, bid: i64, ask: i64) -> Event {
    let l = |p| Level { price: Price(p), quantity: Qty(1000) };
    Event { ts: at(ms), sym: 0, body: Body::Quote { bid: l(bid), ask: l(ask) } }
}

fn trade(ms: i64, price: i64, qty: i64) -> Event {
    Event {
        ts: at(ms),
        sym: 0,
        body: Body::Trade { price: Price(price), quantity: Qty(qty), aggressor: Aggressor::Sell },
    }
}

fn feed(events: Vec<Event>) -> Feed {
    let mut f = Feed::new();
    let n = events.len() as u64;
    f.add(NaiveDate::from_ymd_opt(2025, 3, 10).unwrap(), Box::new(VecSource::new(events)), n);
    f
}

#[derive(Default)]
struct Seen {
    fills: Vec<(DateTime<Utc>, Side, Qty, Price)>,
    statuses: Vec<OrderStatus>,
    events: Vec<(i64, DateTime<Utc>)>,
    refused: Vec<String>,
    timers: Vec<(u64, DateTime<Utc>)>,
}

type Script = Box<dyn FnMut(&mut dyn Context, usize) + Send>;

/// A strategy driven by a script: `script(ctx, n)` runs on the n-th market event; it records what it is told.
struct Probe {
    symbols: Vec<Symbol>,
    n: usize,
    script: Script,
    seen: Arc<Mutex<Seen>>,
}

impl Probe {
    fn new(script: impl FnMut(&mut dyn Context, usize) + Send + 'static) -> (Box<Probe>, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        (Box::new(Probe { symbols: vec![PETR], n: 0, script: Box::new(script), seen: seen.clone() }), seen)
    }

    fn event(&mut self, ctx: &mut dyn Context, ts: DateTime<Utc>) {
        self.seen.lock().unwrap().events.push((clock::to_nanos(ts), ctx.now()));
        (self.script)(ctx, self.n);
        self.n += 1;
    }
}

impl Strategy for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }
    fn on_quote(&mut self, ctx: &mut dyn Context, q: &QuoteTick) {
        self.event(ctx, q.ts);
    }
    fn on_trade(&mut self, ctx: &mut dyn Context, t: &TradeTick) {
        self.event(ctx, t.ts);
    }
    fn on_fill(&mut self, ctx: &mut dyn Context, o: &Order, f: &Fill) {
        self.seen.lock().unwrap().fills.push((ctx.now(), o.side, f.quantity, f.price));
    }
    fn on_order(&mut self, _: &mut dyn Context, o: &Order) {
        self.seen.lock().unwrap().statuses.push(o.status);
    }
    fn on_refused(&mut self, _: &mut dyn Context, r: &strategy::api::Refusal) {
        self.seen.lock().unwrap().refused.push(r.reason.clone());
    }
    fn on_timer(&mut self, ctx: &mut dyn Context, id: u64) {
        self.seen.lock().unwrap().timers.push((id, ctx.now()));
    }
}

fn order(side: Side, t: OrderType, qty: i64, price: Option<i64>) -> OrderRequest {
    OrderRequest::new(PETR, side, t, Qty(qty), price.map(Price))
}

fn run(spec: &RunSpec, s: Box<dyn Strategy>, events: Vec<Event>) -> backtest::Outcome {
    let stop = AtomicBool::new(false);
    let mut progress = |_: u64, _: u64| {};
    run_strategy(spec, s, &mut feed(events), Control { stop: &stop, progress: &mut progress }).unwrap()
}

fn spec() -> RunSpec {
    RunSpec::new("probe", vec![PETR])
}

#[test]
fn a_market_order_fills_at_the_quote_of_its_event_and_latency_delays_it_to_a_later_one() {
    let data = || vec![quote(0, 384_900, 385_000), quote(1, 385_900, 386_000), quote(10, 386_900, 387_000)];
    let (s, seen) = Probe::new(|ctx, n| {
        if n == 0 {
            ctx.submit(order(Side::Buy, OrderType::Market, 100, None)).unwrap();
        }
    });
    let out = run(&spec(), s, data());
    let fills = seen.lock().unwrap().fills.clone();
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].3, Price(385_000), "no latency: the ask of the event that decided");
    assert_eq!(clock::to_nanos(fills[0].0), at(0));
    assert_eq!(out.summary.fills, 1);

    // 5 ms to reach the exchange: the order meets the market of 1 ms (the last event before it arrives), and the
    // report comes back 2 ms later, stamped then.
    let mut sp = spec();
    sp.settings.latency = Latency { to_venue_us: 5_000, to_us_us: 2_000 };
    let (s, seen) = Probe::new(|ctx, n| {
        if n == 0 {
            ctx.submit(order(Side::Buy, OrderType::Market, 100, None)).unwrap();
        }
    });
    run(&sp, s, data());
    let fills = seen.lock().unwrap().fills.clone();
    assert_eq!(fills[0].3, Price(386_000));
    assert_eq!(clock::to_nanos(fills[0].0), at(7));
}

#[test]
fn market_orders_walk_the_replayed_book_and_partial_fills_add_up() {
    let book = BookLevels {
        bids: vec![Level { price: Price(384_900), quantity: Qty(300) }],
        asks: vec![
            Level { price: Price(385_000), quantity: Qty(200) },
            Level { price: Price(385_100), quantity: Qty(300) },
        ],
    };
    let events = vec![Event { ts: at(0), sym: 0, body: Body::Book(Box::new(book)) }, trade(1, 385_000, 100)];
    // The probe acts on trades and quotes: the trade after the book triggers it, and the book is still the market.
    let (s, seen) = Probe::new(|ctx, n| {
        if n == 0 {
            ctx.submit(order(Side::Buy, OrderType::Market, 400, None)).unwrap();
        }
    });
    let out = run(&spec(), s, events);
    let fills = seen.lock().unwrap().fills.clone();
    let pieces: Vec<(Qty, Price)> = fills.iter().map(|f| (f.2, f.3)).collect();
    assert_eq!(pieces, vec![(Qty(200), Price(385_000)), (Qty(200), Price(385_100))]);
    assert_eq!(seen.lock().unwrap().statuses.last(), Some(&OrderStatus::Filled));
    assert_eq!(out.ledger.position(0), Qty(400));
}

#[test]
fn a_resting_limit_fills_when_the_tape_trades_through_it_up_to_the_printed_size() {
    let events = vec![
        quote(0, 384_900, 385_000),
        trade(1, 384_500, 100), // at our price: nothing (the queue ahead of us)
        trade(2, 384_400, 150), // through it: 150 of 300
        trade(3, 384_300, 500), // the rest
    ];
    let (s, seen) = Probe::new(|ctx, n| {
        if n == 0 {
            ctx.submit(order(Side::Buy, OrderType::Limit, 300, Some(384_500))).unwrap();
        }
    });
    run(&spec(), s, events);
    let seen = seen.lock().unwrap();
    let pieces: Vec<(i64, Qty, Price)> = seen.fills.iter().map(|f| (clock::to_nanos(f.0), f.2, f.3)).collect();
    assert_eq!(pieces, vec![(at(2), Qty(150), Price(384_500)), (at(3), Qty(150), Price(384_500))]);
    assert!(seen.statuses.contains(&OrderStatus::PartiallyFilled));
}

#[test]
fn the_strategy_never_sees_an_event_stamped_after_its_clock() {
    // Each event is seen with the clock at exactly its time; a timer fires at its time, between the events around
    // it; an order's fill uses the market as of its decision, never the next (higher) quote.
    let mut events = Vec::new();
    for i in 0..200 {
        events.push(quote(i * 10, 384_900 + i * 100, 385_000 + i * 100));
    }
    let (s, seen) = Probe::new(|ctx, n| {
        if n == 3 {
            let now = ctx.now();
            ctx.set_timer(now + chrono::Duration::milliseconds(25), 7);
        }
        if n % 50 == 10 {
            let side = if n % 100 == 10 { Side::Buy } else { Side::Sell };
            ctx.submit(order(side, OrderType::Market, 100, None)).unwrap();
        }
    });
    run(&spec(), s, events);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.events.len(), 200);
    for (ts, now) in &seen.events {
        assert_eq!(*ts, clock::to_nanos(*now), "an event is delivered at its own time");
    }
    assert_eq!(seen.timers, vec![(7, clock::from_nanos(at(55)))]);
    for (when, side, _, price) in &seen.fills {
        let i = (clock::to_nanos(*when) - at(0)) / 10_000_000;
        let expected = if *side == Side::Buy { 385_000 + i * 100 } else { 384_900 + i * 100 };
        assert_eq!(*price, Price(expected), "filled at the quote of its own event");
    }
    assert_eq!(seen.fills.len(), 4);
}

#[test]
fn refusals_reach_the_strategy_and_the_summary() {
    let (s, seen) = Probe::new(|ctx, n| {
        if n == 0 {
            // Not a multiple of the lot.
            assert!(ctx.submit(order(Side::Buy, OrderType::Market, 150, None)).is_err());
        }
    });
    let out = run(&spec(), s, vec![quote(0, 384_900, 385_000), quote(1, 384_900, 385_000)]);
    assert_eq!(seen.lock().unwrap().refused.len(), 1);
    assert_eq!((out.summary.orders, out.summary.refused), (1, 1));
}

#[test]
fn the_same_inputs_give_the_same_summary_bytes_and_files() {
    let mut events = Vec::new();
    let mut p = 385_000i64;
    let mut x = 12345u64;
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p += if x.is_multiple_of(2) { 100 } else { -100 };
        events.push(quote(i * 100, p - 100, p));
    }
    let mut sp = RunSpec::new("sma_cross", vec![PETR]);
    for (k, v) in [("fast", 5), ("slow", 40), ("hold_ticks", 50)] {
        sp.params.insert(k.into(), v.into());
    }
    let stop = AtomicBool::new(false);
    let mut progress = |_: u64, _: u64| {};
    let a = backtest::run(&sp, &mut feed(events.clone()), Control { stop: &stop, progress: &mut progress }).unwrap();
    let b = backtest::run_events(&sp, &events, Control { stop: &stop, progress: &mut progress }).unwrap();
    assert!(a.summary.orders > 10, "{}", a.summary.orders);
    assert_eq!(a.summary.to_json(), b.summary.to_json());
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    backtest::report::write(da.path(), &a).unwrap();
    backtest::report::write(db.path(), &b).unwrap();
    for f in ["summary.json", "report.html", "equity.png", "fills.csv", "orders.csv", "trades.csv", "fills.parquet"] {
        assert_eq!(std::fs::read(da.path().join(f)).unwrap(), std::fs::read(db.path().join(f)).unwrap(), "{f}");
    }
    let html = std::fs::read_to_string(da.path().join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script") && !html.contains("http"), "self-contained");
}

#[test]
fn the_store_streams_quotes_and_trades_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = market_store::ParquetStore::new(dir.path());
    let t0 = Utc.with_ymd_and_hms(2025, 3, 10, 14, 0, 0).unwrap();
    let ms = |n: i64| t0 + chrono::Duration::milliseconds(n);
    let trades: Vec<market_data::Trade> = (0..5)
        .map(|i| market_data::Trade {
            symbol: "PETR4".into(),
            trade_id: i as u64 + 1,
            price: Price(385_000 + i * 100),
            quantity: Qty(100),
            aggressor: Aggressor::Buy,
            buyer_agent: 1,
            seller_agent: 2,
            exchange_ts: ms(i * 10 + 5),
            receive_ts: ms(i * 10 + 5),
            kind: market_data::TradeKind::New,
        })
        .collect();
    st.write_trades(&trades).unwrap();
    let quotes: Vec<market_data::Quote> = (0..5)
        .map(|i| market_data::Quote {
            symbol: "PETR4".into(),
            bid: Some(Level { price: Price(384_900), quantity: Qty(100) }),
            ask: Some(Level { price: Price(385_000), quantity: Qty(100) }),
            ts: ms(i * 10),
        })
        .collect();
    st.write_quotes(&quotes).unwrap();
    // Another symbol, and a date outside the range, are left out.
    st.write_quotes(&[market_data::Quote { symbol: "VALE3".into(), ts: ms(1), ..quotes[0].clone() }]).unwrap();
    st.write_quotes(&[market_data::Quote { ts: ms(86_400_000), ..quotes[0].clone() }]).unwrap();
    let table = SymbolTable::new(&[PETR]).unwrap();
    let mut f = Feed::new();
    let d = NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    let s = store::add_store(&mut f, dir.path(), &table, backtest::DateRange { from: Some(d), to: Some(d) }).unwrap();
    assert_eq!((s.partitions, s.rows), (2, 10));
    let mut kinds = String::new();
    let mut last = i64::MIN;
    while let Some(e) = f.next_event().unwrap() {
        assert!(e.ts >= last);
        last = e.ts;
        kinds.push(if matches!(e.body, Body::Quote { .. }) { 'q' } else { 't' });
    }
    assert_eq!(kinds, "qtqtqtqtqt");

    // A partition whose parts are out of time order (a later part holding earlier rows) is read whole and sorted.
    let late = trades
        .iter()
        .map(|t| market_data::Trade {
            trade_id: t.trade_id + 100,
            exchange_ts: t.exchange_ts - chrono::Duration::milliseconds(3),
            ..t.clone()
        })
        .collect::<Vec<_>>();
    st.write_trades(&late).unwrap();
    let mut f = Feed::new();
    let s = store::add_store(&mut f, dir.path(), &table, backtest::DateRange { from: Some(d), to: Some(d) }).unwrap();
    assert_eq!((s.partitions, s.rows, s.unsorted_partitions), (2, 15, 1));
    let mut last = i64::MIN;
    let mut n = 0;
    while let Some(e) = f.next_event().unwrap() {
        assert!(e.ts >= last, "in time order");
        last = e.ts;
        n += 1;
    }
    assert_eq!(n, 15);
}

#[test]
fn tp_signals_enters_then_protects_and_one_exit_cancels_the_other() {
    let signal = strategy::api::SignalEvent::from_json(&serde_json::json!({
        "id": 7, "asset": "PETR4", "side": "BUY", "buy_min": 38.0, "buy_max": 38.2, "stop": 37.8,
        "targets": [38.6, 38.8], "ts": "2025-03-10T14:00:00.001Z", "raw_message": "ignored"
    }))
    .unwrap();
    let sig = |ms: i64| Event { ts: at(ms), sym: 0, body: Body::Signal(Box::new(signal.clone())) };
    let events = vec![
        quote(0, 384_000, 385_000),
        sig(1),
        sig(2),                 // an edit of the same signal: not traded twice
        trade(3, 381_000, 500), // through the 38.20 entry
        trade(4, 387_000, 500), // through the first target (38.60), not the second
        quote(5, 376_000, 377_000),
        trade(6, 377_000, 500), // at or below the 37.80 stop
    ];
    let mut sp = RunSpec::new("tp_signals", vec![PETR]);
    sp.params.insert("lots".into(), 2.into());
    let stop = AtomicBool::new(false);
    let mut progress = |_: u64, _: u64| {};
    let out = backtest::run(&sp, &mut feed(events), Control { stop: &stop, progress: &mut progress }).unwrap();
    let o = &out.orders;
    let kinds: Vec<(String, Side, i64, OrderStatus)> =
        o.iter().map(|x| (format!("{:?}", x.order_type), x.side, x.quantity.get(), x.status)).collect();
    assert_eq!(
        kinds,
        vec![
            ("Limit".into(), Side::Buy, 200, OrderStatus::Filled), // entry at 38.20
            ("Stop".into(), Side::Sell, 200, OrderStatus::Canceled), // replaced after the first target
            ("Limit".into(), Side::Sell, 100, OrderStatus::Filled), // target 1
            ("Limit".into(), Side::Sell, 100, OrderStatus::Canceled), // target 2, canceled by the stop
            ("Stop".into(), Side::Sell, 100, OrderStatus::Filled), // the stop for what was left
        ],
        "{o:#?}"
    );
    let fills: Vec<(Side, i64, i64)> =
        out.ledger.fills.iter().map(|f| (f.side, f.quantity.get(), f.price.units())).collect();
    assert_eq!(fills, vec![(Side::Buy, 200, 382_000), (Side::Sell, 100, 386_000), (Side::Sell, 100, 376_000)]);
    assert_eq!(out.ledger.position(0), Qty::ZERO);
}

#[test]
fn with_the_queue_estimate_a_resting_bid_fills_at_the_touch_once_the_queue_ahead_traded() {
    // We join the 38.49 bid behind 1000 displayed; prints at 38.49 eat that first.
    let events = vec![
        quote(0, 384_900, 385_000),
        trade(1, 384_900, 600), // 400 still ahead
        trade(2, 384_900, 500), // 400 eaten, 100 reach us
        trade(3, 384_900, 500), // the other 200
    ];
    let script = |ctx: &mut dyn Context, n: usize| {
        if n == 0 {
            ctx.submit(order(Side::Buy, OrderType::Limit, 300, Some(384_900))).unwrap();
        }
    };
    let mut sp = spec();
    sp.settings.queue_position = true;
    let (s, seen) = Probe::new(script);
    run(&sp, s, events.clone());
    let pieces: Vec<(i64, Qty)> = seen.lock().unwrap().fills.iter().map(|f| (clock::to_nanos(f.0), f.2)).collect();
    assert_eq!(pieces, vec![(at(2), Qty(100)), (at(3), Qty(200))]);

    // Without it, prints at our price never fill us.
    let (s, seen) = Probe::new(script);
    run(&spec(), s, events);
    assert!(seen.lock().unwrap().fills.is_empty());
}

#[test]
fn modify_changes_the_working_order_in_place() {
    let events = vec![quote(0, 384_900, 385_000), quote(1, 384_900, 385_000), trade(2, 384_000, 500)];
    let (s, seen) = Probe::new(|ctx, n| {
        if n == 0 {
            ctx.submit(order(Side::Buy, OrderType::Limit, 100, Some(380_000))).unwrap();
        }
        if n == 1 {
            let id = ctx.open_orders()[0].id;
            ctx.modify(id, Some(Qty(200)), Some(Price(384_500))).unwrap();
            assert!(ctx.modify(id, Some(Qty(150)), None).is_err(), "not a lot multiple: refused at once");
        }
    });
    let out = run(&spec(), s, events);
    assert_eq!(out.orders.len(), 1, "one order, modified in place");
    let o = &out.orders[0];
    assert_eq!((o.status, o.quantity, o.price), (OrderStatus::Filled, Qty(200), Some(Price(384_500))));
    assert_eq!(seen.lock().unwrap().fills[0].3, Price(384_500), "filled at the new price");
}

#[test]
fn replace_cancels_the_working_order_and_sends_the_new_one() {
    let events = vec![quote(0, 384_900, 385_000), quote(1, 384_900, 385_000), trade(2, 384_000, 500)];
    let (s, seen) = Probe::new(|ctx, n| {
        if n == 0 {
            ctx.submit(order(Side::Buy, OrderType::Limit, 100, Some(380_000))).unwrap();
        }
        if n == 1 {
            let old = ctx.open_orders()[0].id;
            let new = ctx.replace(old, order(Side::Buy, OrderType::Limit, 100, Some(384_500))).unwrap();
            assert_ne!(new, old);
        }
    });
    let out = run(&spec(), s, events);
    let statuses: Vec<OrderStatus> = out.orders.iter().map(|o| o.status).collect();
    assert_eq!(statuses, vec![OrderStatus::Canceled, OrderStatus::Filled]);
    assert_eq!(seen.lock().unwrap().fills[0].3, Price(384_500), "the replacement filled at its price");
}
