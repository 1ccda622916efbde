//! B3 instruments: tick size, lot, contract multiplier, exchange segment.

use crate::price::{Money, Price};
use crate::quantity::Qty;
use crate::symbol::Symbol;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InstrumentKind {
    Stock,
    Etf,
    Future,
    Option,
}

/// Exchange segment codes as the broker DLL spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Exchange {
    /// Bovespa: stocks, ETFs, options.
    #[serde(rename = "B")]
    Bovespa,
    /// BM&F: futures.
    #[serde(rename = "F")]
    Bmf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Instrument {
    pub symbol: Symbol,
    pub kind: InstrumentKind,
    pub exchange: Exchange,
    pub tick_size: Price,
    pub lot: Qty,
    /// BRL per point of price: 1 for stocks, 0.20 for WIN, 10 for WDO.
    pub multiplier: Money,
    pub currency: String,
    pub description: String,
}

impl Instrument {
    pub fn is_future(&self) -> bool {
        self.kind == InstrumentKind::Future
    }

    /// Rounds a price down to the grid (used by the simulated market, never to "fix" a client's price).
    pub fn floor_to_tick(&self, p: Price) -> Price {
        let t = self.tick_size.units();
        Price(p.units().div_euclid(t) * t)
    }
}

/// Futures month codes, January to December.
pub const MONTH_CODES: [char; 12] = ['F', 'G', 'H', 'J', 'K', 'M', 'N', 'Q', 'U', 'V', 'X', 'Z'];

/// The contract code for a futures root, e.g. `future_code("WIN", 2025, 12)` is `WINZ25`. The root is a code
/// literal (`WIN`, `WDO`): capital letters, so the code is always a symbol.
pub fn future_code(root: &'static str, year: i32, month: u32) -> Symbol {
    let idx = (month.clamp(1, 12) - 1) as usize;
    let code = format!("{root}{}{:02}", MONTH_CODES[idx], year.rem_euclid(100));
    Symbol::parse(&code).unwrap_or_else(|e| panic!("futures root {root:?} makes {code:?}, which {e}"))
}

/// WIN expires on the Wednesday nearest the 15th of even months; WDO on the first business day of each month,
/// so the front WDO is always next month's. Approximating WIN's expiry by the 15th is enough to pick the contract
/// that carries the volume.
pub fn front_month(root: &str, today: NaiveDate) -> (i32, u32) {
    let (mut y, mut m) = (today.year(), today.month());
    let next = |y: i32, m: u32| if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    match root {
        "WIN" => {
            if m % 2 == 1 || today.day() > 15 {
                (y, m) = next(y, m);
                if m % 2 == 1 {
                    (y, m) = next(y, m);
                }
            }
            (y, m)
        }
        _ => next(y, m),
    }
}

/// The contract multiplier of a futures code by its root (`WINZ25` → R$ 0.20/point), also for contracts that are
/// no longer in the table: positions replayed from an old journal keep their money value.
pub fn contract_multiplier(symbol: &str) -> Option<Money> {
    if symbol.len() != 6 || !symbol.is_ascii() {
        return None;
    }
    let is_code = MONTH_CODES.contains(&symbol.chars().nth(3)?) && symbol.get(4..)?.chars().all(|c| c.is_ascii_digit());
    match (symbol.get(..3)?, is_code) {
        ("WIN", true) => Some(Money(2_000)),
        ("WDO", true) => Some(Money::from_brl(10)),
        ("IND", true) => Some(Money::from_brl(1)),
        ("DOL", true) => Some(Money::from_brl(50)),
        _ => None,
    }
}

/// The instrument table. Cheap to clone and share: lookups happen on every order.
#[derive(Debug, Clone, Default)]
pub struct Instruments {
    by_symbol: Arc<BTreeMap<Symbol, Instrument>>,
}

impl Instruments {
    pub fn new(list: impl IntoIterator<Item = Instrument>) -> Self {
        let map = list.into_iter().map(|i| (i.symbol, i)).collect();
        Instruments { by_symbol: Arc::new(map) }
    }

