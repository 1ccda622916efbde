//! Strategies turn market data into orders. The same strategy code runs live, on paper and in a backtest: it sees
//! trades from the bus (whatever feed produced them) and its orders go through the same Order Manager and risk
//! engine as everyone else's.

pub mod api;
pub mod bars;
pub mod kinds;
pub mod live;
pub mod params;
#[cfg(test)]
mod tests;

use bus::{Bus, BusError, Event};
use data_capture::DataCapture;
use domain::order::OrderRequest;
use market_data::Trade;
use order_manager::{Actor, OmsError, OrderManager};
use tokio::task::JoinHandle;

/// The trade-only strategy the live runner drives today (`Responder`); strategies written against [`api::Strategy`]
/// run in backtests now and move to the live runner next.
pub trait Strategy: Send + 'static {
    fn name(&self) -> &str;

    /// Called for every trade on the runner's subjects; returns the orders to send (often none).
    fn on_trade(&mut self, trade: &Trade) -> Vec<OrderRequest>;
}

/// Feeds a strategy and submits its orders as `account`: from the bus (any process, any feed) or inline in Data
/// Capture (same process, lowest latency).
pub struct Runner;

impl Runner {
    /// Runs `strategy` on Data Capture's own thread for every live trade it accepts: the trade is validated, the
    /// strategy decides, risk checks and the journal append run, and the order reaches the broker before the feed
    /// reads its next event. Orders are answered durably in the background; risk refusals are the strategy's
    /// normal life and are only counted.
    pub fn inline<S: Strategy>(dc: &DataCapture, oms: OrderManager, account: &str, strategy: S) {
        let actor = Actor::new(account);
        let source = format!("strategy:{}", strategy.name());
        let strategy = parking_lot::Mutex::new(strategy);
        dc.add_trade_tap(std::sync::Arc::new(move |t: &Trade| {
            let orders = strategy.lock().on_trade(t);
            if orders.is_empty() {
                return;
            }
            for mut req in orders {
                req.source = Some(source.clone());
                let failed = match oms.route(req, &actor) {
                    Ok(routed) => {
                        routed.outcome().err().filter(|e| !matches!(e, OmsError::Risk { .. })).map(|e| e.to_string())
                    }
                    Err(e) => Some(e.to_string()),
                };
                if let Some(error) = failed {
                    tracing::warn!(%error, "strategy order failed");
                }
            }
            oms.flush_soon();
        }));
    }

    /// `subjects` are bus patterns such as `md.trades.PETR4`. Each order is submitted on its own task so the
    /// strategy keeps reading the tape while earlier orders wait for the journal.
    pub fn spawn<S: Strategy>(
        bus: &Bus,
        subjects: &[String],
        oms: OrderManager,
        account: &str,
        mut strategy: S,
    ) -> Result<JoinHandle<()>, BusError> {
        let mut sub = bus.subscribe_many(subjects, 65_536)?;
        let actor = Actor::new(account);
        Ok(tokio::spawn(async move {
            let source = format!("strategy:{}", strategy.name());
            while let Some(d) = sub.recv().await {
                let Event::Trade(t) = &*d.event else { continue };
                for mut req in strategy.on_trade(t) {
                    req.source = Some(source.clone());
                    let (oms, actor) = (oms.clone(), actor.clone());
                    tokio::spawn(async move {
                        match oms.submit(req, &actor).await {
                            Ok(_) | Err(OmsError::Risk { .. }) => {}
                            Err(e) => tracing::warn!(error = %e, "strategy order failed"),
                        }
                    });
                }
            }
        }))
    }
}

/// Answers every trade of its symbol with an IOC limit order `offset_bps` away from the trade, on the side
/// opposite the aggressor. Used to measure tick-to-order latency; it rarely trades.
pub struct Responder {
    pub symbol: domain::Symbol,
    pub offset_bps: i64,
    pub tick: domain::Price,
    pub lot: domain::Qty,
}

impl Strategy for Responder {
    fn name(&self) -> &str {
        "responder"
    }

    fn on_trade(&mut self, t: &Trade) -> Vec<OrderRequest> {
        use domain::order::{OrderType, PositionType, Side, TimeInForce};
        if self.symbol != t.symbol.as_str() || t.kind != market_data::TradeKind::New {
            return Vec::new();
        }
        let side = match t.aggressor {
            market_data::Aggressor::Buy => Side::Sell,
            _ => Side::Buy,
        };
        let away = t.price.units() * self.offset_bps / 10_000;
        let raw = match side {
            Side::Buy => t.price.units() - away,
            Side::Sell => t.price.units() + away,
        };
        let tick = self.tick.units().max(1);
        let price = domain::Price(raw / tick * tick);
        vec![OrderRequest {
            symbol: self.symbol,
            side,
            order_type: OrderType::Limit,
            quantity: self.lot,
            price: Some(price),
            stop_price: None,
            time_in_force: TimeInForce::Ioc,
            client_order_id: Some(format!("t{}", t.trade_id)),
            position_type: PositionType::Daytrade,
            justification: Some(format!("answer to trade {}", t.trade_id)),
            source: None,
        }]
    }
}
