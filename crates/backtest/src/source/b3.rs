//! B3's public tick-by-tick trade files ("Negócios"): semicolon-separated text with a header row naming the
//! columns, prices with a decimal comma, times as `HHMMSSmmm` in São Paulo. Columns are found by name (their set and
//! order have changed over the years); a file with none of the needed names is refused with the names it has.

use super::{DataError, DateRange, Feed, SymbolTable, VecSource};
use crate::event::{Body, Event};
use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::America::Sao_Paulo;
use domain::{Price, Qty};
use market_data::Aggressor;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// What was read from one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct B3Summary {
    pub rows: u64,
    pub trades: u64,
    /// Rows of other instruments or dates (kept out of the run).
    pub skipped: u64,
    /// Rows that were corrections (AcaoAtualizacao other than 0).
    pub corrections: u64,
}

struct Columns {
    symbol: usize,
    price: usize,
    quantity: usize,
    time: usize,
    date: Option<usize>,
    reference_date: Option<usize>,
    action: Option<usize>,
}

impl Columns {
    fn find(header: &str, path: &Path) -> Result<Columns, DataError> {
        let names: Vec<String> =
            header.trim_start_matches('\u{feff}').split(';').map(|s| s.trim().to_string()).collect();
        let at = |n: &str| names.iter().position(|x| x.eq_ignore_ascii_case(n));
        let need = |n: &str| {
            at(n).ok_or_else(|| {
                DataError::file(path, format!("not a B3 trade file: no column {n} (columns: {})", names.join(", ")))
            })
        };
        Ok(Columns {
            symbol: need("CodigoInstrumento")?,
            price: need("PrecoNegocio")?,
            quantity: need("QuantidadeNegociada")?,
            time: need("HoraFechamento")?,
            date: at("DataNegocio"),
            reference_date: at("DataReferencia"),
            action: at("AcaoAtualizacao"),
        })
    }
}

/// `38,52` (or `1.234,50`, or `38.52`) as an exact price; more than 4 decimals is refused, never rounded.
pub fn parse_price(text: &str) -> Option<Price> {
    let t = text.trim();
    let normalized = if t.contains(',') { t.replace('.', "").replace(',', ".") } else { t.to_string() };
    Price::parse_decimal(&normalized).ok().filter(|p| p.is_positive())
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    NaiveDate::parse_from_str(t, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(t, "%d/%m/%Y")).ok()
}

/// `HHMMSSmmm` (leading zeros may be missing: `93000123` is 09:30:00.123).
pub fn parse_time(text: &str) -> Option<NaiveTime> {
    let t = text.trim();
    if t.is_empty() || t.len() > 9 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = t.parse().ok()?;
    let (hms, ms) = (n / 1000, n % 1000);
    NaiveTime::from_hms_milli_opt(hms / 10_000, hms / 100 % 100, hms % 100, ms)
}

