//! The market data events every feed adapter produces and every consumer reads.

use chrono::{DateTime, Utc};
use domain::{Price, Qty};
use serde::{Deserialize, Serialize};

/// Who crossed the spread. B3's tape reports it per trade; auctions have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Aggressor {
    #[serde(rename = "B")]
    Buy,
    #[serde(rename = "S")]
    Sell,
    #[serde(rename = "U")]
    Unknown,
}

impl Aggressor {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggressor::Buy => "B",
            Aggressor::Sell => "S",
            Aggressor::Unknown => "U",
        }
    }
}

/// A new print, or a correction of an earlier one (same `trade_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TradeKind {
    #[default]
    New,
    /// Replaces price and quantity of the earlier trade with this `trade_id`.
    Edit,
    /// Removes the earlier trade with this `trade_id`.
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trade {
    pub symbol: String,
    /// Per-session sequence number from the exchange: gaps in it are missed trades.
    pub trade_id: u64,
    pub price: Price,
    pub quantity: Qty,
    pub aggressor: Aggressor,
    pub buyer_agent: u32,
    pub seller_agent: u32,
    pub exchange_ts: DateTime<Utc>,
    pub receive_ts: DateTime<Utc>,
    #[serde(default)]
    pub kind: TradeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Level {
    pub price: Price,
    pub quantity: Qty,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BookSnapshot {
    pub symbol: String,
    /// Best first.
    pub bids: Vec<Level>,
    /// Best first.
    pub asks: Vec<Level>,
    pub ts: DateTime<Utc>,
}

/// Top of book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    pub symbol: String,
    pub bid: Option<Level>,
    pub ask: Option<Level>,
    pub ts: DateTime<Utc>,
}

impl BookSnapshot {
    pub fn quote(&self) -> Quote {
        Quote {
            symbol: self.symbol.clone(),
            bid: self.bids.first().copied(),
            ask: self.asks.first().copied(),
            ts: self.ts,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Interval {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "1d")]
    D1,
}

impl Interval {
    pub const ALL: [Interval; 5] = [Interval::M1, Interval::M5, Interval::M15, Interval::H1, Interval::D1];

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::D1 => "1d",
        }
    }

    pub fn parse(s: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// Length in minutes.
    pub fn minutes(self) -> i64 {
        match self {
            Interval::M1 => 1,
            Interval::M5 => 5,
            Interval::M15 => 15,
            Interval::H1 => 60,
            Interval::D1 => 1440,
        }
    }
}

/// OHLCV of the trades in `[open_time, open_time + interval)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Candle {
    pub symbol: String,
    pub interval: Interval,
    pub open_time: DateTime<Utc>,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    pub volume: Qty,
    pub trade_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BookSide {
    Bid,
    Ask,
}

/// One level's new quantity; 0 removes the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelChange {
    pub side: BookSide,
    pub price: Price,
    pub quantity: Qty,
}

/// An incremental change to a symbol's book. `seq` increases by one per update of the symbol; a missing number
/// means the receiver's book is stale until the next snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookUpdate {
    pub symbol: String,
    pub seq: u64,
    pub changes: Vec<LevelChange>,
    pub ts: DateTime<Utc>,
}
