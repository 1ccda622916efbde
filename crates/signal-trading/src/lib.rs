//! Signals into orders. A signal (TP-Capital's, or a strategy/ML model's) becomes a *bracket*: an entry order, and
//! once the entry is done, a protective stop and take-profit limits for the filled quantity. The exits are kept
//! one-cancels-other by hand: a take-profit fill shrinks the stop (cancel, then replace with what is left), a stop
//! fill cancels the take-profits. Every order goes through `OrderManager::submit`, so every risk check applies;
//! each carries the signal in its `source` and `client_order_id` (`<key>-entry`, `<key>-stop-N`, `<key>-tpN`), which
//! links signal → orders → fills in the audit trail. Bracket state is stored as JSON, so a restart picks up where
//! it was.

use domain::order::{Order, OrderId, OrderRequest, OrderStatus, OrderType, PositionType, Side, TimeInForce};
use domain::{Instrument, Money, Price, Qty};
use order_manager::{Actor, OmsError, OmsUpdate, OrderManager, SubmitOutcome};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use storage::{Db, ModelDecision, SignalType};

/// A TP-Capital signal as the trader reads it (the fields of the stored signal).
#[derive(Debug, Clone)]
pub struct ChannelSignal<'a> {
    pub id: i64,
    pub channel_id: &'a str,
    pub signal_type: SignalType,
    pub asset: &'a str,
    pub side: Side,
    pub buy_min: Option<Price>,
    pub buy_max: Option<Price>,
    pub stop: Option<Price>,
    pub targets: &'a [Price],
}

/// A strategy's or model's signal (`POST /api/v1/signals`).
#[derive(Debug, Clone)]
pub struct ModelSignal<'a> {
    pub id: i64,
    pub model_version: &'a str,
    pub symbol: &'a str,
    /// `None` is HOLD.
    pub side: Option<Side>,
    pub confidence: f64,
    pub price_target: Option<Price>,
    pub stop_loss: Option<Price>,
}

/// What becomes of a model signal before any order: hold, below the threshold, or pending (to be traded).
pub fn model_decision(side: Option<Side>, confidence: f64, min_confidence: f64) -> ModelDecision {
    match side {
        None => ModelDecision::Hold,
        Some(_) if confidence < min_confidence => ModelDecision::BelowThreshold,
        Some(_) => ModelDecision::Pending,
    }
}

/// The decision recorded for a model signal once its bracket was opened: ordered, rejected (refused whole before
/// the entry) or not traded, with why.
pub fn traded_decision(b: &Bracket) -> ModelDecision {
    match (&b.phase, b.entry_order) {
        (Phase::Closed, None) => {
            let notes = b.notes.join("; ");
            match notes.strip_prefix("rejected: ") {
                Some(why) => ModelDecision::Rejected(why.to_string()),
                None => ModelDecision::NotTraded(notes),
            }
        }
        _ => ModelDecision::Ordered,
    }
}

/// What to do when a filled entry cannot be protected (its stop is refused): always alert; `Flatten` also closes
/// the position at market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unprotected {
    Flatten,
    Alert,
}

impl Unprotected {
    /// `flatten` or `alert` (`TS_SIGNAL_UNPROTECTED`).
    pub fn parse(s: &str) -> Result<Unprotected, String> {
        match s.trim() {
            "flatten" => Ok(Unprotected::Flatten),
            "alert" => Ok(Unprotected::Alert),
            other => Err(format!("{other:?}: use flatten or alert")),
        }
    }
}

/// How many shares or contracts a signal trades, always a whole number of lots (at least one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sizing {
    Lots(i64),
    /// As many lots as fit in this much money at the entry price.
    Notional(Money),
}

impl Sizing {
    /// `lots:2` or `notional:10000`.
    pub fn parse(s: &str) -> Result<Sizing, String> {
        let bad = || format!("sizing {s:?}: use lots:N or notional:BRL");
        let (kind, n) = s.split_once(':').ok_or_else(bad)?;
        let n: i64 = n.trim().parse().map_err(|_| bad())?;
        if n <= 0 {
            return Err(bad());
        }
        match kind.trim() {
            "lots" => Ok(Sizing::Lots(n)),
            "notional" => Ok(Sizing::Notional(Money::from_brl(n))),
            _ => Err(bad()),
        }
    }

