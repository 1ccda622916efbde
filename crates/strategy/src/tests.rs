use crate::api::{Context, QuoteTick, Refusal, TradeTick};
use crate::kinds::{self, BuildError};
use crate::params::Params;
use chrono::{DateTime, Utc};
use domain::order::{Order, OrderId, OrderRequest, Side};
use domain::{Instrument, Instruments, Money, Price, Qty, Symbol};

/// A context that fills every order at once and remembers what was sent.
struct Book {
    instruments: Instruments,
    position: Qty,
    sent: Vec<OrderRequest>,
    now: DateTime<Utc>,
}

impl Context for Book {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
    fn instrument(&self, symbol: &Symbol) -> Option<&Instrument> {
        self.instruments.get(symbol)
    }
    fn position(&self, _: &Symbol) -> Qty {
        self.position
    }
    fn open_orders(&self) -> Vec<Order> {
        Vec::new()
    }
    fn pnl(&self) -> Option<Money> {
        None
    }
    fn submit(&mut self, req: OrderRequest) -> Result<OrderId, Refusal> {
        self.position += req.quantity.signed(req.side);
        self.sent.push(req);
        Ok(self.sent.len() as OrderId)
    }
    fn cancel(&mut self, _: OrderId) -> Result<(), Refusal> {
        Ok(())
    }
    fn modify(&mut self, _: OrderId, _: Option<Qty>, _: Option<Price>) -> Result<(), Refusal> {
        Err(Refusal { order_id: None, client_order_id: None, reason: "this test book does not modify".into() })
    }
    fn set_timer(&mut self, _: DateTime<Utc>, _: u64) {}
}

