//! Time on the market and order path. Everything there (the Order Manager, its risk checks and session calendar,
//! the paper broker, Data Capture, strategies) asks a [`Clock`] for the time instead of reading the wall clock, so
//! a backtest runs the very code that trades, at the data's time: live the clock is [`WallClock`], in a backtest a
//! [`SimClock`] that the engine moves to each event's timestamp.
//!
//! This crate is the one place on that path that reads the wall clock; a test in `tradingsystem` keeps it so.

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The clock most callers hold: shared, and cheap to clone.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock: live and paper trading.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl WallClock {
    pub fn shared() -> SharedClock {
        Arc::new(WallClock)
    }
}

/// Simulated time: it stands where it was last set and never goes back. Lock-free, so the backtest's hot loop
/// can move it on every event.
#[derive(Debug)]
pub struct SimClock {
    nanos: AtomicI64,
}

impl SimClock {
    pub fn new(start: DateTime<Utc>) -> Arc<SimClock> {
        Arc::new(SimClock { nanos: AtomicI64::new(to_nanos(start)) })
    }

    /// Moves the clock to `t`; a `t` before the clock's time leaves it where it is (events stamped out of order
    /// never turn time back). Returns the clock's time after the call.
    pub fn advance_to(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let target = to_nanos(t);
        let was = self.nanos.fetch_max(target, Ordering::AcqRel);
        from_nanos(was.max(target))
    }

    /// The clock's time as nanoseconds since 1970 (the backtest's event timestamps are the same unit).
    pub fn now_nanos(&self) -> i64 {
        self.nanos.load(Ordering::Acquire)
    }

    /// Moves the clock to `nanos` since 1970, never back; the event loop's cheap form of [`SimClock::advance_to`].
    pub fn advance_to_nanos(&self, nanos: i64) {
        self.nanos.fetch_max(nanos, Ordering::AcqRel);
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        from_nanos(self.now_nanos())
    }
}

/// Nanoseconds since 1970; times beyond ±292 years of it are clamped (no market data lives there).
pub fn to_nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

pub fn from_nanos(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_time_moves_only_forward() {
        let t0 = DateTime::parse_from_rfc3339("2025-03-10T13:00:00Z").unwrap().with_timezone(&Utc);
        let c = SimClock::new(t0);
        assert_eq!(c.now(), t0);
        let t1 = t0 + chrono::Duration::milliseconds(1500);
        assert_eq!(c.advance_to(t1), t1);
        assert_eq!(c.advance_to(t0), t1, "an earlier event does not turn time back");
        c.advance_to_nanos(to_nanos(t1) + 1);
        assert_eq!(c.now_nanos(), to_nanos(t1) + 1);
        assert_eq!(from_nanos(to_nanos(t1)), t1);
    }
}
