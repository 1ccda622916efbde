//! Performance metrics, with the definitions `docs/backtesting.md` states (they follow
//! `../shared/spec/backtesting.md`): returns are daily on the São Paulo trading date, 252 trading days a year.

use serde::Serialize;

pub const TRADING_DAYS: f64 = 252.0;

/// Figures from the daily equity series.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReturnMetrics {
    pub days: usize,
    pub total_return: f64,
    pub cagr: f64,
    pub volatility: f64,
    pub sharpe: Option<f64>,
    pub sharpe_cdi: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: f64,
    /// Trading days from the peak before the deepest drawdown until it was recovered (or the end).
    pub max_drawdown_days: usize,
    pub calmar: Option<f64>,
}

/// Daily returns of an equity series that starts from `initial`.
pub fn daily_returns(initial: f64, equity: &[f64]) -> Vec<f64> {
    let mut prev = initial;
    equity
        .iter()
        .map(|&e| {
            let r = if prev != 0.0 { e / prev - 1.0 } else { 0.0 };
            prev = e;
            r
        })
        .collect()
}

fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        0.0
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

/// Sample standard deviation (n − 1).
fn std_dev(x: &[f64]) -> Option<f64> {
    if x.len() < 2 {
        return None;
    }
    let m = mean(x);
    Some((x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64).sqrt())
}

/// `cdi` is the annual CDI rate (0.1065 for 10.65 %).
pub fn return_metrics(initial: f64, equity: &[f64], cdi: f64) -> ReturnMetrics {
    let r = daily_returns(initial, equity);
    let days = r.len();
    let last = equity.last().copied().unwrap_or(initial);
    let total_return = if initial != 0.0 { last / initial - 1.0 } else { 0.0 };
    let growth: f64 = r.iter().map(|x| 1.0 + x).product();
    let cagr = if days > 0 && growth > 0.0 { growth.powf(TRADING_DAYS / days as f64) - 1.0 } else { 0.0 };
    let sd = std_dev(&r);
    let sharpe_with = |rf_d: f64| -> Option<f64> {
        let excess: Vec<f64> = r.iter().map(|x| x - rf_d).collect();
        sd.filter(|s| *s > 0.0).map(|s| mean(&excess) / s * TRADING_DAYS.sqrt())
    };
    let rf_d = (1.0 + cdi).powf(1.0 / TRADING_DAYS) - 1.0;
    let downside = (r.iter().filter(|x| **x < 0.0).map(|x| x * x).sum::<f64>() / days.max(1) as f64).sqrt();
    let sortino = (downside > 0.0).then(|| mean(&r) / downside * TRADING_DAYS.sqrt());
    let (max_drawdown, max_drawdown_days) = drawdown(initial, equity);
    ReturnMetrics {
        days,
        total_return,
        cagr,
        volatility: sd.unwrap_or(0.0) * TRADING_DAYS.sqrt(),
        sharpe: sharpe_with(0.0),
        sharpe_cdi: sharpe_with(rf_d),
        sortino,
        max_drawdown,
        max_drawdown_days,
        calmar: (max_drawdown > 0.0).then(|| cagr / max_drawdown),
    }
}

/// The deepest (peak − equity) / peak, the peak starting at `initial`, and how many days that drawdown lasted.
pub fn drawdown(initial: f64, equity: &[f64]) -> (f64, usize) {
    let (mut peak, mut peak_at) = (initial, 0usize);
    let (mut worst, mut worst_peak_at) = (0.0f64, None::<usize>);
    let mut longest = 0usize;
    for (i, &e) in equity.iter().enumerate() {
        let day = i + 1;
        if e >= peak {
            if worst_peak_at == Some(peak_at) {
                // The deepest drawdown so far ended here.
                longest = day - peak_at;
            }
            peak = e;
            peak_at = day;
            continue;
        }
        let dd = if peak > 0.0 { (peak - e) / peak } else { 0.0 };
        if dd > worst {
            worst = dd;
            worst_peak_at = Some(peak_at);
        }
    }
    if let Some(p) = worst_peak_at {
        if p == peak_at {
            // Not recovered by the end.
            longest = equity.len() - p;
        }
    }
    (worst, longest)
}