/// Reads a B3 trade file, keeping `symbols` within `range`, and adds one source per trading date to `feed`.
pub fn add_b3_file(
    feed: &mut Feed,
    path: &Path,
    symbols: &SymbolTable,
    range: DateRange,
) -> Result<B3Summary, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::file(path, e))?;
    let mut lines = BufReader::new(file).lines();
    let mut header = String::new();
    for line in lines.by_ref() {
        let line = line.map_err(|e| DataError::file(path, e))?;
        if !line.trim().is_empty() {
            header = line;
            break;
        }
    }
    if header.is_empty() {
        return Err(DataError::file(path, "empty file"));
    }
    let cols = Columns::find(&header, path)?;
    let mut summary = B3Summary::default();
    let mut days: BTreeMap<NaiveDate, Vec<Event>> = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(|e| DataError::file(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        summary.rows += 1;
        let fields: Vec<&str> = line.split(';').collect();
        let bad = |what: &str| DataError::file(path, format!("line {}: {what}", n + 2));
        let field = |i: usize| fields.get(i).copied().ok_or_else(|| bad("fewer columns than the header"));
        let Some(sym) = symbols.index(field(cols.symbol)?.trim()) else {
            summary.skipped += 1;
            continue;
        };
        if let Some(a) = cols.action {
            if field(a)?.trim() != "0" {
                summary.corrections += 1;
                continue;
            }
        }
        let date_text = match (cols.date, cols.reference_date) {
            (Some(i), _) | (None, Some(i)) => field(i)?,
            (None, None) => return Err(bad("no DataNegocio or DataReferencia column")),
        };
        let date = parse_date(date_text).ok_or_else(|| bad(&format!("date {date_text:?}")))?;
        if !range.contains(date) {
            summary.skipped += 1;
            continue;
        }
        let time_text = field(cols.time)?;
        let time = parse_time(time_text).ok_or_else(|| bad(&format!("time {time_text:?} (expected HHMMSSmmm)")))?;
        let price_text = field(cols.price)?;
        let price = parse_price(price_text).ok_or_else(|| bad(&format!("price {price_text:?}")))?;
        let qty_text = field(cols.quantity)?.trim();
        let quantity =
            qty_text.parse::<i64>().ok().filter(|q| *q > 0).ok_or_else(|| bad(&format!("quantity {qty_text:?}")))?;
        let ts = Sao_Paulo
            .from_local_datetime(&date.and_time(time))
            .earliest()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(|| bad("time outside the representable range"))?;
        // The public file does not say who was the aggressor.
        let body = Body::Trade { price, quantity: Qty(quantity), aggressor: Aggressor::Unknown };
        days.entry(date).or_default().push(Event { ts, sym, body });
        summary.trades += 1;
    }
    for (date, mut events) in days {
        // Stable: trades of the same millisecond keep the file's order.
        events.sort_by_key(|e| e.ts);
        let n = events.len() as u64;
        feed.add(date, Box::new(VecSource::new(events)), n);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Symbol;

    #[test]
    fn fields_in_b3_notation() {
        assert_eq!(parse_price("38,52"), Some(Price(385_200)));
        assert_eq!(parse_price("128.450,00"), Some(Price(1_284_500_000)));
        assert_eq!(parse_price("38.5"), Some(Price(385_000)));
        assert_eq!(parse_price("38,52001"), None, "more decimals than the grid is refused, not rounded");
        assert_eq!(parse_price("abc"), None);
        assert_eq!(parse_time("100000123"), NaiveTime::from_hms_milli_opt(10, 0, 0, 123));
        assert_eq!(parse_time("93000500"), NaiveTime::from_hms_milli_opt(9, 30, 0, 500));
        assert_eq!(parse_time("250000000"), None);
        assert_eq!(parse_time("10:00"), None);
    }

    #[test]
    fn columns_by_name_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("trades.txt");
        std::fs::write(
            &p,
            "HoraFechamento;PrecoNegocio;CodigoInstrumento;QuantidadeNegociada;AcaoAtualizacao;DataNegocio\n\
             100000100;38,50;PETR4;100;0;2025-03-10\n\
             100000050;38,49;PETR4;200;0;2025-03-10\n\
             100000060;99,00;VALE3;100;0;2025-03-10\n\
             100001000;38,51;PETR4;300;2;2025-03-10\n",
        )
        .unwrap();
        let symbols = SymbolTable::new(&[Symbol::lit("PETR4")]).unwrap();
        let mut feed = Feed::new();
        let s = add_b3_file(&mut feed, &p, &symbols, DateRange::default()).unwrap();
        assert_eq!((s.rows, s.trades, s.skipped, s.corrections), (4, 2, 1, 1));
        let a = feed.next_event().unwrap().unwrap();
        let b = feed.next_event().unwrap().unwrap();
        assert!(a.ts < b.ts, "sorted by time");
        assert!(matches!(a.body, Body::Trade { price: Price(384_900), .. }));
        assert_eq!(clock::from_nanos(a.ts).to_rfc3339(), "2025-03-10T13:00:00.050+00:00");
        assert!(feed.next_event().unwrap().is_none());

        std::fs::write(&p, "Preco;Ativo\n1;2\n").unwrap();
        let e = add_b3_file(&mut Feed::new(), &p, &symbols, DateRange::default()).unwrap_err().to_string();
        assert!(e.contains("no column CodigoInstrumento") && e.contains("Preco, Ativo"), "{e}");
        std::fs::write(&p, "CodigoInstrumento;PrecoNegocio;QuantidadeNegociada;HoraFechamento;DataNegocio\nPETR4;38,5;x;100000000;2025-03-10\n").unwrap();
        let e = add_b3_file(&mut Feed::new(), &p, &symbols, DateRange::default()).unwrap_err().to_string();
        assert!(e.contains("line 2: quantity \"x\""), "{e}");
    }
}
