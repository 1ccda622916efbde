//! The domain core of TradingSystem.
//!
//! Everything here is pure: no clocks, no files, no sockets. Time comes in as arguments so that live trading,
//! paper trading, backtests and journal replay all compute exactly the same thing from the same inputs.

pub mod account;
pub mod broker;
pub mod calendar;
pub mod instrument;
pub mod order;
pub mod position;
pub mod price;
pub mod quantity;
pub mod risk;
pub mod symbol;

pub use account::AccountId;
pub use instrument::{Exchange, Instrument, InstrumentKind, Instruments};
pub use order::{
    Amendment, Fill, Order, OrderEvent, OrderRequest, OrderStatus, OrderType, PositionType, Side, TimeInForce,
    ValidationError,
};
pub use position::{Position, PositionBook};
pub use price::{Money, Price, PRICE_SCALE};
pub use quantity::Qty;
pub use symbol::Symbol;

/// The domain takes time as an argument and never reads a clock: a backtest runs the very code that trades, at the
/// data's time. This keeps it so (tests may use the clock).
#[cfg(test)]
mod no_wall_clock {
    #[test]
    fn nothing_outside_the_tests_reads_the_wall_clock() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut sources = Vec::new();
        for entry in std::fs::read_dir(dir).expect("the domain's sources") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                sources.push((path.display().to_string(), std::fs::read_to_string(&path).expect("readable")));
            }
        }
        assert!(sources.len() >= 8, "found the sources: {}", sources.len());
        let clocks = ["Utc::now", "Local::now", "SystemTime::now", "Instant::now"];
        for (name, text) in &sources {
            let code = text.split("#[cfg(test)]").next().unwrap_or(text);
            for clock in clocks {
                assert!(!code.contains(clock), "{name} reads the wall clock ({clock}) outside its tests");
            }
        }
    }
}