    /// The defaults of the simulated market: the stocks and ETF of the spec plus the front WIN and WDO contracts.
    pub fn b3_defaults(today: NaiveDate) -> Self {
        let stock = |symbol: &'static str, desc: &str| Instrument {
            symbol: Symbol::lit(symbol),
            kind: InstrumentKind::Stock,
            exchange: Exchange::Bovespa,
            tick_size: Price(100),
            lot: Qty(100),
            multiplier: Money::from_brl(1),
            currency: "BRL".into(),
            description: desc.into(),
        };
        let mut list = vec![
            stock("PETR4", "Petrobras PN"),
            stock("VALE3", "Vale ON"),
            stock("ITUB4", "Itaú Unibanco PN"),
            stock("BBDC4", "Bradesco PN"),
            stock("B3SA3", "B3 ON"),
            Instrument { lot: Qty(10), kind: InstrumentKind::Etf, ..stock("BOVA11", "iShares Ibovespa ETF") },
        ];
        let (wy, wm) = front_month("WIN", today);
        list.push(Instrument {
            symbol: future_code("WIN", wy, wm),
            kind: InstrumentKind::Future,
            exchange: Exchange::Bmf,
            tick_size: Price(50_000),
            lot: Qty(1),
            multiplier: Money(2_000),
            currency: "BRL".into(),
            description: "Mini Ibovespa future".into(),
        });
        let (dy, dm) = front_month("WDO", today);
        list.push(Instrument {
            symbol: future_code("WDO", dy, dm),
            kind: InstrumentKind::Future,
            exchange: Exchange::Bmf,
            tick_size: Price(5_000),
            lot: Qty(1),
            multiplier: Money::from_brl(10),
            currency: "BRL".into(),
            description: "Mini US dollar future".into(),
        });
        Self::new(list)
    }

    pub fn get(&self, symbol: &str) -> Option<&Instrument> {
        self.by_symbol.get(symbol)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Instrument> {
        self.by_symbol.values()
    }

    pub fn len(&self) -> usize {
        self.by_symbol.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_symbol.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn future_codes() {
        assert_eq!(future_code("WIN", 2025, 12), "WINZ25");
        assert_eq!(future_code("WDO", 2026, 1), "WDOF26");
    }

    #[test]
    fn front_months() {
        assert_eq!(front_month("WIN", d(2025, 11, 24)), (2025, 12));
        assert_eq!(front_month("WIN", d(2025, 12, 10)), (2025, 12));
        assert_eq!(front_month("WIN", d(2025, 12, 20)), (2026, 2));
        assert_eq!(front_month("WDO", d(2025, 11, 24)), (2025, 12));
        assert_eq!(front_month("WDO", d(2025, 12, 24)), (2026, 1));
    }

    #[test]
    fn multipliers_of_any_contract() {
        assert_eq!(contract_multiplier("WINF24"), Some(Money(2_000)));
        assert_eq!(contract_multiplier("WDOK27"), Some(Money::from_brl(10)));
        assert_eq!(contract_multiplier("PETR4"), None);
        assert_eq!(contract_multiplier("WINA25"), None);
        assert_eq!(contract_multiplier("WI"), None);
        assert_eq!(contract_multiplier("WINZ2é"), None);
        assert_eq!(contract_multiplier("éINZ5"), None);
        assert_eq!(contract_multiplier("ééNZ"), None);
    }

    #[test]
    fn defaults_follow_the_spec_table() {
        let ins = Instruments::b3_defaults(d(2025, 11, 24));
        let petr = ins.get("PETR4").unwrap();
        assert_eq!((petr.tick_size, petr.lot, petr.exchange), (Price(100), Qty(100), Exchange::Bovespa));
        assert_eq!(ins.get("BOVA11").unwrap().lot, Qty(10));
        let win = ins.get("WINZ25").unwrap();
        assert_eq!((win.tick_size, win.multiplier, win.exchange), (Price(50_000), Money(2_000), Exchange::Bmf));
        let wdo = ins.get("WDOZ25").unwrap();
        assert_eq!((wdo.tick_size, wdo.multiplier), (Price(5_000), Money(100_000)));
    }
}
