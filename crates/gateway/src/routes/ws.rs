//! `GET /ws`: live market data, Order Manager events and TP-Capital signals over a WebSocket. The `signals`
//! channel is not filtered by symbol: signals name any B3 asset, not only the instruments traded here.
//!
//! Client messages: `{"action":"subscribe"|"unsubscribe","channels":[...],"symbols":[...]}`. Server messages:
//! `{"type", "seq", "symbol"?, "data"}` with a sequence number per connection, or `{"type":"error","code","message"}`.
//!
//! Each connection reads from one bounded bus queue. The feed never waits for a client: if a client does not read
//! fast enough its queue overflows, it gets `SLOW_CONSUMER` and is disconnected, and nobody else notices. Book and
//! quote updates that are still queued when the client catches up are conflated to the latest per symbol.

use crate::auth::{AsViewer, Authorized, Principal};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::views::OrderView;
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bus::{Delivery, Event, Subscription};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Messages a connection may have queued before it counts as slow.
pub const QUEUE: usize = 4096;
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
const MARKET: [&str; 4] = ["trades", "quotes", "book", "candles"];
const OMS: [&str; 4] = ["orders", "fills", "positions", "risk"];

#[utoipa::path(get, path = "/ws", tag = "streaming", summary = "The WebSocket stream (trades, quotes, book, candles, orders, fills, positions, risk)", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("token" = Option<String>, Query, description = "Bearer token, for clients that cannot set headers")), responses((status = 101, description = "Switching to the WebSocket protocol: subscribe with {\"action\":\"subscribe\",\"channels\":[...],\"symbols\":[...]}"), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn upgrade(
    State(st): State<AppState>,
    Authorized(principal): AsViewer,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => ws.max_message_size(64 * 1024).on_upgrade(move |socket| connection(socket, st, principal)),
        Err(_) => ApiError::bad_request("expected a WebSocket upgrade request").into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    action: String,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    symbols: Vec<String>,
}

#[derive(Default)]
struct Interest {
    channels: BTreeSet<String>,
    symbols: BTreeSet<String>,
}

impl Interest {
    fn patterns(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.channels {
            if MARKET.contains(&c.as_str()) {
                if self.symbols.is_empty() {
                    out.push(format!("md.{c}.*"));
                } else {
                    out.extend(self.symbols.iter().map(|s| format!("md.{c}.{s}")));
                }
            } else if c == "signals" {
                out.push(bus::subjects::SIGNALS.to_string());
            } else {
                out.push(format!("oms.{c}"));
            }
        }
        out
    }
}

struct Conn {
    socket: WebSocket,
    seq: u64,
}

enum Sent {
    Ok,
    /// The socket did not take the message within [`SEND_TIMEOUT`]: the client is not reading.
    Stalled,
    Closed,
}

impl Conn {
    async fn send(&mut self, mut v: Value) -> Sent {
        self.seq += 1;
        v["seq"] = json!(self.seq);
        let text = v.to_string();
        self.send_text(text).await
    }

    async fn send_out(&mut self, out: &Outgoing) -> Sent {
        self.seq += 1;
        let text = out.to_text(self.seq);
        self.send_text(text).await
    }

    async fn send_text(&mut self, text: String) -> Sent {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Sent::Ok,
            Ok(Err(_)) => Sent::Closed,
            Err(_) => Sent::Stalled,
        }
    }

    async fn error(&mut self, code: &str, message: &str) -> Sent {
        self.send(json!({ "type": "error", "code": code, "message": message })).await
    }

    /// Tells the client why (if it still listens) and gives up on it.
    async fn drop_slow(&mut self, who: &str) {
        metrics::counter!("ts_ws_slow_consumers_total").increment(1);
        tracing::warn!(user = %who, "websocket client too slow; disconnecting");
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            self.error(
                "SLOW_CONSUMER",
                "you did not read fast enough; messages were dropped and the connection is closed",
            ),
        )
        .await;
    }
}

/// A message ready to send but for its sequence number: `{"type":..,"symbol":..,"data":` + payload.
struct Outgoing {
    kind: &'static str,
    symbol: Option<String>,
    data: Arc<str>,
}

impl Outgoing {
    fn to_text(&self, seq: u64) -> String {
        let symbol =
            self.symbol.as_ref().map(|s| format!(",\"symbol\":{}", Value::from(s.as_str()))).unwrap_or_default();
        format!("{{\"type\":\"{}\",\"seq\":{seq}{symbol},\"data\":{}}}", self.kind, self.data)
    }
}

