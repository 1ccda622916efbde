//! `POST /api/v1/signals` and `GET /api/v1/signals`: strategy/ML signals. A BUY or SELL at or above the configured
//! confidence opens a bracket (market entry sized by the configured rule, a protective stop at `stop_loss`, a
//! take-profit at `price_target`), through the risk engine like any order; HOLD and low-confidence signals are
//! recorded and nothing is traded.

use crate::auth::{AsTrader, AsViewer, Authorized};
use crate::body::{exact, Exact, JsonBody};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::query::{Page, Q};
use crate::views::List;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::order::OrderId;
use domain::Price;
use serde::{Deserialize, Serialize};
use signal_trading::{Bracket, Phase};
use storage::{ModelDecision, ModelSignal, SignalAction};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalBody {
    symbol: String,
    /// BUY, SELL or HOLD.
    action: String,
    /// 0 to 1.
    confidence: f64,
    #[schema(value_type = Option<f64>)]
    price_target: Option<Exact<Price>>,
    #[schema(value_type = Option<f64>)]
    stop_loss: Option<Exact<Price>>,
    model_version: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BracketView {
    /// entry, exits, closing, closed.
    phase: String,
    entry_order: Option<OrderId>,
    filled: domain::Qty,
    stop_orders: Vec<OrderId>,
    take_profits: Vec<OrderId>,
    notes: Vec<String>,
}

impl From<Bracket> for BracketView {
    fn from(b: Bracket) -> Self {
        let phase = match b.phase {
            Phase::Entry => "entry",
            Phase::Exits => "exits",
            Phase::Closing => "closing",
            Phase::Closed => "closed",
        };
        BracketView {
            phase: phase.into(),
            entry_order: b.entry_order,
            filled: b.filled,
            stop_orders: b.stop_orders,
            take_profits: b.take_profits,
            notes: b.notes,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelSignalView {
    id: i64,
    symbol: String,
    action: SignalAction,
    confidence: f64,
    #[schema(value_type = Option<f64>)]
    price_target: Option<Price>,
    #[schema(value_type = Option<f64>)]
    stop_loss: Option<Price>,
    model_version: String,
    /// pending, hold, below_threshold, ordered, `rejected: why` or `not_traded: why`.
    #[schema(value_type = String)]
    decision: ModelDecision,
    created_by: String,
    created_at: DateTime<Utc>,
    /// The orders the signal opened, when it did.
    bracket: Option<BracketView>,
}

async fn view(st: &AppState, m: ModelSignal) -> ModelSignalView {
    let bracket = st.trader.bracket_state(&format!("ml-{}", m.id)).await.map(BracketView::from);
    ModelSignalView {
        id: m.id,
        symbol: m.symbol,
        action: m.action,
        confidence: m.confidence,
        price_target: m.price_target.map(Price::from_units),
        stop_loss: m.stop_loss.map(Price::from_units),
        model_version: m.model_version,
        decision: m.decision,
        created_by: m.created_by,
        created_at: m.created_at,
        bracket,
    }
}

#[utoipa::path(post, path = "/api/v1/signals", tag = "signals",
    summary = "A strategy/ML signal: BUY/SELL at or above the confidence threshold opens a bracket through risk",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), request_body = SignalBody,
    responses((status = 201, description = "Recorded; `decision` and `bracket` say what was traded", body = ModelSignalView),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    Authorized(p): AsTrader,
    JsonBody(b, _): JsonBody<SignalBody>,
) -> ApiResult<(StatusCode, Json<ModelSignalView>)> {
    let (price_target, stop_loss) = (exact(b.price_target), exact(b.stop_loss));
    let symbol = b.symbol.trim().to_ascii_uppercase();
    if st.oms.instruments().get(&symbol).is_none() {
        return Err(ApiError::invalid("symbol", format!("symbol: unknown symbol {symbol:?}")));
    }
    let action = SignalAction::parse(&b.action.trim().to_ascii_uppercase())
        .ok_or_else(|| ApiError::invalid("action", format!("action: one of {}", SignalAction::choices())))?;
    let side = action.side();
    if !(0.0..=1.0).contains(&b.confidence) || !b.confidence.is_finite() {
        return Err(ApiError::invalid("confidence", "confidence: a number from 0 to 1"));
    }
    let model_version = b.model_version.trim();
    if model_version.is_empty() || model_version.len() > 100 {
        return Err(ApiError::invalid("model_version", "model_version: 1 to 100 characters"));
    }
    for (field, v) in [("price_target", price_target), ("stop_loss", stop_loss)] {
        if v.is_some_and(|p| !p.is_positive()) {
            return Err(ApiError::invalid(field, format!("{field}: a positive price")));
        }
    }
    let decision = signal_trading::model_decision(side, b.confidence, st.min_signal_confidence);
    let mut m = ModelSignal {
        id: 0,
        symbol: symbol.clone(),
        action,
        confidence: b.confidence,
        price_target: price_target.map(|p| p.units()),
        stop_loss: stop_loss.map(|p| p.units()),
        model_version: model_version.to_string(),
        decision,
        created_by: p.name.clone(),
        created_at: Utc::now(),
    };
    m.id = st.db.insert_model_signal(&m).await?;
    if let (Some(side), true) = (side, m.decision.is_pending()) {
        let signal = signal_trading::ModelSignal {
            id: m.id,
            model_version: &m.model_version,
            symbol: &symbol,
            side: Some(side),
            confidence: b.confidence,
            price_target,
            stop_loss,
        };
        let plan = st.trader.model_plan(&signal, side).map_err(|e| ApiError::invalid("symbol", e))?;
        let bracket = st.trader.open(plan).await;
        m.decision = signal_trading::traded_decision(&bracket);
        st.db.set_model_signal_decision(m.id, &m.decision).await?;
    }
    tracing::info!(signal = m.id, %symbol, %action, confidence = b.confidence, decision = %m.decision, "model signal");
    Ok((StatusCode::CREATED, Json(view(&st, m).await)))
}

#[utoipa::path(get, path = "/api/v1/signals", tag = "signals", summary = "Strategy/ML signals, newest first, with the orders they opened",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(Page),
    responses((status = 200, body = List<ModelSignalView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(page): Q<Page>,
) -> ApiResult<Json<List<ModelSignalView>>> {
    let (limit, offset) = (page.limit.0, page.offset.0);
    let (rows, total) = st.db.list_model_signals(limit as i64, offset as i64).await?;
    let mut data = Vec::with_capacity(rows.len());
    for m in rows {
        data.push(view(&st, m).await);
    }
    Ok(Json(List { data, total: total as u64 }))
}
