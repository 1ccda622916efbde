//! Market data for TradingSystem: the event types every feed produces ([`types`]) and the tick processor that
//! validates, de-duplicates, detects gaps, applies corrections, builds candles and keeps the tape and the book in
//! memory ([`processor`]). Pure: time comes in with the events.

pub mod book;
pub mod processor;
pub mod types;

pub use book::L2Book;
pub use processor::{Bar, Gap, Outcome, Processed, ProcessorConfig, SymbolStats, TickProcessor};
pub use types::{
    Aggressor, BookSide, BookSnapshot, BookUpdate, Candle, Interval, Level, LevelChange, Quote, Trade, TradeKind,
};
