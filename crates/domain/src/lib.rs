//! The domain core of TradingSystem.
//!
//! Everything here is pure: no clocks, no files, no sockets. Time comes in as arguments so that live trading,
//! paper trading, backtests and journal replay all compute exactly the same thing from the same inputs.

pub mod broker;
pub mod calendar;
pub mod instrument;
pub mod order;
pub mod position;
pub mod price;
pub mod risk;

pub use instrument::{Exchange, Instrument, InstrumentKind, Instruments};
pub use order::{
    Fill, Order, OrderEvent, OrderRequest, OrderStatus, OrderType, PositionType, Side, TimeInForce, ValidationError,
};
pub use position::{Position, PositionBook};
pub use price::{Money, Price, Qty, PRICE_SCALE};
