//! What a run reports: `summary.json` (also printed), a self-contained `report.html` (inline SVG, no script, no
//! network), `equity.png`, and orders, fills, positions and round trips as CSV and Parquet.

use crate::engine::{Engine, Settings};
use crate::ledger::Ledger;
use crate::metrics::{return_metrics, trade_metrics, ReturnMetrics, TradeMetrics};
use crate::source::SymbolTable;
use crate::{Outcome, RunSpec, Timing};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::NaiveDate;
use domain::order::{Order, Side};
use domain::{Money, Price, Qty};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strategy::params::Params;

#[cfg(test)]
mod tests {
    #[test]
    fn decimals_are_plain_and_exact() {
        assert_eq!(super::decimal(384_900), "38.49");
        assert_eq!(super::decimal(8_907), "0.8907");
        assert_eq!(super::decimal(-70_000), "-7.00");
        assert_eq!(super::decimal(-5), "-0.0005");
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SymbolFigures {
    pub symbol: String,
    pub fills: usize,
    pub round_trips: usize,
    pub realized: Money,
    pub costs: Money,
    pub final_position: Qty,
    pub last_price: Option<Price>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaxReport {
    pub note: &'static str,
    pub total: Money,
    pub months: Vec<crate::costs::MonthTax>,
}

/// The run's result. Everything in it follows from the data, the strategy, its parameters and the settings, so the
/// same inputs serialize to the same bytes (wall-clock figures are kept out).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub strategy: String,
    pub params: Params,
    pub symbols: Vec<String>,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    /// False when the run was stopped before the end of the data.
    pub complete: bool,
    pub events: u64,
    pub orders: u64,
    pub refused: u64,
    pub fills: usize,
    pub capital: Money,
    pub final_equity: Money,
    pub net_pnl: Money,
    pub costs: Money,
    pub returns: ReturnMetrics,
    pub trades: TradeMetrics,
    /// Share of market events processed while holding a position.
    pub exposure: f64,
    /// Month (`YYYY-MM`) → return over the month's last close.
    pub monthly_returns: Vec<(String, f64)>,
    pub per_symbol: Vec<SymbolFigures>,
    pub tax_estimate: TaxReport,
    pub settings: Settings,
    pub warnings: Vec<String>,
}

pub(crate) fn outcome(
    spec: &RunSpec,
    engine: Engine,
    table: SymbolTable,
    events: u64,
    complete: bool,
    timing: Timing,
) -> Outcome {
    let last_ts = engine.last_ts;
    let r = engine.into_results();
    let ledger = r.ledger;
    let capital = ledger.capital();
    let equity: Vec<f64> = ledger.days.iter().map(|d| d.equity.to_f64()).collect();
    let returns = return_metrics(capital.to_f64(), &equity, spec.settings.cdi);
    let pnl: Vec<f64> = ledger.trips.iter().map(|t| t.net.to_f64()).collect();
    let trades = trade_metrics(&pnl);
    let final_equity = ledger.equity();
    let mut monthly = Vec::<(String, f64)>::new();
    let mut prev = capital.to_f64();
    let mut i = 0;
    while i < ledger.days.len() {
        let month = ledger.days[i].date.format("%Y-%m").to_string();
        let mut j = i;
        while j + 1 < ledger.days.len() && ledger.days[j + 1].date.format("%Y-%m").to_string() == month {
            j += 1;
        }
        let close = ledger.days[j].equity.to_f64();
        monthly.push((month, if prev != 0.0 { close / prev - 1.0 } else { 0.0 }));
        prev = close;
        i = j + 1;
    }
    let per_symbol = table
        .symbols()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let sym = i as u16;
            let fills: Vec<_> = ledger.fills.iter().filter(|f| f.sym == sym).collect();
            let pos = ledger.positions().nth(i);
            SymbolFigures {
                symbol: s.to_string(),
                fills: fills.len(),
                round_trips: ledger.trips.iter().filter(|t| t.sym == sym).count(),
                realized: fills.iter().fold(Money::ZERO, |a, f| a + f.realized),
                costs: fills.iter().fold(Money::ZERO, |a, f| a + f.cost.total()),
                final_position: pos.map(|p| p.quantity).unwrap_or(Qty::ZERO),
                last_price: pos.and_then(|p| p.last_price),
            }
        })
        .collect();
    let months = ledger.tax();
    let tax_total = months.iter().fold(Money::ZERO, |a, m| a + m.day_trade_tax + m.swing_tax);
    let mut warnings = Vec::new();
    if let Some(k) = &r.kill_switch {
        warnings.push(format!("{k}; orders after it were refused"));
    }
    for root in &ledger.unpriced {
        warnings.push(format!("no fee schedule for {root}: its trades were charged nothing"));
    }
    if !complete {
        warnings.push("stopped before the end of the data: figures cover what ran".into());
    }
    let first_event = ledger.curve.first().map(|(t, _)| clock::from_nanos(*t).to_rfc3339());
    let summary = Summary {
        strategy: spec.strategy.clone(),
        params: spec.params.clone(),
        symbols: table.symbols().iter().map(|s| s.to_string()).collect(),
        first_event,
        last_event: Some(clock::from_nanos(last_ts).to_rfc3339()),
        complete,
        events,
        orders: r.submitted,
        refused: r.refused,
        fills: ledger.fills.len(),
        capital,
        final_equity,
        net_pnl: final_equity - capital,
        costs: ledger.costs(),
        returns,
        trades,
        exposure: if ledger.events > 0 { ledger.events_in_position as f64 / ledger.events as f64 } else { 0.0 },
        monthly_returns: monthly,
        per_symbol,
        tax_estimate: TaxReport {
            note: "an estimate of Brazilian income tax (day trade 20 %, swing 15 %, R$ 20,000 monthly exemption on spot stock sales, losses carried within their bucket); not tax advice",
            total: tax_total,
            months,
        },
        settings: spec.settings.clone(),
        warnings,
    };
    Outcome { summary, ledger, orders: r.orders, symbols: table, timing }
}

