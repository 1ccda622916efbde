//! FIX 4.4 for order entry: the tag=value [`codec`] (framing, body length and checksum checked, never a panic on
//! any input), and the initiator [`session`] layer with its [`store`] (sequence numbers and sent messages kept
//! across restarts), [`log`] (every message in and out, a file per day) and [`schedule`] (São Paulo time).
//!
//! No mature FIX engine exists in Rust, so the session layer is ours; it is tested against QuickFIX acting as the
//! broker (`crates/fix-broker/tests`). The order-entry mapping (orders to NewOrderSingle, ExecutionReports to
//! broker events) lives in `fix-broker`: this crate knows nothing of orders.

pub mod codec;
pub mod log;
pub mod schedule;
pub mod session;
pub mod store;
pub mod tags;

pub use codec::{Decoder, FrameError, Message, MessageBuilder};
pub use schedule::Schedule;
pub use session::{SessionConfig, SessionEvent, SessionHandle, SessionInfo, SessionStatus};