/// Figures over round trips, net of costs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TradeMetrics {
    pub trades: usize,
    pub wins: usize,
    pub losses: usize,
    /// Round trips with a P&L of exactly zero: neither wins nor losses.
    pub flat: usize,
    pub win_rate: Option<f64>,
    pub profit_factor: Option<f64>,
    pub expectancy: Option<f64>,
    pub average_win: Option<f64>,
    pub average_loss: Option<f64>,
    pub gross_profit: f64,
    pub gross_loss: f64,
}

/// `pnl` is each round trip's net P&L in R$.
pub fn trade_metrics(pnl: &[f64]) -> TradeMetrics {
    let wins: Vec<f64> = pnl.iter().copied().filter(|p| *p > 0.0).collect();
    let losses: Vec<f64> = pnl.iter().copied().filter(|p| *p < 0.0).collect();
    let gross_profit: f64 = wins.iter().sum();
    let gross_loss: f64 = losses.iter().sum();
    let n = pnl.len();
    TradeMetrics {
        trades: n,
        wins: wins.len(),
        losses: losses.len(),
        flat: n - wins.len() - losses.len(),
        win_rate: (n > 0).then(|| wins.len() as f64 / n as f64),
        profit_factor: (gross_loss < 0.0).then(|| gross_profit / gross_loss.abs()),
        expectancy: (n > 0).then(|| mean(pnl)),
        average_win: (!wins.is_empty()).then(|| mean(&wins)),
        average_loss: (!losses.is_empty()).then(|| mean(&losses)),
        gross_profit,
        gross_loss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn metrics_of_a_small_series_by_hand() {
        // 100 → 110 → 99 → 104.5 → 115: returns +10 %, −10 %, +5.5556 %, +10.0478 %.
        let eq = [110.0, 99.0, 104.5, 115.0];
        let m = return_metrics(100.0, &eq, 0.0);
        let r = [0.1, -0.1, 104.5 / 99.0 - 1.0, 115.0 / 104.5 - 1.0];
        let mean = r.iter().sum::<f64>() / 4.0;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!(close(m.total_return, 0.15));
        assert!(close(m.sharpe.unwrap(), mean / sd * 252f64.sqrt()));
        assert!(close(m.sharpe_cdi.unwrap(), m.sharpe.unwrap()), "CDI 0 is rf 0");
        // Sortino: only −10 % is downside; √(0.01 / 4) = 0.05.
        assert!(close(m.sortino.unwrap(), mean / 0.05 * 252f64.sqrt()));
        // Peak 110 → 99: 10 %; from day 1 (the peak) to day 4 (recovered above 110): 3 days.
        assert!(close(m.max_drawdown, 0.1));
        assert_eq!(m.max_drawdown_days, 3);
        assert!(close(m.cagr, 1.15f64.powf(252.0 / 4.0) - 1.0));
        assert!(close(m.calmar.unwrap(), m.cagr / 0.1));
        assert!(close(m.volatility, sd * 252f64.sqrt()));

        let with_cdi = return_metrics(100.0, &eq, 0.1065);
        let rf = 1.1065f64.powf(1.0 / 252.0) - 1.0;
        assert!(close(with_cdi.sharpe_cdi.unwrap(), (mean - rf) / sd * 252f64.sqrt()));
    }

    #[test]
    fn an_unrecovered_drawdown_lasts_to_the_end() {
        assert_eq!(drawdown(100.0, &[100.0, 90.0, 95.0]), (0.1, 2));
        assert_eq!(drawdown(100.0, &[]), (0.0, 0));
        assert_eq!(drawdown(100.0, &[101.0, 102.0]), (0.0, 0));
    }

    #[test]
    fn trade_figures_keep_zero_apart() {
        let t = trade_metrics(&[100.0, -50.0, 0.0, 30.0]);
        assert_eq!((t.trades, t.wins, t.losses, t.flat), (4, 2, 1, 1));
        assert!(close(t.win_rate.unwrap(), 0.5));
        assert!(close(t.profit_factor.unwrap(), 130.0 / 50.0));
        assert!(close(t.expectancy.unwrap(), 20.0));
        assert!(close(t.average_win.unwrap(), 65.0) && close(t.average_loss.unwrap(), -50.0));
        assert_eq!(trade_metrics(&[]).win_rate, None);
    }
}