impl Summary {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Writes every report file into `dir` (created if needed) and returns their paths.
pub fn write(dir: &Path, o: &Outcome) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: Vec<u8>| -> std::io::Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, bytes)?;
        written.push(p);
        Ok(())
    };
    put("summary.json", (o.summary.to_json() + "\n").into_bytes())?;
    put("report.html", html(o).into_bytes())?;
    let curve = thin(&o.ledger.curve, 2400);
    put("equity.png", crate::chart::equity_png(&curve, o.ledger.capital().to_f64()).map_err(std::io::Error::other)?)?;
    let tables = [
        ("orders", orders_table(&o.orders)),
        ("fills", fills_table(&o.ledger, &o.symbols)),
        ("positions", positions_table(&o.ledger)),
        ("trades", trips_table(&o.ledger, &o.symbols)),
    ];
    for (name, t) in tables {
        put(&format!("{name}.csv"), t.csv().into_bytes())?;
        put(&format!("{name}.parquet"), t.parquet().map_err(std::io::Error::other)?)?;
    }
    Ok(written)
}

/// A small column table written both as CSV (exact decimal text) and Parquet (typed columns).
struct Table {
    columns: Vec<(&'static str, Column)>,
}

enum Column {
    Text(Vec<String>),
    Int(Vec<i64>),
    /// Prices and amounts: exact text in CSV, float64 in Parquet (exact for 4-decimal values, as in the store).
    Decimal(Vec<Option<i64>>),
    Time(Vec<i64>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Int(v) | Column::Time(v) => v.len(),
            Column::Decimal(v) => v.len(),
        }
    }

    fn cell(&self, i: usize) -> String {
        match self {
            Column::Text(v) => csv_escape(&v[i]),
            Column::Int(v) => v[i].to_string(),
            Column::Decimal(v) => v[i].map(decimal).unwrap_or_default(),
            Column::Time(v) => clock::from_nanos(v[i]).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        }
    }
}

/// Fixed-point units (4 decimals) as plain decimal text, at least 2 decimals: `38.49`, `0.8907`, `-7.00`.
pub fn decimal(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let u = units.unsigned_abs();
    let scale = domain::PRICE_SCALE as u64;
    let mut frac = format!("{:04}", u % scale);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}{}.{frac}", u / scale)
}

fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Table {
    fn rows(&self) -> usize {
        self.columns.first().map(|(_, c)| c.len()).unwrap_or(0)
    }

    fn csv(&self) -> String {
        let mut out = self.columns.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(",");
        out.push('\n');
        for i in 0..self.rows() {
            let row: Vec<String> = self.columns.iter().map(|(_, c)| c.cell(i)).collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }

    fn parquet(&self) -> Result<Vec<u8>, String> {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (name, c) in &self.columns {
            let (dt, a): (DataType, ArrayRef) = match c {
                Column::Text(v) => (DataType::Utf8, Arc::new(StringArray::from(v.clone()))),
                Column::Int(v) => (DataType::Int64, Arc::new(Int64Array::from(v.clone()))),
                Column::Decimal(v) => (
                    DataType::Float64,
                    Arc::new(Float64Array::from(v.iter().map(|u| u.map(|u| Money(u).to_f64())).collect::<Vec<_>>())),
                ),
                Column::Time(v) => (
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                    Arc::new(TimestampNanosecondArray::from(v.clone()).with_timezone("UTC")),
                ),
            };
            fields.push(Field::new(*name, dt, true));
            arrays.push(a);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).map_err(|e| e.to_string())?;
        w.write(&batch).map_err(|e| e.to_string())?;
        w.close().map_err(|e| e.to_string())?;
        Ok(buf)
    }
}

fn side(s: Side) -> String {
    match s {
        Side::Buy => "BUY".into(),
        Side::Sell => "SELL".into(),
    }
}

fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn orders_table(orders: &[Order]) -> Table {
    Table {
        columns: vec![
            ("order_id", Column::Int(orders.iter().map(|o| o.id as i64).collect())),
            ("created_at", Column::Time(orders.iter().map(|o| clock::to_nanos(o.created_at)).collect())),
            ("symbol", Column::Text(orders.iter().map(|o| o.symbol.to_string()).collect())),
            ("side", Column::Text(orders.iter().map(|o| side(o.side)).collect())),
            ("type", Column::Text(orders.iter().map(|o| enum_text(&o.order_type)).collect())),
            ("quantity", Column::Int(orders.iter().map(|o| o.quantity.get()).collect())),
            ("price", Column::Decimal(orders.iter().map(|o| o.price.map(|p| p.units())).collect())),
            ("status", Column::Text(orders.iter().map(|o| enum_text(&o.status)).collect())),
            ("filled_quantity", Column::Int(orders.iter().map(|o| o.filled_quantity.get()).collect())),
            (
                "reject_reason",
                Column::Text(orders.iter().map(|o| o.reject_reason.clone().unwrap_or_default()).collect()),
            ),
            (
                "justification",
                Column::Text(orders.iter().map(|o| o.justification.clone().unwrap_or_default()).collect()),
            ),
        ],
    }
}

fn fills_table(l: &Ledger, t: &SymbolTable) -> Table {
    let f = &l.fills;
    Table {
        columns: vec![
            ("order_id", Column::Int(f.iter().map(|x| x.order_id as i64).collect())),
            ("ts", Column::Time(f.iter().map(|x| x.ts).collect())),
            ("symbol", Column::Text(f.iter().map(|x| t.symbol(x.sym).to_string()).collect())),
            ("side", Column::Text(f.iter().map(|x| side(x.side)).collect())),
            ("quantity", Column::Int(f.iter().map(|x| x.quantity.get()).collect())),
            ("price", Column::Decimal(f.iter().map(|x| Some(x.price.units())).collect())),
            ("value", Column::Decimal(f.iter().map(|x| Some(x.value.0)).collect())),
            ("exchange_fees", Column::Decimal(f.iter().map(|x| Some(x.cost.exchange.0)).collect())),
            ("brokerage", Column::Decimal(f.iter().map(|x| Some(x.cost.brokerage.0)).collect())),
            ("day_trade_quantity", Column::Int(f.iter().map(|x| x.cost.day_trade_qty.get()).collect())),
            ("realized", Column::Decimal(f.iter().map(|x| Some(x.realized.0)).collect())),
        ],
    }
}

fn positions_table(l: &Ledger) -> Table {
    let p: Vec<_> = l.positions().collect();
    Table {
        columns: vec![
            ("symbol", Column::Text(p.iter().map(|x| x.symbol.to_string()).collect())),
            ("quantity", Column::Int(p.iter().map(|x| x.quantity.get()).collect())),
            ("cost", Column::Decimal(p.iter().map(|x| Some(x.cost.units())).collect())),
            ("last_price", Column::Decimal(p.iter().map(|x| x.last_price.map(|v| v.units())).collect())),
            ("realized", Column::Decimal(p.iter().map(|x| Some(x.realized_total.0)).collect())),
            ("unrealized", Column::Decimal(p.iter().map(|x| x.unrealized().map(|m| m.0)).collect())),
        ],
    }
}

fn trips_table(l: &Ledger, t: &SymbolTable) -> Table {
    let r = &l.trips;
    Table {
        columns: vec![
            ("symbol", Column::Text(r.iter().map(|x| t.symbol(x.sym).to_string()).collect())),
            (
                "direction",
                Column::Text(r.iter().map(|x| if x.direction > 0 { "LONG" } else { "SHORT" }.to_string()).collect()),
            ),
            ("opened", Column::Time(r.iter().map(|x| x.open_ts).collect())),
            ("closed", Column::Time(r.iter().map(|x| x.close_ts).collect())),
            ("max_quantity", Column::Int(r.iter().map(|x| x.max_quantity.get()).collect())),
            ("gross", Column::Decimal(r.iter().map(|x| Some(x.gross.0)).collect())),
            ("costs", Column::Decimal(r.iter().map(|x| Some(x.costs.0)).collect())),
            ("net", Column::Decimal(r.iter().map(|x| Some(x.net.0)).collect())),
        ],
    }
}

// ---------------------------------------------------------------------------------------------------------------
// report.html

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// At most `max` points, evenly picked, the last one always kept.
fn thin<T: Copy>(v: &[T], max: usize) -> Vec<T> {
    if v.len() <= max || max < 2 {
        return v.to_vec();
    }
    let step = v.len() as f64 / (max - 1) as f64;
    let mut out: Vec<T> = (0..max - 1).map(|i| v[(i as f64 * step) as usize]).collect();
    out.extend(v.last().copied());
    out
}

const W: f64 = 960.0;
const H: f64 = 240.0;
const PAD: f64 = 48.0;

/// A line over equally spaced samples (market time, without the nights and weekends), with optional markers at
/// sample positions (x index, y, up?).
fn line_svg(points: &[(i64, f64)], color: &str, fill_below: bool, markers: &[(usize, f64, bool)]) -> String {
    if points.is_empty() {
        return "<p class=muted>no data</p>".into();
    }
    let ys = points.iter().map(|(_, y)| *y).chain(markers.iter().map(|m| m.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let n = points.len().max(2) - 1;
    let x = |i: usize| PAD + (W - PAD - 8.0) * i as f64 / n as f64;
    let y = |v: f64| 8.0 + (H - 32.0) * (1.0 - (v - lo) / span);
    let mut s = format!("<svg viewBox=\"0 0 {W} {H}\" width=\"100%\" role=img>");
    for k in 0..=4 {
        let v = lo + span * k as f64 / 4.0;
        let _ = write!(s, "<line x1=\"{PAD}\" x2=\"{W}\" y1=\"{0:.1}\" y2=\"{0:.1}\" class=grid /><text x=\"{1}\" y=\"{2:.1}\" class=axis>{3}</text>", y(v), PAD - 4.0, y(v) + 4.0, fmt_num(v));
    }
    let path: Vec<String> = points.iter().enumerate().map(|(i, (_, v))| format!("{:.1},{:.1}", x(i), y(*v))).collect();
    if fill_below {
        let _ = write!(
            s,
            "<polygon points=\"{:.1},{:.1} {} {:.1},{:.1}\" fill=\"{color}\" opacity=\"0.25\" />",
            x(0),
            y(hi.min(0.0).max(lo)),
            path.join(" "),
            x(points.len() - 1),
            y(hi.min(0.0).max(lo))
        );
    }
    let _ = write!(s, "<polyline points=\"{}\" fill=none stroke=\"{color}\" stroke-width=\"1.4\" />", path.join(" "));
    for (i, v, up) in markers {
        let (cx, cy) = (x(*i), y(*v));
        let (pts, c) = if *up {
            (
                format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", cx, cy - 6.0, cx - 4.0, cy + 2.0, cx + 4.0, cy + 2.0),
                "#1a7f37",
            )
        } else {
            (
                format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", cx, cy + 6.0, cx - 4.0, cy - 2.0, cx + 4.0, cy - 2.0),
                "#cf222e",
            )
        };
        let _ = write!(s, "<polygon points=\"{pts}\" fill=\"{c}\" />");
    }
    let first = clock::from_nanos(points[0].0).format("%Y-%m-%d %H:%M");
    let last = clock::from_nanos(points[points.len() - 1].0).format("%Y-%m-%d %H:%M");
    let _ = write!(s, "<text x=\"{PAD}\" y=\"{}\" class=axis text-anchor=start>{first} UTC</text><text x=\"{W}\" y=\"{}\" class=axis>{last} UTC</text></svg>", H - 4.0, H - 4.0);
    s
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn pct(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "–".into())
}

fn html(o: &Outcome) -> String {
    let s = &o.summary;
    let l = &o.ledger;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Backtest: {} on {}</title><style>\
body{{font:14px system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#1f2328}}h1{{font-size:20px}}h2{{font-size:16px;margin-top:28px}}\
table{{border-collapse:collapse;margin:8px 0}}td,th{{padding:3px 10px;border-bottom:1px solid #d0d7de;text-align:right}}th:first-child,td:first-child{{text-align:left}}\
.grid{{stroke:#eaeef2}}.axis{{font-size:10px;fill:#656d76;text-anchor:end}}.muted{{color:#656d76}}.figs td{{text-align:left}}.neg{{color:#cf222e}}.pos{{color:#1a7f37}}\
</style></head><body>",
        esc(&s.strategy),
        esc(&s.symbols.join(", "))
    );
    let params = serde_json::to_string(&s.params).unwrap_or_default();
    let _ = write!(
        h,
        "<h1>{} · {}</h1><p class=muted>params {} · {} → {} · {} events · {}</p>",
        esc(&s.strategy),
        esc(&s.symbols.join(", ")),
        esc(&params),
        esc(s.first_event.as_deref().unwrap_or("")),
        esc(s.last_event.as_deref().unwrap_or("")),
        s.events,
        if s.complete { "complete" } else { "<b>stopped early: partial</b>" }
    );
    for w in &s.warnings {
        let _ = write!(h, "<p><b>warning:</b> {}</p>", esc(w));
    }
    let r = &s.returns;
    let t = &s.trades;
    let figs: Vec<(&str, String)> = vec![
        ("Capital", s.capital.to_string()),
        ("Final equity", s.final_equity.to_string()),
        ("Net P&L", s.net_pnl.to_string()),
        ("Total return", pct(r.total_return)),
        ("CAGR", pct(r.cagr)),
        ("Annualised volatility", pct(r.volatility)),
        ("Sharpe (rf 0)", opt(r.sharpe)),
        ("Sharpe (CDI)", format!("{} (CDI {})", opt(r.sharpe_cdi), pct(s.settings.cdi))),
        ("Sortino", opt(r.sortino)),
        ("Max drawdown", format!("{} over {} days", pct(r.max_drawdown), r.max_drawdown_days)),
        ("Calmar", opt(r.calmar)),
        ("Round trips", t.trades.to_string()),
        ("Win rate", t.win_rate.map(pct).unwrap_or_else(|| "–".into())),
        ("Wins / losses / flat", format!("{} / {} / {}", t.wins, t.losses, t.flat)),
        ("Profit factor", opt(t.profit_factor)),
        ("Expectancy (R$)", opt(t.expectancy)),
        ("Average win / loss (R$)", format!("{} / {}", opt(t.average_win), opt(t.average_loss))),
        ("Exposure", pct(s.exposure)),
        ("Orders / refused / fills", format!("{} / {} / {}", s.orders, s.refused, s.fills)),
        ("Costs (B3 fees, brokerage)", s.costs.to_string()),
        ("Estimated income tax", format!("{} (estimate)", s.tax_estimate.total)),
    ];
    h.push_str("<table class=figs>");
    for (k, v) in figs {
        let _ = write!(h, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    h.push_str("</table>");

    h.push_str("<h2>Equity</h2>");
    let curve = thin(&l.curve, 1500);
    h.push_str(&line_svg(&curve, "#0969da", false, &[]));
    h.push_str("<h2>Drawdown</h2>");
    let mut peak = l.capital().to_f64();
    let dd: Vec<(i64, f64)> = curve
        .iter()
        .map(|&(ts, e)| {
            peak = peak.max(e);
            (ts, if peak > 0.0 { -(peak - e) / peak * 100.0 } else { 0.0 })
        })
        .collect();
    h.push_str(&line_svg(&dd, "#cf222e", true, &[]));
    h.push_str("<p class=muted>percent below the running peak of the equity curve (the max drawdown figure uses daily closes)</p>");

    h.push_str("<h2>Monthly returns</h2><table><tr><th>month</th><th>return</th></tr>");
    for (m, v) in &s.monthly_returns {
        let class = if *v < 0.0 { "neg" } else { "pos" };
        let _ = write!(h, "<tr><td>{m}</td><td class={class}>{}</td></tr>", pct(*v));
    }
    h.push_str("</table>");

    for (i, sym) in o.symbols.symbols().iter().enumerate().take(4) {
        let prices = thin(&l.prices[i], 1500);
        if prices.is_empty() {
            continue;
        }
        let fills: Vec<_> = l.fills.iter().filter(|f| usize::from(f.sym) == i).collect();
        let markers: Vec<(usize, f64, bool)> = thin(&fills, 1000)
            .iter()
            .map(|f| {
                let at = prices.partition_point(|(ts, _)| *ts <= f.ts).saturating_sub(1);
                (at, f.price.to_f64(), f.side == Side::Buy)
            })
            .collect();
        let _ = write!(h, "<h2>{} price and fills</h2>", esc(sym.as_str()));
        h.push_str(&line_svg(&prices, "#57606a", false, &markers));
    }

    h.push_str("<h2>Per symbol</h2><table><tr><th>symbol</th><th>fills</th><th>round trips</th><th>realized</th><th>costs</th><th>final position</th><th>last price</th></tr>");
    for p in &s.per_symbol {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.symbol),
            p.fills,
            p.round_trips,
            p.realized,
            p.costs,
            p.final_position,
            p.last_price.map(|x| x.to_string()).unwrap_or_default()
        );
    }
    h.push_str("</table>");

    let shown = l.trips.len().min(500);
    let _ = write!(
        h,
        "<h2>Round trips</h2><p class=muted>{} in all{}; trades.csv has every one</p>",
        l.trips.len(),
        if shown < l.trips.len() { ", the first 500 shown" } else { "" }
    );
    h.push_str("<table><tr><th>symbol</th><th>direction</th><th>opened</th><th>closed</th><th>max qty</th><th>gross</th><th>costs</th><th>net</th></tr>");
    for tr in &l.trips[..shown] {
        let class = if tr.net.0 < 0 { "neg" } else { "pos" };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class={class}>{}</td></tr>",
            esc(o.symbols.symbol(tr.sym).as_str()),
            if tr.direction > 0 { "long" } else { "short" },
            clock::from_nanos(tr.open_ts).format("%Y-%m-%d %H:%M:%S"),
            clock::from_nanos(tr.close_ts).format("%Y-%m-%d %H:%M:%S"),
            tr.max_quantity,
            tr.gross,
            tr.costs,
            tr.net
        );
    }
    h.push_str("</table>");

    h.push_str("<h2>Income tax (estimate)</h2>");
    let _ = write!(h, "<p class=muted>{}</p>", esc(s.tax_estimate.note));
    h.push_str("<table><tr><th>month</th><th>day-trade result</th><th>swing result</th><th>stock sales</th><th>exempt</th><th>day-trade tax</th><th>swing tax</th></tr>");
    for m in &s.tax_estimate.months {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            m.month,
            m.day_trade_result,
            m.swing_result,
            m.stock_sales,
            if m.stock_exempt { "yes" } else { "no" },
            m.day_trade_tax,
            m.swing_tax
        );
    }
    h.push_str("</table><p class=muted>Metric definitions: docs/backtesting.md. Times are UTC; the charts run over market time (nights and weekends left out).</p></body></html>\n");
    h
}

/// The first and last trading dates of a summary, for file names and listings.
pub fn dates(s: &Summary) -> Option<(NaiveDate, NaiveDate)> {
    let d = |t: &Option<String>| {
        t.as_deref()
            .and_then(|x| chrono::DateTime::parse_from_rfc3339(x).ok())
            .map(|x| x.with_timezone(&chrono_tz::America::Sao_Paulo).date_naive())
    };
    Some((d(&s.first_event)?, d(&s.last_event)?))
}
