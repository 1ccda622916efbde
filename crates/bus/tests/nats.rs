//! The NATS bus against a real server (`TS_TEST_NATS_URL`): two `Bus` values stand for two processes.

use bus::{Bus, BusError, Event};
use std::time::Duration;

/// Waits until every subscription `sub_side` made so far is registered with the server: a NATS server handles a
/// connection's commands in order, so once a subscription made after them receives a probe from `pub_side`, they
/// are all in place. Probes are re-sent until one arrives (the first may precede the registration).
async fn subscriptions_ready(sub_side: &Bus, pub_side: &Bus) {
    let subject = format!("{}.ready", unique());
    let mut ready = sub_side.subscribe(&subject, 1000).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        pub_side.publish(&subject, Event::Risk { data: serde_json::json!("probe") });
        if tokio::time::timeout(Duration::from_millis(20), ready.recv()).await.is_ok() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "subscriptions not registered in 10 s");
    }
}

async fn connect() -> Option<Bus> {
    let url = std::env::var("TS_TEST_NATS_URL").ok().filter(|u| !u.is_empty())?;
    Some(Bus::connect_nats(&url).await.expect("NATS reachable at TS_TEST_NATS_URL"))
}

fn unique() -> String {
    format!(
        "t{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    )
}

#[tokio::test]
async fn events_cross_processes_through_nats() {
    let (Some(a), Some(b)) = (connect().await, connect().await) else {
        eprintln!("skipped: TS_TEST_NATS_URL is not set");
        return;
    };
    assert!(a.is_up() && a.describe().starts_with("nats://"));
    let ns = unique();
    let mut sub = b.subscribe(&format!("{ns}.md.trades.*"), 100).unwrap();
    subscriptions_ready(&b, &a).await;
    for i in 0..10 {
        a.publish(&format!("{ns}.md.trades.PETR4"), Event::Risk { data: serde_json::json!({ "i": i }) });
    }
    a.publish(&format!("{ns}.md.book.PETR4"), Event::Risk { data: serde_json::json!({ "i": -1 }) });
    // One publisher's messages arrive in order: if the book message matched, it would come before this one.
    a.publish(&format!("{ns}.md.trades.END"), Event::Risk { data: serde_json::json!({ "i": "end" }) });
    for i in 0..10 {
        let d = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("in time").expect("open");
        assert_eq!(&*d.subject, format!("{ns}.md.trades.PETR4"));
        assert!(matches!(&*d.event, Event::Risk { data } if data["i"] == i), "in order");
        assert!(d.payload_json().is_some());
    }
    let next = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("in time").expect("open");
    assert_eq!(&*next.subject, format!("{ns}.md.trades.END"), "the book subject did not match");
    assert_eq!(sub.dropped(), 0);
}

#[tokio::test]
async fn request_reply_and_no_responders() {
    let (Some(a), Some(b)) = (connect().await, connect().await) else {
        eprintln!("skipped: TS_TEST_NATS_URL is not set");
        return;
    };
    let subject = format!("{}.svc.echo", unique());
    let mut rx = b.respond(&subject, 8).unwrap();
    tokio::spawn(async move {
        while let Some((v, reply)) = rx.recv().await {
            let _ = reply.send(serde_json::json!({ "echo": v }));
        }
    });
    subscriptions_ready(&b, &a).await;
    let r = a.request(&subject, serde_json::json!(7)).await.unwrap();
    assert_eq!(r["echo"], 7);
    let none = a.request(&format!("{}.svc.none", unique()), serde_json::json!(1)).await;
    assert!(matches!(none, Err(BusError::NoResponder(_))), "{none:?}");
}

#[tokio::test]
async fn a_slow_subscriber_drops_only_its_own_copies() {
    let Some(bus) = connect().await else {
        eprintln!("skipped: TS_TEST_NATS_URL is not set");
        return;
    };
    let ns = unique();
    let slow = bus.subscribe(&format!("{ns}.x"), 5).unwrap();
    let mut fast = bus.subscribe(&format!("{ns}.x"), 1000).unwrap();
    subscriptions_ready(&bus, &bus).await;
    for i in 0..50 {
        bus.publish(&format!("{ns}.x"), Event::Risk { data: serde_json::json!(i) });
    }
    for _ in 0..50 {
        tokio::time::timeout(Duration::from_secs(5), fast.recv()).await.expect("in time").expect("open");
    }
    // The slow subscriber's copies are counted as they arrive; wait for the count rather than for a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while slow.dropped() < 45 {
        assert!(std::time::Instant::now() < deadline, "dropped {} of 45 in 10 s", slow.dropped());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(slow.dropped(), 45);
}

#[tokio::test]
async fn a_wrong_url_is_an_error() {
    let r = Bus::connect_nats("nats://127.0.0.1:1").await;
    assert!(matches!(r, Err(BusError::Connect { .. })));
}
