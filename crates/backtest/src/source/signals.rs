//! Trading signals for a backtest (`--signals FILE`): TP-Capital's signals as the API gives them, either the body
//! of `GET /api/v1/tp-capital/signals` (`{"data": [...]}`) or one signal object per line. A signal reaches the
//! strategy at its `ts`, between the market events around it.

use super::{trading_date_of, DataError, DateRange, Feed, SymbolTable, VecSource};
use crate::event::{Body, Event};
use std::collections::BTreeMap;
use std::path::Path;
use strategy::api::SignalEvent;

/// Reads `path`, keeps the signals for `symbols` within `range`, and adds them to `feed`; returns how many.
pub fn add_signals_file(
    feed: &mut Feed,
    path: &Path,
    symbols: &SymbolTable,
    range: DateRange,
) -> Result<usize, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::file(path, e))?;
    let values: Vec<(usize, serde_json::Value)> = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(o)) if o.contains_key("data") => match o.get("data") {
            Some(serde_json::Value::Array(a)) => a.iter().cloned().enumerate().map(|(i, v)| (i + 1, v)).collect(),
            _ => return Err(DataError::file(path, "\"data\" is not a list of signals")),
        },
        Ok(serde_json::Value::Array(a)) => a.into_iter().enumerate().map(|(i, v)| (i + 1, v)).collect(),
        _ => {
            let mut out = Vec::new();
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let v =
                    serde_json::from_str(line).map_err(|e| DataError::file(path, format!("line {}: {e}", n + 1)))?;
                out.push((n + 1, v));
            }
            out
        }
    };
    let mut days: BTreeMap<chrono::NaiveDate, Vec<Event>> = BTreeMap::new();
    let mut kept = 0;
    for (n, v) in values {
        let s = SignalEvent::from_json(&v).map_err(|e| DataError::file(path, format!("signal {n}: {e}")))?;
        let Some(sym) = symbols.index(s.symbol.as_str()) else { continue };
        let Some(ts) = s.ts.timestamp_nanos_opt() else { continue };
        let date = trading_date_of(ts);
        if !range.contains(date) {
            continue;
        }
        days.entry(date).or_default().push(Event { ts, sym, body: Body::Signal(Box::new(s)) });
        kept += 1;
    }
    for (date, mut events) in days {
        events.sort_by_key(|e| e.ts);
        feed.add(date, Box::new(VecSource::new(events)), 0);
    }
    Ok(kept)
}
