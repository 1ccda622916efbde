//! B3 trading costs and an income-tax estimate, from `../shared/spec/backtesting.md`.
//!
//! Defaults (individuals, first tier; sources: B3's published fee tables for equities and for mini futures):
//! - equities (stocks, ETFs, FIIs, BDRs): 0.0300 % of traded value per side normally (0.0050 % trading +
//!   0.0250 % settlement), 0.0230 % for day trades;
//! - WIN: R$ 0.394 per contract per side, R$ 0.256 day trade; WDO: US$ 0.2425, US$ 0.204 day trade, converted at
//!   the day's dollar rate (the day's last WDO price / 1000, WDO being quoted in R$ per US$ 1,000);
//! - brokerage per order, as a percentage, and ISS on brokerage: 0.
//!
//! Whether quantity is day trade is known only at the end of the day: min(bought, sold) of one instrument that day
//! is day trade, the rest normal. Fees are charged provisionally at the normal rate per fill and settled by
//! [`CostModel::settle_day`]. Rates are schedules with a `valid_from` date, so a fee change is configuration.

use chrono::NaiveDate;
use domain::order::Side;
use domain::price::div_round;
use domain::{Instrument, InstrumentKind, Money, Price, Qty};
use serde::{Deserialize, Serialize};

/// Parts per million of traded value: 0.0300 % is 300.
pub type Ppm = i64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuturesFee {
    /// The contract root: `WIN`, `WDO`.
    pub root: String,
    /// Per contract per side.
    pub normal: Money,
    pub day_trade: Money,
    /// Whether the amounts are in US dollars (WDO).
    #[serde(default)]
    pub usd: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeSchedule {
    pub valid_from: NaiveDate,
    pub equity_normal_ppm: Ppm,
    pub equity_day_trade_ppm: Ppm,
    pub futures: Vec<FuturesFee>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// The schedule of a trade is the latest whose `valid_from` is on or before its date.
    pub schedules: Vec<FeeSchedule>,
    pub brokerage_per_order: Money,
    pub brokerage_ppm: Ppm,
    /// ISS on brokerage, in ppm of the brokerage (5 % is 50,000).
    pub iss_ppm: Ppm,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            schedules: vec![FeeSchedule {
                valid_from: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default(),
                equity_normal_ppm: 300,
                equity_day_trade_ppm: 230,
                futures: vec![
                    FuturesFee { root: "WIN".into(), normal: Money(3_940), day_trade: Money(2_560), usd: false },
                    FuturesFee { root: "WDO".into(), normal: Money(2_425), day_trade: Money(2_040), usd: true },
                ],
            }],
            brokerage_per_order: Money::ZERO,
            brokerage_ppm: 0,
            iss_ppm: 0,
        }
    }
}

/// One fill of a day, as the cost model reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayFill {
    pub side: Side,
    pub quantity: Qty,
    pub price: Price,
    /// Traded value in R$ (price × quantity × multiplier).
    pub value: Money,
    /// The first fill of its order (brokerage per order is charged once).
    pub first_of_order: bool,
}

/// What one fill costs once the day is settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FillCost {
    /// The part of the fill's quantity that is day trade.
    pub day_trade_qty: Qty,
    pub exchange: Money,
    pub brokerage: Money,
}

impl FillCost {
    pub fn total(&self) -> Money {
        self.exchange + self.brokerage
    }
}

/// The day's settlement of one instrument.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaySettlement {
    pub costs: Vec<FillCost>,
    pub day_trade_qty: Qty,
    /// Fees on the day-trade part and on the rest.
    pub day_trade_fees: Money,
    pub normal_fees: Money,
    /// (average sell − average buy) × day-trade quantity, before fees.
    pub day_trade_result: Money,
    /// Value of the normal (not day-trade) part of the sales.
    pub normal_sales: Money,
    /// A futures root with no fee in the schedule (charged nothing, reported).
    pub unknown_fee: Option<String>,
}

