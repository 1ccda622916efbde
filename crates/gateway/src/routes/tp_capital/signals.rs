//! Stored signals: list, one, delete into the archive, the CSV export.

use crate::auth::{AsTrader, AsViewer, Authorized};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::query::{one_of, text, Limit, Offset, Time, P, Q};
use crate::views::List;
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use storage::{SignalFilter, SignalType};
use tp_capital::SignalView;

/// The filters of the signal list and the CSV export; `MAX` is the largest `limit`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignalsQuery<const MAX: usize> {
    /// Telegram channel id.
    channel: Option<String>,
    /// Ticker.
    asset: Option<String>,
    /// Swing Trade, Day Trade, Scalping or Position (any case).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    signal_type: Option<String>,
    /// Text in the message.
    search: Option<String>,
    /// RFC 3339.
    #[param(value_type = Option<String>)]
    from: Option<Time>,
    /// RFC 3339.
    #[param(value_type = Option<String>)]
    to: Option<Time>,
    /// 1..MAX (1000 for the list, 100000 for the export), default 100.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit<100, MAX>,
    /// Default 0.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    offset: Offset,
}

impl<const MAX: usize> SignalsQuery<MAX> {
    fn filter(&self) -> Result<SignalFilter, ApiError> {
        Ok(SignalFilter {
            channel_id: text(&self.channel),
            asset: text(&self.asset),
            signal_type: one_of("type", &self.signal_type, SignalType::parse_loose, SignalType::choices)?,
            search: text(&self.search),
            from: self.from.map(|t| t.0),
            to: self.to.map(|t| t.0),
            limit: self.limit.0 as i64,
            offset: self.offset.0 as i64,
        })
    }
}

type ListQuery = SignalsQuery<1000>;
type ExportQuery = SignalsQuery<100_000>;

#[utoipa::path(get, path = "/api/v1/tp-capital/signals", tag = "tp-capital", summary = "Stored signals, newest first",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(ListQuery),
    responses((status = 200, body = List<SignalView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_signals(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<ListQuery>,
) -> ApiResult<Json<List<SignalView>>> {
    let f = q.filter()?;
    let (rows, total) = st.db.list_signals(&f).await?;
    Ok(Json(List { data: rows.into_iter().map(SignalView::from).collect(), total: total as u64 }))
}

#[utoipa::path(get, path = "/api/v1/tp-capital/signals/{id}", tag = "tp-capital", summary = "One signal",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(("id" = i64, Path, description = "Signal id")),
    responses((status = 200, body = SignalWithOrders), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_signal(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    P(id): P<i64>,
) -> ApiResult<Json<SignalWithOrders>> {
    let s = st.db.signal(id).await?.ok_or_else(|| ApiError::not_found(format!("signal {id} not found")))?;
    let bracket = st.trader.bracket_state(&format!("tp-{id}")).await.map(crate::routes::signals::BracketView::from);
    Ok(Json(SignalWithOrders { signal: s.into(), bracket }))
}

/// A signal and, when its channel auto-trades, the orders it opened.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignalWithOrders {
    #[serde(flatten)]
    signal: SignalView,
    /// The orders the signal opened when its channel auto-trades.
    bracket: Option<crate::routes::signals::BracketView>,
}

#[utoipa::path(delete, path = "/api/v1/tp-capital/signals/{id}", tag = "tp-capital", summary = "Delete a signal (moved to the deleted archive, kept 90 days)",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])),
    params(("id" = i64, Path, description = "Signal id")),
    responses((status = 200, description = "The deleted signal", body = SignalView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_signal(
    State(st): State<AppState>,
    Authorized(p): AsTrader,
    P(id): P<i64>,
) -> ApiResult<Json<SignalView>> {
    let s = st.db.delete_signal(id, &p.name).await?;
    tracing::info!(signal_id = id, by = %p.name, "signal deleted into the archive");
    Ok(Json(s.into()))
}

#[utoipa::path(get, path = "/api/v1/tp-capital/signals/export.csv", tag = "tp-capital",
    summary = "CSV export in the original layout (;-separated, pt-BR decimals, São Paulo time)",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(ExportQuery),
    responses((status = 200, description = "DATA;ATIVO;COMPRA_MIN;COMPRA_MAX;ALVO_1;ALVO_2;ALVO_FINAL;STOP", content_type = "text/csv"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn export_csv(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<ExportQuery>,
) -> ApiResult<Response> {
    let f = q.filter()?;
    let (rows, _) = st.db.list_signals(&f).await?;
    let body = tp_capital::csv::export(&rows);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"tp-capital-signals.csv\""),
        ],
        body,
    )
        .into_response())
}