    pub fn quantity(&self, ins: &Instrument, price: Option<Price>) -> Qty {
        let lot = ins.lot.max(Qty(1));
        let lots = match (self, price) {
            (Sizing::Lots(n), _) => *n,
            (Sizing::Notional(m), Some(p)) if p.units() > 0 => {
                // A lot worth more than the books can hold buys the minimum, one lot (risk then judges it).
                let per_lot = domain::price::notional(p, lot, ins.multiplier).map_or(i64::MAX, |v| v.0.max(1));
                m.0 / per_lot
            }
            (Sizing::Notional(_), _) => 1,
        };
        lots.max(1) * lot
    }
}

/// What a signal asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `tp-<signal id>` or `ml-<signal id>`: names the bracket and prefixes its orders' client ids.
    pub key: String,
    pub symbol: domain::Symbol,
    pub side: Side,
    pub quantity: Qty,
    /// Limit price of the entry; `None` enters at market.
    pub entry: Option<Price>,
    pub stop: Option<Price>,
    pub targets: Vec<Price>,
    /// Goes into every order's `source` (`tp-capital:<id>`, `ml:<model>:<id>`).
    pub source: String,
    /// Goes into every order's justification.
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for the entry order to finish.
    Entry,
    /// Exits working for the filled quantity.
    Exits,
    /// Everything left is being canceled.
    Closing,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bracket {
    pub plan: Plan,
    pub phase: Phase,
    pub entry_order: Option<OrderId>,
    /// What the entry filled: the quantity the exits protect.
    pub filled: Qty,
    /// Every stop order placed, the working one last.
    pub stop_orders: Vec<OrderId>,
    pub take_profits: Vec<OrderId>,
    /// Why it closed, or what went wrong on the way.
    pub notes: Vec<String>,
    /// The fill was left without its stop and that was handled (alerted, flattened per the setting): once.
    #[serde(default)]
    pub unprotected: bool,
}

impl Bracket {
    pub fn order_ids(&self) -> Vec<OrderId> {
        self.entry_order
            .into_iter()
            .chain(self.stop_orders.iter().copied())
            .chain(self.take_profits.iter().copied())
            .collect()
    }
}

pub struct Trader {
    oms: OrderManager,
    db: Db,
    actor: Actor,
    pub sizing: Sizing,
    unprotected_policy: Unprotected,
    brackets: Mutex<HashMap<String, Bracket>>,
    by_order: Mutex<HashMap<OrderId, String>>,
    /// One advance at a time per bracket (two concurrent ones could both replace the same stop); brackets do not
    /// wait for each other, so a new signal is never queued behind the sweep of the others.
    steps: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Notes a bracket keeps at most: a failure repeated every sweep is noted once, and a bracket that keeps failing
/// in new ways does not grow without end.
const MAX_NOTES: usize = 50;

/// Adds a note unless the bracket already has it.
fn note(b: &mut Bracket, text: String) {
    if b.notes.len() < MAX_NOTES && !b.notes.contains(&text) {
        b.notes.push(text);
    }
}

fn describe(e: &OmsError) -> String {
    match e {
        OmsError::Risk { rejection, .. } => format!("rejected by risk: {} ({})", rejection.code(), rejection.message),
        other => other.to_string(),
    }
}

impl Trader {
    /// `account` is the Order Manager account the signal orders are placed under.
    pub async fn new(
        oms: OrderManager,
        db: Db,
        account: &str,
        sizing: Sizing,
        unprotected_policy: Unprotected,
    ) -> Result<Arc<Trader>, storage::StoreError> {
        let t = Trader {
            oms,
            db,
            actor: Actor::new(account),
            sizing,
            unprotected_policy,
            brackets: Mutex::new(HashMap::new()),
            by_order: Mutex::new(HashMap::new()),
            steps: Mutex::new(HashMap::new()),
        };
        for state in t.db.open_brackets().await? {
            match serde_json::from_str::<Bracket>(&state) {
                Ok(b) => t.index(b),
                Err(e) => tracing::error!(error = %e, "unreadable bracket state skipped"),
            }
        }
        Ok(Arc::new(t))
    }