fn money(v: i128) -> Money {
    Money(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

impl CostModel {
    fn schedule(&self, date: NaiveDate) -> Option<&FeeSchedule> {
        self.schedules.iter().filter(|s| s.valid_from <= date).max_by_key(|s| s.valid_from)
    }

    /// What a fill costs before the day is known (all of it normal, no day trade).
    pub fn provisional(&self, date: NaiveDate, inst: &Instrument, f: &DayFill, usd_brl: Option<Price>) -> Money {
        let s = self.settle_day(date, inst, std::slice::from_ref(f), usd_brl);
        s.costs.first().map(FillCost::total).unwrap_or_default()
    }

    /// Settles one instrument's fills of `date`: splits day-trade quantity from normal, prices both, and computes the
    /// day-trade result for the tax estimate. `usd_brl` is the day's R$ per US$ (for fees in dollars).
    pub fn settle_day(
        &self,
        date: NaiveDate,
        inst: &Instrument,
        fills: &[DayFill],
        usd_brl: Option<Price>,
    ) -> DaySettlement {
        let mut out = DaySettlement::default();
        let total = |side: Side| fills.iter().filter(|f| f.side == side).map(|f| i128::from(f.quantity)).sum::<i128>();
        let value = |side: Side| fills.iter().filter(|f| f.side == side).map(|f| f.value.0 as i128).sum::<i128>();
        let (bought, sold) = (total(Side::Buy), total(Side::Sell));
        let dt = bought.min(sold);
        out.day_trade_qty = Qty(dt as i64);
        if dt > 0 {
            // Average sell − average buy, over the day-trade quantity.
            let r = div_round(dt * (value(Side::Sell) * bought - value(Side::Buy) * sold), bought * sold);
            out.day_trade_result = money(r);
        }
        let schedule = self.schedule(date);
        // The day-trade quantity of a side goes to its first fills of the day: what is left over, carried overnight,
        // is the latest quantity traded.
        let mut dt_left = [dt, dt];
        for f in fills {
            let slot = if f.side == Side::Buy { 0 } else { 1 };
            let q = i128::from(f.quantity);
            let dt_q = q.min(dt_left[slot]);
            dt_left[slot] -= dt_q;
            let normal_q = q - dt_q;
            let (dt_fee, normal_fee) = match (inst.kind, schedule) {
                (_, None) => (0, 0),
                (InstrumentKind::Future, Some(s)) => {
                    match s.futures.iter().find(|ff| inst.symbol.as_str().starts_with(ff.root.as_str())) {
                        Some(ff) => {
                            let rate = |m: Money| -> i128 {
                                if ff.usd {
                                    // US$ × (R$ per US$): WDO's price is R$ per US$ 1,000.
                                    let r = usd_brl.map(|p| p.units() as i128).unwrap_or(0);
                                    div_round(m.0 as i128 * r, 1000 * domain::PRICE_SCALE as i128)
                                } else {
                                    m.0 as i128
                                }
                            };
                            (dt_q * rate(ff.day_trade), normal_q * rate(ff.normal))
                        }
                        None => {
                            out.unknown_fee = Some(inst.symbol.to_string());
                            (0, 0)
                        }
                    }
                }
                (_, Some(s)) => {
                    let v = f.value.0 as i128;
                    let part =
                        |qq: i128, ppm: Ppm| if q == 0 { 0 } else { div_round(v * qq * ppm as i128, q * 1_000_000) };
                    (part(dt_q, s.equity_day_trade_ppm), part(normal_q, s.equity_normal_ppm))
                }
            };
            let mut brokerage = div_round(f.value.0 as i128 * self.brokerage_ppm as i128, 1_000_000);
            if f.first_of_order {
                brokerage += self.brokerage_per_order.0 as i128;
            }
            brokerage += div_round(brokerage * self.iss_ppm as i128, 1_000_000);
            // Brokerage follows the quantity split too, for the tax buckets.
            let (b_dt, b_normal) = if q == 0 {
                (0, brokerage)
            } else {
                (div_round(brokerage * dt_q, q), brokerage - div_round(brokerage * dt_q, q))
            };
            out.day_trade_fees += money(dt_fee + b_dt);
            out.normal_fees += money(normal_fee + b_normal);
            if f.side == Side::Sell && q > 0 {
                out.normal_sales += money(div_round(f.value.0 as i128 * normal_q, q));
            }
            out.costs.push(FillCost {
                day_trade_qty: Qty(dt_q as i64),
                exchange: money(dt_fee + normal_fee),
                brokerage: money(brokerage),
            });
        }
        out
    }
}

/// One month of the income-tax estimate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MonthTax {
    /// `YYYY-MM`.
    pub month: String,
    /// Net of fees.
    pub day_trade_result: Money,
    pub swing_result: Money,
    /// Sales of stocks outside day trades (the R$ 20,000 exemption reads this).
    pub stock_sales: Money,
    pub stock_exempt: bool,
    pub day_trade_tax: Money,
    pub swing_tax: Money,
}

/// Brazilian income tax on trading, estimated month by month: day trade 20 % of the month's net result, normal
/// trades 15 %, the net gain on spot stocks exempt in a month whose stock sales are at most R$ 20,000; losses carry
/// forward within their bucket. An estimate for a report, not tax advice (withholdings and DARF are not modelled).
#[derive(Debug, Clone, Default)]
pub struct TaxEstimator {
    months: std::collections::BTreeMap<String, MonthAcc>,
}

#[derive(Debug, Clone, Default)]
struct MonthAcc {
    day_trade: Money,
    swing_stock: Money,
    swing_other: Money,
    stock_sales: Money,
}

pub const EXEMPT_STOCK_SALES: Money = Money(20_000 * domain::PRICE_SCALE);

impl TaxEstimator {
    /// Books one instrument's day: its realized P&L that day and its settlement.
    pub fn add_day(&mut self, date: NaiveDate, inst: &Instrument, realized: Money, s: &DaySettlement) {
        let m = self.months.entry(date.format("%Y-%m").to_string()).or_default();
        m.day_trade += s.day_trade_result - s.day_trade_fees;
        let swing = realized - s.day_trade_result - s.normal_fees;
        if inst.kind == InstrumentKind::Stock {
            m.swing_stock += swing;
            m.stock_sales += s.normal_sales;
        } else {
            m.swing_other += swing;
        }
    }

    pub fn months(&self) -> Vec<MonthTax> {
        let (mut dt_carry, mut swing_carry) = (Money::ZERO, Money::ZERO);
        let mut out = Vec::new();
        for (month, m) in &self.months {
            let exempt = m.stock_sales <= EXEMPT_STOCK_SALES && m.swing_stock.0 > 0;
            let swing = if exempt { m.swing_other } else { m.swing_stock + m.swing_other };
            let tax = |result: Money, carry: &mut Money, pct: i128| -> Money {
                let net = result + *carry;
                if net.0 >= 0 {
                    *carry = Money::ZERO;
                    money(div_round(net.0 as i128 * pct, 100))
                } else {
                    *carry = net;
                    Money::ZERO
                }
            };
            out.push(MonthTax {
                month: month.clone(),
                day_trade_result: m.day_trade,
                swing_result: m.swing_stock + m.swing_other,
                stock_sales: m.stock_sales,
                stock_exempt: exempt,
                day_trade_tax: tax(m.day_trade, &mut dt_carry, 20),
                swing_tax: tax(swing, &mut swing_carry, 15),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn inst(symbol: &'static str) -> Instrument {
        domain::Instruments::b3_defaults(d("2025-03-10"))
            .iter()
            .find(|i| i.symbol.as_str().starts_with(symbol))
            .cloned()
            .unwrap()
    }

    fn fill(side: Side, qty: i64, price: i64, inst: &Instrument) -> DayFill {
        let value = domain::price::notional(Price(price), Qty(qty), inst.multiplier).unwrap();
        DayFill { side, quantity: Qty(qty), price: Price(price), value, first_of_order: true }
    }

    #[test]
    fn petr4_day_trade_is_4_60_on_10000_each_way() {
        let petr = inst("PETR4");
        let fills = [fill(Side::Buy, 1000, 100_000, &petr), fill(Side::Sell, 1000, 100_000, &petr)];
        let s = CostModel::default().settle_day(d("2025-03-10"), &petr, &fills, None);
        assert_eq!(s.day_trade_qty, Qty(1000));
        assert_eq!(s.day_trade_fees, Money::parse_decimal("4.60").unwrap());
        assert_eq!(s.normal_fees, Money::ZERO);
        assert_eq!(
            s.costs.iter().map(|c| c.total()).fold(Money::ZERO, |a, b| a + b),
            Money::parse_decimal("4.60").unwrap()
        );
    }

    #[test]
    fn win_day_trade_per_contract_and_a_partial_day_trade() {
        let win = inst("WIN");
        // Buy 3, sell 1: one contract each way is day trade, two bought contracts are normal.
        let fills = [fill(Side::Buy, 3, 1_300_000_000, &win), fill(Side::Sell, 1, 1_300_500_000, &win)];
        let s = CostModel::default().settle_day(d("2025-03-10"), &win, &fills, None);
        assert_eq!(s.day_trade_qty, Qty(1));
        assert_eq!(s.day_trade_fees, Money::parse_decimal("0.512").unwrap(), "2 × R$ 0.256");
        assert_eq!(s.normal_fees, Money::parse_decimal("0.788").unwrap(), "2 × R$ 0.394");
        // 50 points × R$ 0.20 on the one day-traded contract.
        assert_eq!(s.day_trade_result, Money::from_brl(10));
        assert_eq!(s.costs[0].day_trade_qty, Qty(1));
    }

    #[test]
    fn wdo_fees_convert_at_the_day_dollar() {
        let wdo = inst("WDO");
        let fills = [fill(Side::Buy, 1, 55_000_000, &wdo), fill(Side::Sell, 1, 55_010_000, &wdo)];
        let s = CostModel::default().settle_day(d("2025-03-10"), &wdo, &fills, Some(Price(55_000_000)));
        // 2 × US$ 0.204 × 5.5 = R$ 2.244
        assert_eq!(s.day_trade_fees, Money::parse_decimal("2.244").unwrap());
    }

    #[test]
    fn swing_petr4_and_the_20000_exemption() {
        let petr = inst("PETR4");
        let m = CostModel::default();
        let mut tax = TaxEstimator::default();
        // Day 1 buys R$ 10,000; day 2 sells it for R$ 11,000.
        let buy = m.settle_day(d("2025-03-10"), &petr, &[fill(Side::Buy, 1000, 100_000, &petr)], None);
        assert_eq!(buy.normal_fees, Money::from_brl(3), "0.03 % of R$ 10,000");
        tax.add_day(d("2025-03-10"), &petr, Money::ZERO, &buy);
        let sell = m.settle_day(d("2025-03-11"), &petr, &[fill(Side::Sell, 1000, 110_000, &petr)], None);
        assert_eq!(sell.normal_fees, Money::parse_decimal("3.30").unwrap());
        tax.add_day(d("2025-03-11"), &petr, Money::from_brl(1000), &sell);
        let months = tax.months();
        assert_eq!(months[0].swing_result, Money::parse_decimal("993.70").unwrap());
        assert!(months[0].stock_exempt, "R$ 11,000 of sales is under R$ 20,000");
        assert_eq!(months[0].swing_tax, Money::ZERO);

        // The same trade at R$ 25,000 of sales pays 15 % of the net gain.
        let mut tax = TaxEstimator::default();
        tax.add_day(
            d("2025-03-10"),
            &petr,
            Money::ZERO,
            &m.settle_day(d("2025-03-10"), &petr, &[fill(Side::Buy, 2000, 120_000, &petr)], None),
        );
        let sell = m.settle_day(d("2025-03-11"), &petr, &[fill(Side::Sell, 2000, 125_000, &petr)], None);
        tax.add_day(d("2025-03-11"), &petr, Money::from_brl(1000), &sell);
        let m0 = &tax.months()[0];
        assert!(!m0.stock_exempt);
        // 1000 − 7.20 − 7.50 = 985.30; 15 % = 147.795
        assert_eq!(m0.swing_result, Money::parse_decimal("985.30").unwrap());
        assert_eq!(m0.swing_tax, Money::parse_decimal("147.795").unwrap());
    }

    #[test]
    fn losses_carry_forward_within_their_bucket() {
        let mut t = TaxEstimator::default();
        let petr = inst("PETR4");
        let dt = |r: i64| DaySettlement {
            day_trade_result: Money::from_brl(r),
            day_trade_qty: Qty(100),
            ..Default::default()
        };
        t.add_day(d("2025-03-10"), &petr, Money::from_brl(-500), &dt(-500));
        t.add_day(d("2025-04-10"), &petr, Money::from_brl(800), &dt(800));
        let m = t.months();
        assert_eq!((m[0].day_trade_tax, m[1].day_trade_tax), (Money::ZERO, Money::from_brl(60)), "20 % of 800 − 500");
    }

    #[test]
    fn a_fee_change_is_a_schedule() {
        let mut m = CostModel::default();
        let mut newer = m.schedules[0].clone();
        newer.valid_from = d("2025-06-01");
        newer.equity_day_trade_ppm = 95;
        m.schedules.push(newer);
        let petr = inst("PETR4");
        let fills = [fill(Side::Buy, 1000, 100_000, &petr), fill(Side::Sell, 1000, 100_000, &petr)];
        assert_eq!(
            m.settle_day(d("2025-05-30"), &petr, &fills, None).day_trade_fees,
            Money::parse_decimal("4.60").unwrap()
        );
        assert_eq!(
            m.settle_day(d("2025-06-02"), &petr, &fills, None).day_trade_fees,
            Money::parse_decimal("1.90").unwrap()
        );
    }
}
