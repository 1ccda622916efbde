//! JSON views of domain objects: the domain types themselves plus the derived numbers clients need.

use domain::{Order, Position};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    #[serde(flatten)]
    pub order: Order,
    pub leaves_quantity: domain::Qty,
    pub avg_fill_price: Option<f64>,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        OrderView { leaves_quantity: order.leaves_quantity(), avg_fill_price: order.avg_fill_price(), order }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PositionView {
    #[serde(flatten)]
    pub position: Position,
    pub avg_price: Option<f64>,
    /// null only when the figure does not fit the books (never clipped to a wrong number).
    pub unrealized: Option<domain::Money>,
    pub daily_pnl: Option<domain::Money>,
    pub exposure: Option<domain::Money>,
}

impl From<Position> for PositionView {
    fn from(position: Position) -> Self {
        PositionView {
            avg_price: position.avg_price(),
            unrealized: position.unrealized(),
            daily_pnl: position.daily_pnl(),
            exposure: position.exposure(),
            position,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub total: u64,
}
