//! The registry: every strategy that can be named in a configuration, a backtest or the API.

pub mod book_imbalance;
pub mod breakout;
mod common;
pub mod noop;
pub mod sma_cross;
pub mod tp_signals;

use crate::api::Strategy;
use crate::params::{ParamError, Params};
use domain::Symbol;

type Builder = fn(&[Symbol], &Params) -> Result<Box<dyn Strategy>, ParamError>;

/// A strategy the registry knows: its name and what it does (`tradingsystem backtest --list` and the API show it).
pub struct Kind {
    pub name: &'static str,
    pub about: &'static str,
    build: Builder,
}

pub const KINDS: &[Kind] = &[
    Kind {
        name: sma_cross::NAME,
        about: "long above / short below a slow SMA of the price, on the cross of a fast one (params: fast, slow, hold_ticks, lots, price)",
        build: |symbols, params| Ok(Box::new(sma_cross::SmaCross::new(symbols, params)?)),
    },
    Kind {
        name: breakout::NAME,
        about: "Donchian breakout: long above the period-high, short below the period-low, flat across the exit channel (params: period, exit_period, lots, price, interval)",
        build: |symbols, params| Ok(Box::new(breakout::Breakout::new(symbols, params)?)),
    },
    Kind {
        name: book_imbalance::NAME,
        about: "long when bid size outweighs ask size over the top levels, short on the reverse, flat when balanced (params: levels, threshold, exit, hold_ticks, lots)",
        build: |symbols, params| Ok(Box::new(book_imbalance::BookImbalance::new(symbols, params)?)),
    },
    Kind {
        name: tp_signals::NAME,
        about: "trades TP-Capital signals as brackets: limit entry at the far end of the range, then stop and take-profits for what filled, one-cancels-other (params: lots; backtests need --signals)",
        build: |symbols, params| Ok(Box::new(tp_signals::TpSignals::new(symbols, params)?)),
    },
    Kind {
        name: noop::NAME,
        about: "receives every event and trades nothing: the data path alone (no params)",
        build: |symbols, params| Ok(Box::new(noop::Noop::new(symbols, params)?)),
    },
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("unknown strategy {kind:?}; known: {known}")]
    UnknownKind { kind: String, known: String },
    #[error("{0}")]
    Params(#[from] ParamError),
}

/// Builds the strategy `kind` for `symbols` with `params`.
pub fn build(kind: &str, symbols: &[Symbol], params: &Params) -> Result<Box<dyn Strategy>, BuildError> {
    let k = KINDS.iter().find(|k| k.name == kind).ok_or_else(|| BuildError::UnknownKind {
        kind: kind.to_string(),
        known: KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
    })?;
    Ok((k.build)(symbols, params)?)
}