    pub fn oms(&self) -> &OrderManager {
        &self.oms
    }

    fn step_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.steps.lock().entry(key.to_string()).or_default().clone()
    }

    fn index(&self, b: Bracket) {
        let mut by_order = self.by_order.lock();
        for id in b.order_ids() {
            by_order.insert(id, b.plan.key.clone());
        }
        self.brackets.lock().insert(b.plan.key.clone(), b);
    }

    pub fn bracket(&self, key: &str) -> Option<Bracket> {
        self.brackets.lock().get(key).cloned()
    }

    /// A bracket from memory, or the stored state of a closed one.
    pub async fn bracket_state(&self, key: &str) -> Option<Bracket> {
        if let Some(b) = self.bracket(key) {
            return Some(b);
        }
        self.db.bracket(key).await.ok().flatten().and_then(|s| serde_json::from_str(&s).ok())
    }

    async fn save(&self, b: &Bracket) {
        let closed = b.phase == Phase::Closed;
        match serde_json::to_string(b) {
            Ok(s) => {
                if let Err(e) = self.db.save_bracket(&b.plan.key, closed, &s).await {
                    tracing::error!(key = %b.plan.key, error = %e, "could not store a bracket");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not encode a bracket"),
        }
        if closed {
            self.brackets.lock().remove(&b.plan.key);
            self.steps.lock().remove(&b.plan.key);
        }
    }

    /// One order of the bracket: `suffix` names it within the bracket (`entry`, `stop-2`, `tp1`).
    fn request(
        plan: &Plan,
        side: Side,
        kind: (OrderType, TimeInForce),
        qty: Qty,
        prices: (Option<Price>, Option<Price>),
        suffix: &str,
    ) -> OrderRequest {
        let (order_type, time_in_force) = kind;
        let (price, stop_price) = prices;
        OrderRequest {
            symbol: plan.symbol,
            side,
            order_type,
            quantity: qty,
            price,
            stop_price,
            time_in_force,
            client_order_id: Some(format!("{}-{suffix}", plan.key)),
            position_type: PositionType::Swing,
            justification: Some(plan.why.clone()),
            source: Some(plan.source.clone()),
        }
    }

    /// Submits; the order (rejected ones included, they exist in REJECTED) or why there is none.
    async fn submit(&self, req: OrderRequest) -> Result<Order, String> {
        match self.oms.submit(req, &self.actor).await {
            Ok(SubmitOutcome::Created(o) | SubmitOutcome::Existing(o)) => Ok(o),
            Err(OmsError::Risk { order, rejection }) => {
                Err(format!("order {} rejected by risk: {} ({})", order.id, rejection.code(), rejection.message))
            }
            Err(e) => Err(describe(&e)),
        }
    }

    /// Opens a bracket: submits the entry now; exits follow its fills.
    pub async fn open(&self, plan: Plan) -> Bracket {
        if let Some(b) = self.bracket_state(&plan.key).await {
            return b;
        }
        let (order_type, tif) = match plan.entry {
            Some(_) => (OrderType::Limit, TimeInForce::Day),
            None => (OrderType::Market, TimeInForce::Day),
        };
        let req = Self::request(&plan, plan.side, (order_type, tif), plan.quantity, (plan.entry, None), "entry");
        let mut b = Bracket {
            plan,
            phase: Phase::Entry,
            entry_order: None,
            filled: Qty::ZERO,
            stop_orders: Vec::new(),
            take_profits: Vec::new(),
            notes: Vec::new(),
            unprotected: false,
        };
        let step = self.step_lock(&b.plan.key);
        let _guard = step.lock().await;
        // The whole bracket is checked before the entry: a fill whose stop would be refused is never taken.
        if let Err(why) = self.check_protection(&b.plan) {
            note(&mut b, format!("rejected: {why}"));
            b.phase = Phase::Closed;
        } else {
            match self.submit(req).await {
                Ok(o) => b.entry_order = Some(o.id),
                Err(why) => {
                    note(&mut b, format!("entry: {why}"));
                    b.phase = Phase::Closed;
                }
            }
        }
        tracing::info!(key = %b.plan.key, entry = ?b.entry_order, phase = ?b.phase, "signal bracket opened");
        if b.phase != Phase::Closed {
            self.index(b.clone());
        }
        self.save(&b).await;
        drop(_guard);
        if b.phase != Phase::Closed {
            self.advance(&b.plan.key).await;
        }
        self.bracket_state(&b.plan.key).await.unwrap_or(b)
    }

    /// Follows the Order Manager's updates on a task of its own; see [`Trader::follow`].
    pub fn run(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.follow())
    }

    /// Follows the Order Manager's updates (and a one-second sweep for anything missed) until the update stream
    /// closes or the future is dropped. `serve` runs it under its job supervisor.
    pub fn follow(self: &Arc<Self>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let this = self.clone();
        let mut updates = self.oms.subscribe();
        async move {
            let mut sweep = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                let key = tokio::select! {
                    u = updates.recv() => match u {
                        Ok(OmsUpdate::Order(o)) => this.by_order.lock().get(&o.id).cloned(),
                        Ok(_) => None,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    _ = sweep.tick() => {
                        let keys: Vec<String> = this.brackets.lock().keys().cloned().collect();
                        for k in keys {
                            this.advance(&k).await;
                        }
                        None
                    }
                };
                if let Some(k) = key {
                    this.advance(&k).await;
                }
            }
        }
    }

    fn orders(&self, ids: &[OrderId]) -> Vec<Order> {
        ids.iter().filter_map(|id| self.oms.get(*id)).collect()
    }

    /// Moves a bracket as far as the orders' current states allow.
    pub async fn advance(&self, key: &str) {
        let step = self.step_lock(key);
        let _guard = step.lock().await;
        let Some(mut b) = self.bracket(key) else { return };
        let before = b.clone();
        self.step_bracket(&mut b).await;
        if b != before {
            tracing::info!(key, phase = ?b.phase, filled = b.filled.get(), "signal bracket moved");
            self.index(b.clone());
            self.save(&b).await;
        }
    }

    async fn step_bracket(&self, b: &mut Bracket) {
        let exit_side = b.plan.side.opposite();
        if b.phase == Phase::Entry {
            let Some(entry) = b.entry_order.and_then(|id| self.oms.get(id)) else { return };
            if !entry.status.is_terminal() {
                return;
            }
            b.filled = entry.filled_quantity;
            if b.filled.is_zero() {
                note(b, format!("entry ended {} without a fill", entry.status));
                b.phase = Phase::Closed;
                return;
            }
            b.phase = Phase::Exits;
            self.place_take_profits(b, exit_side).await;
        }
        if b.phase == Phase::Exits {
            let tps = self.orders(&b.take_profits);
            let stops = self.orders(&b.stop_orders);
            let out: Qty = tps.iter().chain(stops.iter()).map(|o| o.filled_quantity).sum();
            let remaining = b.filled - out;
            let working_stop = stops.last().filter(|o| !o.status.is_terminal());
            if !remaining.is_positive() {
                b.phase = Phase::Closing;
            } else if let Some(stop_price) = b.plan.stop {
                match working_stop {
                    Some(s) if s.leaves_quantity() != remaining && s.status != OrderStatus::PendingCancel => {
                        // A take-profit filled: the stop shrinks to what is left (cancel, then replace).
                        if let Err(e) = self.oms.cancel(s.id, &self.actor).await {
                            note(b, format!("stop {} not resized: {}", s.id, describe(&e)));
                        }
                    }
                    Some(_) => {}
                    None => {
                        let last_rejected = stops.last().is_some_and(|o| o.status == OrderStatus::Rejected);
                        if !last_rejected && !b.unprotected {
                            let n = b.stop_orders.len() + 1;
                            let kind = (OrderType::Stop, TimeInForce::Gtc);
                            let prices = (None, Some(stop_price));
                            let req = Self::request(&b.plan, exit_side, kind, remaining, prices, &format!("stop-{n}"));
                            match self.submit(req).await {
                                Ok(o) if o.status == OrderStatus::Rejected => {
                                    b.stop_orders.push(o.id);
                                    self.left_unprotected(b, remaining, "the stop was rejected").await;
                                }
                                Ok(o) => b.stop_orders.push(o.id),
                                Err(why) => {
                                    note(b, format!("stop: {why}"));
                                    self.left_unprotected(b, remaining, &why).await;
                                }
                            }
                        }
                    }
                }
            }
            // A stop that filled leaves nothing for the take-profits.
            if b.phase == Phase::Exits
                && stops.iter().any(|o| o.filled_quantity.is_positive() && o.status.is_terminal())
            {
                b.phase = Phase::Closing;
            }
        }
        if b.phase == Phase::Closing {
            let open: Vec<Order> = self
                .orders(&b.stop_orders)
                .into_iter()
                .chain(self.orders(&b.take_profits))
                .filter(|o| !o.status.is_terminal())
                .collect();
            for o in &open {
                if o.status != OrderStatus::PendingCancel {
                    if let Err(e) = self.oms.cancel(o.id, &self.actor).await {
                        note(b, format!("exit {} not canceled: {}", o.id, describe(&e)));
                    }
                }
            }
            if open.is_empty() {
                note(b, "closed: the position this signal opened is out".into());
                b.phase = Phase::Closed;
            }
        }
    }

    /// The bracket a TP-Capital signal trades: a limit entry at the far end of its range (the highest buy, the
    /// lowest sell), its stop, its targets once each, sized by [`Sizing`] at the entry price. `Err` says why it
    /// cannot be traded (no entry price, an instrument this desk does not trade).
    pub fn channel_plan(&self, s: &ChannelSignal) -> Result<Plan, String> {
        let entry = match s.side {
            Side::Buy => s.buy_max,
            Side::Sell => s.buy_min,
        }
        .ok_or("the signal has no entry price")?;
        let ins = self
            .oms
            .instruments()
            .get(s.asset)
            .ok_or_else(|| format!("{} is not an instrument traded here", s.asset))?;
        let mut targets: Vec<Price> = Vec::with_capacity(s.targets.len());
        for t in s.targets {
            if !targets.contains(t) {
                targets.push(*t);
            }
        }
        Ok(Plan {
            key: format!("tp-{}", s.id),
            symbol: ins.symbol,
            side: s.side,
            quantity: self.sizing.quantity(ins, Some(entry)),
            entry: Some(entry),
            stop: s.stop,
            targets,
            source: format!("tp-capital:{}", s.id),
            why: format!("TP-Capital signal {} ({} {}, channel {})", s.id, s.signal_type, s.asset, s.channel_id),
        })
    }

    /// The bracket a model signal trades: a market entry sized at the last trade, its stop and its target.
    pub fn model_plan(&self, m: &ModelSignal, side: Side) -> Result<Plan, String> {
        let ins = self
            .oms
            .instruments()
            .get(m.symbol)
            .ok_or_else(|| format!("{} is not an instrument traded here", m.symbol))?;
        let action = if side == Side::Buy { "BUY" } else { "SELL" };
        Ok(Plan {
            key: format!("ml-{}", m.id),
            symbol: ins.symbol,
            side,
            quantity: self.sizing.quantity(ins, self.oms.last_price(m.symbol)),
            entry: None,
            stop: m.stop_loss,
            targets: m.price_target.into_iter().collect(),
            source: format!("ml:{}:{}", m.model_version, m.id),
            why: format!("model {} signal {} ({action}, confidence {:.2})", m.model_version, m.id, m.confidence),
        })
    }

    /// Checks the exits against the entry and the market before anything is sent: a BUY's stop below and its
    /// targets above the entry (the last trade for a market entry), a SELL's the other way round, every price on
    /// the tick grid and inside the risk engine's price band.
    pub fn check_protection(&self, plan: &Plan) -> Result<(), String> {
        let ins = self.oms.instruments().get(&plan.symbol).ok_or_else(|| format!("unknown symbol {}", plan.symbol))?;
        let last = self.oms.last_price(&plan.symbol);
        let reference = plan.entry.or(last);
        let band = self.oms.limits().price_band_bps;
        let exits = plan.stop.map(|p| ("stop", p)).into_iter().chain(plan.targets.iter().map(|p| ("target", *p)));
        for (what, p) in exits {
            if !p.is_positive() || !p.is_on_grid(ins.tick_size) {
                return Err(format!(
                    "the {what} {p} is not a price on {}'s tick grid ({})",
                    plan.symbol, ins.tick_size
                ));
            }
            if let Some(r) = reference {
                let below = p < r;
                let must_be_below = (what == "stop") == (plan.side == Side::Buy);
                if p == r || below != must_be_below {
                    let side = if plan.side == Side::Buy { "BUY" } else { "SELL" };
                    let place = if must_be_below { "below" } else { "above" };
                    return Err(format!("a {side}'s {what} must be {place} the entry {r}; it is {p}"));
                }
            }
            if let Some(last) = last {
                let diff = (i128::from(p.units()) - i128::from(last.units())).abs();
                if diff * 10_000 > i128::from(last.units()) * i128::from(band) {
                    return Err(format!(
                        "the {what} {p} is outside the price band ({}% around the last trade {last})",
                        f64::from(band) / 100.0
                    ));
                }
            }
        }
        Ok(())
    }

    /// A filled entry lost its protection: alert (journal, metric, WebSocket) once, and close the position at
    /// market when the policy says so.
    async fn left_unprotected(&self, b: &mut Bracket, remaining: Qty, why: &str) {
        b.unprotected = true;
        let message = format!(
            "signal bracket {}: {remaining} {} filled and left without its stop ({why}){}",
            b.plan.key,
            b.plan.symbol,
            if self.unprotected_policy == Unprotected::Flatten { "; flattening at market" } else { "" }
        );
        if let Err(e) = self.oms.alert(b.entry_order, "unprotected_position", &message, &self.actor).await {
            tracing::error!(error = %e, %message, "could not journal the alert");
        }
        note(b, message);
        if self.unprotected_policy == Unprotected::Flatten {
            let kind = (OrderType::Market, TimeInForce::Day);
            let req = Self::request(&b.plan, b.plan.side.opposite(), kind, remaining, (None, None), "flatten");
            match self.submit(req).await {
                Ok(o) => b.stop_orders.push(o.id),
                Err(why) => note(b, format!("flatten: {why}")),
            }
        }
    }

    /// Splits the filled quantity over the targets, in lots, nearest target first.
    async fn place_take_profits(&self, b: &mut Bracket, side: Side) {
        let lot = self.oms.instruments().get(&b.plan.symbol).map_or(Qty(1), |i| i.lot.max(Qty(1)));
        let (lots, odd) = b.filled.in_lots(lot);
        let targets: Vec<Price> = b.plan.targets.iter().copied().take(lots.max(0) as usize).collect();
        if targets.is_empty() {
            return;
        }
        let n = targets.len() as i64;
        for (i, price) in targets.iter().enumerate() {
            let mut q = lots / n * lot;
            if i == 0 {
                // Lots that do not divide evenly go to the nearest target; any odd shares too.
                q += lots % n * lot + odd;
            }
            let kind = (OrderType::Limit, TimeInForce::Gtc);
            let req = Self::request(&b.plan, side, kind, q, (Some(*price), None), &format!("tp{}", i + 1));
            match self.submit(req).await {
                Ok(o) => b.take_profits.push(o.id),
                Err(why) => note(b, format!("take-profit {}: {why}", i + 1)),
            }
        }
    }
}

#[cfg(test)]
mod tests;
