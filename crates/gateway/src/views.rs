//! JSON views of domain objects: the domain types themselves plus the derived numbers clients need.

use domain::{Order, Position};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    #[serde(flatten)]
    pub order: Order,
    pub leaves_quantity: i64,
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
    pub unrealized: domain::Money,
    pub daily_pnl: domain::Money,
    pub exposure: domain::Money,
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
