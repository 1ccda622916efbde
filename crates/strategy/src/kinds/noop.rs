//! `noop`: receives every trade, quote and book of its symbols and does nothing with them. It measures the data
//! path of a backtest (the W2 benchmark) and checks a data set end to end without trading.

use crate::api::{BookView, Context, QuoteTick, Strategy, TradeTick};
use crate::params::{typed, ParamError, Params};
use domain::Symbol;
use serde::Deserialize;

pub const NAME: &str = "noop";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

pub struct Noop {
    symbols: Vec<Symbol>,
    /// Events seen: kept so the callbacks are not optimised away in a benchmark.
    pub seen: u64,
}

impl Noop {
    pub fn new(symbols: &[Symbol], params: &Params) -> Result<Noop, ParamError> {
        let _: NoParams = typed(NAME, params)?;
        Ok(Noop { symbols: symbols.to_vec(), seen: 0 })
    }
}

impl Strategy for Noop {
    fn name(&self) -> &str {
        NAME
    }
    fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }
    fn on_trade(&mut self, _: &mut dyn Context, _: &TradeTick) {
        self.seen += 1;
    }
    fn on_quote(&mut self, _: &mut dyn Context, _: &QuoteTick) {
        self.seen += 1;
    }
    fn on_book(&mut self, _: &mut dyn Context, _: &BookView<'_>) {
        self.seen += 1;
    }
}
