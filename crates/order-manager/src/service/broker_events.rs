//! What the broker reports (acknowledgements, fills, cancels, rejections) and the cancels the Order Manager sends
//! on its own (the kill switch's).

use super::{encode, Actor, Desk, Durability, OmsError, OrderManager};
use crate::record::{Entry, Record};
use domain::broker::BrokerEvent;
use domain::order::{OrderEvent, OrderId};

/// The `source` of the market orders the kill switch sends to flatten positions.
pub(super) const FLATTEN_SOURCE: &str = "kill-switch-flatten";

fn broker_record(ev: BrokerEvent, actor: &str) -> Record {
    Record {
        ts: ev.ts,
        actor: actor.to_string(),
        correlation_id: None,
        entry: Entry::OrderEvent { order_id: ev.order_id, event: ev.event },
    }
}

impl OrderManager {
    /// Books an event that happened here on the broker's behalf (it refused a submit or a cancel).
    pub(super) fn apply_broker_event(&self, order_id: OrderId, event: OrderEvent, actor: &str) {
        let rec = broker_record(BrokerEvent { order_id, event, ts: self.now() }, actor);
        match encode(&rec) {
            Ok(b) => self.on_broker_record_locked(&mut self.lock(), rec, &b),
            Err(e) => tracing::error!(error = %e, "could not encode a broker event"),
        }
    }

    /// Books what the broker reported, in order. Live, the task [`OrderManager::attach_broker`] starts calls this;
    /// a backtest calls it itself at each event's simulated time.
    pub fn on_broker_events(&self, events: impl Iterator<Item = BrokerEvent>) {
        // Broker events do not depend on our state, so they are encoded before taking the lock.
        let encoded: Vec<(Record, Result<Vec<u8>, OmsError>)> = events
            .map(|ev| {
                let rec = broker_record(ev, "broker");
                let bytes = encode(&rec);
                (rec, bytes)
            })
            .collect();
        let mut desk = self.lock();
        for (rec, bytes) in encoded {
            match bytes {
                Ok(b) => self.on_broker_record_locked(&mut desk, rec, &b),
                Err(e) => tracing::error!(error = %e, "could not encode a broker event"),
            }
        }
    }

    fn on_broker_record_locked(&self, desk: &mut Desk, rec: Record, bytes: &[u8]) {
        let Entry::OrderEvent { order_id, event } = &rec.entry else { return };
        let (order_id, kind) = (*order_id, event.name());
        let accepted = matches!(event, OrderEvent::Accepted { .. });
        let is_fill = matches!(event, OrderEvent::Filled(_));
        if let Err(e) = self.append_encoded(desk, rec, bytes, Durability::Now) {
            tracing::error!(order_id, error = %e, "could not journal a broker event");
            return;
        }
        metrics::counter!("ts_order_events_total", "event" => kind).increment(1);
        // An order the broker acknowledged while the kill switch is on gets canceled right away, except the
        // switch's own flattening orders.
        let st = &desk.state;
        let (flattening, blocked) = match st.order(order_id) {
            Some(o) => (o.source == FLATTEN_SOURCE, st.blocking(&o.account).is_some_and(|k| k.cancel_open_orders)),
            None => (false, false),
        };
        if accepted && blocked && !flattening {
            self.request_cancel_locked(desk, order_id, "kill-switch");
        }
        if is_fill {
            self.check_daily_loss_locked(desk);
        }
    }

    /// Sends a cancel the Order Manager decided on itself; a broker that refuses it is booked as a cancel reject.
    pub(super) fn request_cancel_locked(&self, desk: &mut Desk, id: OrderId, actor: &str) {
        if !Self::cancelable(desk, id) {
            return;
        }
        let event = Entry::OrderEvent { order_id: id, event: OrderEvent::CancelRequested };
        if self.append(desk, &Actor::new(actor), event).is_err() {
            return;
        }
        if let Some(b) = self.inner.broker.get() {
            if let Err(e) = b.cancel(id) {
                let event = OrderEvent::CancelRejected { reason: e.to_string() };
                let _ = self.append(desk, &Actor::new("broker"), Entry::OrderEvent { order_id: id, event });
            }
        }
    }
}