fn params(pairs: &[(&str, serde_json::Value)]) -> Params {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn quote(mid: i64, now: DateTime<Utc>) -> QuoteTick {
    let sym = Symbol::lit("PETR4");
    QuoteTick {
        symbol: sym,
        bid: Price(mid - 100),
        bid_size: Qty(100),
        ask: Price(mid + 100),
        ask_size: Qty(100),
        ts: now,
    }
}

#[test]
fn sma_cross_acts_on_crosses_flips_twice_the_size_and_respects_the_hold() {
    let now = DateTime::parse_from_rfc3339("2025-03-10T13:00:00Z").unwrap().with_timezone(&Utc);
    let pet = [Symbol::lit("PETR4")];
    let p = params(&[("fast", 1.into()), ("slow", 3.into()), ("lots", 2.into())]);
    let mut s = kinds::build("sma_cross", &pet, &p).unwrap();
    let mut ctx =
        Book { instruments: Instruments::b3_defaults(now.date_naive()), position: Qty::ZERO, sent: vec![], now };
    // Rising: the first side found is not a cross; then a fall crosses down, a rise crosses up.
    for mid in [100, 101, 102, 103, 104, 90, 89, 88, 120, 121] {
        s.on_quote(&mut ctx, &quote(mid * 10_000, now));
    }
    let sides: Vec<(Side, Qty)> = ctx.sent.iter().map(|r| (r.side, r.quantity)).collect();
    assert_eq!(sides, vec![(Side::Sell, Qty(200)), (Side::Buy, Qty(400))], "short 2 lots, then flip to long: 4 lots");
    assert_eq!(ctx.position, Qty(200));

    // With a hold of 5 ticks, the cross back up 3 ticks after the short is skipped.
    let p = params(&[("fast", 1.into()), ("slow", 3.into()), ("hold_ticks", 5.into())]);
    let mut s = kinds::build("sma_cross", &pet, &p).unwrap();
    let mut ctx =
        Book { instruments: Instruments::b3_defaults(now.date_naive()), position: Qty::ZERO, sent: vec![], now };
    for mid in [100, 101, 102, 103, 104, 90, 89, 88, 120, 121] {
        s.on_quote(&mut ctx, &quote(mid * 10_000, now));
    }
    assert_eq!(ctx.sent.len(), 1);

    // Under `auto`, trades move the averages until quotes appear; `trade` ignores quotes.
    let p = params(&[("fast", 1.into()), ("slow", 2.into()), ("price", "trade".into())]);
    let mut s = kinds::build("sma_cross", &pet, &p).unwrap();
    let mut ctx =
        Book { instruments: Instruments::b3_defaults(now.date_naive()), position: Qty::ZERO, sent: vec![], now };
    for mid in [100, 101, 102, 90] {
        s.on_quote(&mut ctx, &quote(mid * 10_000, now));
    }
    assert!(ctx.sent.is_empty());
    for px in [100, 101, 102, 90] {
        let t = TradeTick {
            symbol: pet[0],
            price: Price(px * 10_000),
            quantity: Qty(100),
            aggressor: market_data::Aggressor::Sell,
            ts: now,
        };
        s.on_trade(&mut ctx, &t);
    }
    assert_eq!(ctx.sent.len(), 1);
}

#[test]
fn the_registry_refuses_unknown_strategies_and_bad_parameters() {
    let pet = [Symbol::lit("PETR4")];
    let e = kinds::build("martingale", &pet, &Params::new()).err().unwrap();
    assert!(matches!(&e, BuildError::UnknownKind { known, .. } if known.contains("sma_cross")), "{e}");
    for (p, says) in [
        (params(&[("fast", 30.into()), ("slow", 10.into())]), "fast < slow"),
        (params(&[("fsat", 3.into())]), "unknown field `fsat`"),
        (params(&[("fast", "x".into())]), "invalid type"),
        (params(&[("price", "close".into())]), "price: mid, trade or auto"),
        (params(&[("lots", 0.into())]), "lots"),
    ] {
        let e = kinds::build("sma_cross", &pet, &p).err().unwrap().to_string();
        assert!(e.contains(says) && e.contains("sma_cross"), "{e}");
    }
    assert!(kinds::build("sma_cross", &[], &Params::new()).is_err(), "no symbols");
}

fn book_ctx(now: DateTime<Utc>) -> Book {
    Book { instruments: Instruments::b3_defaults(now.date_naive()), position: Qty::ZERO, sent: vec![], now }
}

#[test]
fn breakout_enters_beyond_the_channel_of_earlier_prices_and_exits_across_the_shorter_one() {
    let now = DateTime::parse_from_rfc3339("2025-03-10T13:00:00Z").unwrap().with_timezone(&Utc);
    let pet = [Symbol::lit("PETR4")];
    let p = params(&[("period", 4.into()), ("exit_period", 2.into())]);
    let mut s = kinds::build("breakout", &pet, &p).unwrap();
    let mut ctx = book_ctx(now);
    // 10 11 10 11 fill the channel (10..11); 12 breaks out up: long 1 lot. 12.5 stays. 11.8 is below the 2-low
    // of (12, 12.5) = 12: flat. 9 breaks below the 4-low (11.8): short.
    for mid in [100_000, 110_000, 100_000, 110_000, 120_000, 125_000, 118_000, 90_000] {
        s.on_quote(&mut ctx, &quote(mid, now));
    }
    let sides: Vec<(Side, Qty)> = ctx.sent.iter().map(|r| (r.side, r.quantity)).collect();
    assert_eq!(sides, vec![(Side::Buy, Qty(100)), (Side::Sell, Qty(100)), (Side::Sell, Qty(100))]);
    assert_eq!(ctx.position, Qty(-100));
    assert!(ctx.sent[0].justification.as_deref().unwrap().contains("above the 4-high"));

    for (k, v, says) in [("exit_period", 30, "exit_period"), ("period", 1, "period")] {
        let e = kinds::build("breakout", &pet, &params(&[(k, v.into())])).err().unwrap().to_string();
        assert!(e.contains(says), "{e}");
    }
    let e = kinds::build("breakout", &pet, &params(&[("interval", "7m".into())])).err().unwrap().to_string();
    assert!(e.contains("interval"), "{e}");
}

#[test]
fn book_imbalance_follows_the_heavier_side_and_goes_flat_when_balanced() {
    use crate::api::{BookView, Level};
    let now = DateTime::parse_from_rfc3339("2025-03-10T13:00:00Z").unwrap().with_timezone(&Utc);
    let pet = [Symbol::lit("PETR4")];
    let p = params(&[("levels", 2.into()), ("threshold", 0.5.into()), ("exit", 0.1.into())]);
    let mut s = kinds::build("book_imbalance", &pet, &p).unwrap();
    let mut ctx = book_ctx(now);
    let lv = |q: i64| Level { price: Price(385_000), quantity: Qty(q) };
    let mut show = |bids: [i64; 3], asks: [i64; 3], ctx: &mut Book| {
        let (b, a) = (bids.map(lv), asks.map(lv));
        s.on_book(ctx, &BookView { symbol: pet[0], bids: &b, asks: &a, ts: now });
    };
    // Level 3 is outside `levels`: (900+100) vs (100+100) = +0.67: long.
    show([900, 100, 0], [100, 100, 5000], &mut ctx);
    // +0.33: between exit and threshold, hold.
    show([300, 100, 0], [100, 100, 0], &mut ctx);
    // −0.8: short (a flip: twice the size).
    show([100, 0, 0], [500, 400, 0], &mut ctx);
    // 0: flat.
    show([100, 100, 0], [100, 100, 0], &mut ctx);
    let sides: Vec<(Side, Qty)> = ctx.sent.iter().map(|r| (r.side, r.quantity)).collect();
    assert_eq!(sides, vec![(Side::Buy, Qty(100)), (Side::Sell, Qty(200)), (Side::Buy, Qty(100))]);
    assert_eq!(crate::kinds::book_imbalance::imbalance(&[], &[], 3), None);
    let e = kinds::build("book_imbalance", &pet, &params(&[("exit", 0.7.into())])).err().unwrap().to_string();
    assert!(e.contains("exit < threshold"), "{e}");
}