/// What a delivery becomes for this client, and its conflation key (book and quotes only).
fn render(d: &Delivery, symbols: &BTreeSet<String>) -> Option<(Outgoing, Option<(&'static str, String)>)> {
    let wanted = |s: &str| symbols.is_empty() || symbols.contains(s);
    let (kind, symbol, conflate) = match &*d.event {
        Event::Trade(t) => ("trade", Some(t.symbol.clone()), false),
        Event::Candle(c) => ("candle", Some(c.symbol.clone()), false),
        Event::Book(b) => ("book", Some(b.symbol.clone()), true),
        Event::Quote(q) => ("quote", Some(q.symbol.clone()), true),
        Event::Order(o) => {
            if !wanted(&o.symbol) {
                return None;
            }
            // Orders go out in the same shape as the REST API (with the derived fields); they are rare enough to
            // render per client.
            let data = serde_json::to_string(&OrderView::from((**o).clone())).ok()?;
            return Some((Outgoing { kind: "order", symbol: Some(o.symbol.to_string()), data: Arc::from(data) }, None));
        }
        Event::Fill { symbol, .. } => {
            if !wanted(symbol) {
                return None;
            }
            ("fill", Some(symbol.to_string()), false)
        }
        Event::Position(p) => {
            if !wanted(&p.symbol) {
                return None;
            }
            let data = serde_json::to_string(&crate::views::PositionView::from(p.clone())).ok()?;
            return Some((
                Outgoing { kind: "position", symbol: Some(p.symbol.to_string()), data: Arc::from(data) },
                None,
            ));
        }
        Event::Risk { .. } => ("risk", None, false),
        // Signals name any B3 asset (options, warrants), not only the instruments a symbol filter may list, so
        // they are not filtered by symbol.
        Event::Signal { data } => ("signal", data["asset"].as_str().map(str::to_string), false),
    };
    let data = d.payload_json()?;
    let key = conflate.then(|| (kind, symbol.clone().unwrap_or_default()));
    Some((Outgoing { kind, symbol, data }, key))
}

async fn next(sub: &mut Option<Subscription>) -> Option<Delivery> {
    match sub {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

async fn connection(socket: WebSocket, st: AppState, who: Principal) {
    metrics::gauge!("ts_ws_clients").increment(1.0);
    tracing::debug!(user = %who.name, "websocket connected");
    let mut conn = Conn { socket, seq: 0 };
    let mut interest = Interest::default();
    let mut sub: Option<Subscription> = None;
    loop {
        tokio::select! {
            incoming = conn.socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                match handle(&st, &mut interest, text.as_str()) {
                    Ok(ack) => {
                        let patterns = interest.patterns();
                        sub = if patterns.is_empty() { None } else { st.bus.subscribe_many(&patterns, QUEUE).ok() };
                        if !matches!(conn.send(ack).await, Sent::Ok) {
                            break;
                        }
                    }
                    Err((code, message)) => {
                        if !matches!(conn.error(code, &message).await, Sent::Ok) {
                            break;
                        }
                    }
                }
            }
            first = next(&mut sub) => {
                let Some(first) = first else { break };
                // Drain what is already queued; later book/quote updates replace earlier ones of the same symbol.
                let mut batch: Vec<(Outgoing, Option<(&'static str, String)>)> = Vec::new();
                let mut pending = Some(first);
                while let Some(d) = pending.take().or_else(|| if batch.len() < 512 { sub.as_mut().and_then(|s| s.try_recv()) } else { None }) {
                    if let Some((msg, key)) = render(&d, &interest.symbols) {
                        match key.as_ref().and_then(|k| batch.iter().position(|(_, bk)| bk.as_ref() == Some(k))) {
                            Some(i) => batch[i].0 = msg,
                            None => batch.push((msg, key)),
                        }
                    }
                }
                if sub.as_ref().is_some_and(|s| s.dropped() > 0) {
                    conn.drop_slow(&who.name).await;
                    break;
                }
                let mut outcome = Sent::Ok;
                for (msg, _) in batch {
                    outcome = conn.send_out(&msg).await;
                    if !matches!(outcome, Sent::Ok) {
                        break;
                    }
                }
                match outcome {
                    Sent::Ok => {}
                    Sent::Stalled => {
                        conn.drop_slow(&who.name).await;
                        break;
                    }
                    Sent::Closed => break,
                }
            }
        }
    }
    metrics::gauge!("ts_ws_clients").decrement(1.0);
    tracing::debug!(user = %who.name, "websocket closed");
}

/// Applies a client message to the connection's interest; returns the acknowledgement or an error.
fn handle(st: &AppState, interest: &mut Interest, text: &str) -> Result<Value, (&'static str, String)> {
    let m: ClientMessage = serde_json::from_str(text).map_err(|e| ("BAD_REQUEST", format!("invalid message: {e}")))?;
    for c in &m.channels {
        if !MARKET.contains(&c.as_str()) && !OMS.contains(&c.as_str()) && c != "signals" {
            return Err(("BAD_REQUEST", format!("unknown channel {c:?}")));
        }
    }
    let instruments = st.market_data.instruments();
    let symbols: Vec<String> = m.symbols.iter().map(|s| s.trim().to_ascii_uppercase()).collect();
    if let Some(bad) = symbols.iter().find(|s| instruments.get(s).is_none()) {
        return Err(("BAD_REQUEST", format!("unknown symbol {bad:?}")));
    }
    match m.action.as_str() {
        "subscribe" => {
            interest.channels.extend(m.channels.iter().cloned());
            interest.symbols.extend(symbols);
        }
        "unsubscribe" => {
            for c in &m.channels {
                interest.channels.remove(c);
            }
            for s in &symbols {
                interest.symbols.remove(s);
            }
        }
        other => return Err(("BAD_REQUEST", format!("unknown action {other:?}: use subscribe or unsubscribe"))),
    }
    Ok(json!({ "type": "subscribed", "channels": interest.channels, "symbols": interest.symbols }))
}
