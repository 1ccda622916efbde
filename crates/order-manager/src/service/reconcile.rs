//! Reconciliation: our open orders against the broker's working orders, at attach time.

use super::{Actor, Desk, OmsError, OrderManager};
use crate::record::Entry;
use domain::order::{OrderEvent, OrderId, OrderStatus};
use domain::Qty;
use std::collections::HashMap;

impl OrderManager {
    pub(super) fn reconcile_locked(&self, desk: &mut Desk) -> Result<(), OmsError> {
        let broker = self.broker()?.clone();
        let reconciler = Actor::new("reconciler");
        let theirs: HashMap<OrderId, _> = broker.working_orders().into_iter().map(|w| (w.order_id, w)).collect();
        let ours: Vec<(OrderId, Option<String>, Qty, OrderStatus)> =
            desk.state.open_orders().map(|o| (o.id, o.broker_order_id.clone(), o.filled_quantity, o.status)).collect();
        for (id, broker_id, filled, status) in &ours {
            // PENDING_NEW orders were handed to the broker as new submissions; their acknowledgement follows.
            if broker_id.is_none() || *status == OrderStatus::PendingNew {
                continue;
            }
            match theirs.get(id) {
                None => {
                    let finding = Entry::Reconciled {
                        order_id: Some(*id),
                        finding: "open here but unknown to the broker".into(),
                        action: "marked canceled".into(),
                    };
                    self.append(desk, &reconciler, finding)?;
                    let reason = "reconciliation: the broker has no such working order".into();
                    let canceled = Entry::OrderEvent { order_id: *id, event: OrderEvent::Canceled { reason } };
                    self.append(desk, &reconciler, canceled)?;
                }
                Some(w) if w.filled_quantity != *filled => {
                    let finding = Entry::Reconciled {
                        order_id: Some(*id),
                        finding: format!("broker reports {} filled, we have {filled}", w.filled_quantity),
                        action: "flagged for review".into(),
                    };
                    self.append(desk, &reconciler, finding)?;
                }
                Some(_) => {}
            }
        }
        for (id, w) in &theirs {
            let known_open = desk.state.order(*id).is_some_and(|o| o.status.is_open());
            if !known_open {
                let finding = Entry::Reconciled {
                    order_id: Some(*id),
                    finding: format!("broker works order {} that is not open here", w.broker_order_id),
                    action: "cancel sent to the broker".into(),
                };
                self.append(desk, &reconciler, finding)?;
                let _ = broker.cancel(*id);
            }
        }
        Ok(())
    }
}
