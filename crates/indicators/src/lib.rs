//! Streaming indicators. Each takes one observation at a time and answers without allocating, in O(1) (Bollinger:
//! O(period), for an exact deviation), so a strategy can keep several on every tick of a backtest. Values are `f64`: an indicator is a signal, never money
//! (orders are priced on the instrument's tick grid by the strategy, from `domain::Price`).
//!
//! Every indicator answers `None` until it has seen enough data (its `period`), never a value computed from less.
//! Conventions, where platforms differ: EMA is seeded with the SMA of its first `period` values; RSI and ATR use
//! Wilder's smoothing (seeded with the plain mean of the first `period` changes / true ranges); Bollinger bands use
//! the population standard deviation; VWAP is cumulative until [`Vwap::reset`] (call it at each session).
//!
//! No crate was used: the candidates (`ta`, unmaintained since 2022) lack VWAP and Donchian channels, and these
//! are a few dozen lines each, tested against values computed from the definitions.

use std::collections::VecDeque;

/// The last `period` values, in a ring: a push is a store and an index step, nothing moves.
#[derive(Debug, Clone)]
struct Window {
    values: Vec<f64>,
    /// Where the oldest value is, once the window is full.
    head: usize,
    period: usize,
}

impl Window {
    fn new(period: usize) -> Window {
        let period = period.max(1);
        Window { values: Vec::with_capacity(period), head: 0, period }
    }

    /// Pushes `x`; returns the value that fell out, if the window was full.
    #[inline]
    fn push(&mut self, x: f64) -> Option<f64> {
        if self.values.len() < self.period {
            self.values.push(x);
            return None;
        }
        let out = std::mem::replace(&mut self.values[self.head], x);
        self.head += 1;
        if self.head == self.period {
            self.head = 0;
        }
        Some(out)
    }

    fn full(&self) -> bool {
        self.values.len() == self.period
    }
}

#[derive(Debug, Clone)]
pub struct Sma {
    window: Window,
    sum: f64,
    /// Updates since the sum was last recomputed: a running sum drifts by rounding over millions of updates.
    since_exact: u32,
}

impl Sma {
    pub fn new(period: usize) -> Sma {
        Sma { window: Window::new(period), sum: 0.0, since_exact: 0 }
    }

    pub fn period(&self) -> usize {
        self.window.period
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.sum += x;
        if let Some(out) = self.window.push(x) {
            self.sum -= out;
        }
        self.since_exact += 1;
        if self.since_exact >= 4096 {
            self.sum = self.window.values.iter().sum();
            self.since_exact = 0;
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        self.window.full().then(|| self.sum / self.window.period as f64)
    }
}

/// Exponential moving average with `alpha = 2 / (period + 1)`, seeded with the SMA of the first `period` values.
#[derive(Debug, Clone)]
pub struct Ema {
    alpha: f64,
    seed: Sma,
    value: Option<f64>,
}

impl Ema {
    pub fn new(period: usize) -> Ema {
        let period = period.max(1);
        Ema { alpha: 2.0 / (period as f64 + 1.0), seed: Sma::new(period), value: None }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.value = match self.value {
            Some(prev) => Some(prev + self.alpha * (x - prev)),
            None => self.seed.update(x),
        };
        self.value
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Wilder's smoothing: the plain mean of the first `period` values, then `(prev × (period − 1) + x) / period`.
#[derive(Debug, Clone)]
struct Wilder {
    period: f64,
    seen: usize,
    sum: f64,
    value: Option<f64>,
}

impl Wilder {
    fn new(period: usize) -> Wilder {
        Wilder { period: period.max(1) as f64, seen: 0, sum: 0.0, value: None }
    }

    fn update(&mut self, x: f64) -> Option<f64> {
        self.value = match self.value {
            Some(prev) => Some((prev * (self.period - 1.0) + x) / self.period),
            None => {
                self.seen += 1;
                self.sum += x;
                (self.seen as f64 >= self.period).then(|| self.sum / self.period)
            }
        };
        self.value
    }
}

/// Relative strength index (Wilder), 0 to 100; 100 when there were no losses over the period.
#[derive(Debug, Clone)]
pub struct Rsi {
    gains: Wilder,
    losses: Wilder,
    last: Option<f64>,
}

impl Rsi {
    pub fn new(period: usize) -> Rsi {
        Rsi { gains: Wilder::new(period), losses: Wilder::new(period), last: None }
    }

    pub fn update(&mut self, close: f64) -> Option<f64> {
        let prev = self.last.replace(close)?;
        let change = close - prev;
        let gain = self.gains.update(change.max(0.0));
        let loss = self.losses.update((-change).max(0.0));
        match (gain, loss) {
            (Some(_), Some(0.0)) => Some(100.0),
            (Some(g), Some(l)) => Some(100.0 - 100.0 / (1.0 + g / l)),
            _ => None,
        }
    }
}

/// Volume-weighted average price since the last [`Vwap::reset`].
#[derive(Debug, Clone, Default)]
pub struct Vwap {
    value_traded: f64,
    volume: f64,
}

impl Vwap {
    pub fn new() -> Vwap {
        Vwap::default()
    }

    pub fn update(&mut self, price: f64, volume: f64) -> Option<f64> {
        if volume > 0.0 {
            self.value_traded += price * volume;
            self.volume += volume;
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        (self.volume > 0.0).then(|| self.value_traded / self.volume)
    }

    /// Starts over (a new session).
    pub fn reset(&mut self) {
        *self = Vwap::default();
    }
}

/// Bollinger bands: the SMA of `period` values ± `k` population standard deviations.
#[derive(Debug, Clone)]
pub struct Bollinger {
    window: Window,
    k: f64,
}

/// Lower band, middle (the SMA) and upper band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    pub lower: f64,
    pub middle: f64,
    pub upper: f64,
}

impl Bollinger {
    pub fn new(period: usize, k: f64) -> Bollinger {
        Bollinger { window: Window::new(period), k }
    }

    pub fn update(&mut self, x: f64) -> Option<Bands> {
        self.window.push(x);
        if !self.window.full() {
            return None;
        }
        // Two passes over the window: exact, and the window is small next to the work a tick already does.
        let n = self.window.period as f64;
        let mean = self.window.values.iter().sum::<f64>() / n;
        let var = self.window.values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let width = self.k * var.sqrt();
        Some(Bands { lower: mean - width, middle: mean, upper: mean + width })
    }
}

/// Average true range (Wilder) over bars.
#[derive(Debug, Clone)]
pub struct Atr {
    smooth: Wilder,
    prev_close: Option<f64>,
}

impl Atr {
    pub fn new(period: usize) -> Atr {
        Atr { smooth: Wilder::new(period), prev_close: None }
    }

    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let range = high - low;
        let tr = match self.prev_close.replace(close) {
            Some(pc) => range.max((high - pc).abs()).max((low - pc).abs()),
            None => range,
        };
        self.smooth.update(tr)
    }
}

/// The highest and lowest value over the last `period` observations (a Donchian channel), amortised O(1) with
/// monotonic queues.
#[derive(Debug, Clone)]
pub struct Donchian {
    period: u64,
    n: u64,
    highs: VecDeque<(u64, f64)>,
    lows: VecDeque<(u64, f64)>,
}

impl Donchian {
    pub fn new(period: usize) -> Donchian {
        let period = period.max(1) as u64;
        Donchian { period, n: 0, highs: VecDeque::new(), lows: VecDeque::new() }
    }

    /// Adds an observation (a bar's high and low, or a price twice); returns `(lowest, highest)` over the window
    /// once it is full.
    pub fn update(&mut self, high: f64, low: f64) -> Option<(f64, f64)> {
        let i = self.n;
        self.n += 1;
        while self.highs.back().is_some_and(|&(_, h)| h <= high) {
            self.highs.pop_back();
        }
        self.highs.push_back((i, high));
        while self.lows.back().is_some_and(|&(_, l)| l >= low) {
            self.lows.pop_back();
        }
        self.lows.push_back((i, low));
        let oldest = self.n.saturating_sub(self.period);
        while self.highs.front().is_some_and(|&(j, _)| j < oldest) {
            self.highs.pop_front();
        }
        while self.lows.front().is_some_and(|&(j, _)| j < oldest) {
            self.lows.pop_front();
        }
        self.value()
    }

    pub fn value(&self) -> Option<(f64, f64)> {
        if self.n < self.period {
            return None;
        }
        Some((self.lows.front()?.1, self.highs.front()?.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closes of StockCharts' RSI worksheet (ChartSchool, "Relative Strength Index").
    const CLOSES: [f64; 20] = [
        44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61, 46.28, 46.28, 46.00,
        46.03, 46.41, 46.22, 45.64,
    ];

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    #[test]
    fn sma_and_its_window() {
        let mut s = Sma::new(3);
        assert_eq!((s.update(1.0), s.update(2.0)), (None, None), "nothing before the window is full");
        assert_eq!(s.update(6.0), Some(3.0));
        assert_eq!(s.update(10.0), Some(6.0));
        // Millions of updates do not drift: the sum is recomputed now and then.
        let mut s = Sma::new(100);
        for i in 0..1_000_000 {
            s.update(1e6 + (i % 7) as f64 * 0.1);
        }
        let exact: f64 = (1_000_000 - 100..1_000_000).map(|i| 1e6 + (i % 7) as f64 * 0.1).sum::<f64>() / 100.0;
        assert!(close(s.value().unwrap(), exact, 1e-6));
    }

    #[test]
    fn ema_seeded_with_the_sma() {
        // From the definition: seed = mean of the first 10 closes = 44.779, then alpha = 2/11.
        let mut e = Ema::new(10);
        let got: Vec<f64> = CLOSES.iter().filter_map(|&c| e.update(c)).collect();
        let want = [44.779, 44.981, 45.171727, 45.251413, 45.438429, 45.591442, 45.665725, 45.731957, 45.855238];
        for (g, w) in got.iter().zip(want) {
            assert!(close(*g, w, 1e-5), "{got:?}");
        }
        assert_eq!(got.len(), 11);
    }

    #[test]
    fn rsi_on_the_stockcharts_worksheet() {
        let mut r = Rsi::new(14);
        let got: Vec<f64> = CLOSES.iter().filter_map(|&c| r.update(c)).collect();
        // Exact from Wilder's definition.
        let want = [70.4641, 66.2496, 66.4809, 69.3469, 66.2947, 57.9150];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(close(*g, w, 1e-3), "{got:?}");
        }
        // StockCharts publishes 70.53, 66.32, 66.55, 69.41, 66.36, 57.97: it rounds the averages to two decimals
        // on the way, which moves the result by less than 0.1.
        for (g, w) in got.iter().zip([70.53, 66.32, 66.55, 69.41, 66.36, 57.97]) {
            assert!(close(*g, w, 0.1), "{g} vs StockCharts {w}");
        }
        let mut up = Rsi::new(3);
        let last = [1.0, 2.0, 3.0, 4.0].iter().filter_map(|&c| up.update(c)).last();
        assert_eq!(last, Some(100.0), "no losses");
    }

    #[test]
    fn vwap_weights_by_volume_and_resets() {
        let mut v = Vwap::new();
        assert_eq!(v.value(), None);
        v.update(10.0, 100.0);
        assert_eq!(v.update(13.0, 200.0), Some(12.0));
        assert_eq!(v.update(99.0, 0.0), Some(12.0), "no volume, no weight");
        v.reset();
        assert_eq!(v.value(), None);
    }

    #[test]
    fn bollinger_with_the_population_deviation() {
        let mut b = Bollinger::new(5, 2.0);
        let got: Vec<Bands> = CLOSES.iter().filter_map(|&c| b.update(c)).collect();
        let first = got[0];
        assert!(close(first.lower, 43.572496, 1e-5) && close(first.middle, 44.104, 1e-9));
        assert!(close(first.upper, 44.635504, 1e-5));
        let last = got[got.len() - 1];
        assert!(
            close(last.lower, 45.54697, 1e-5) && close(last.middle, 46.06, 1e-9) && close(last.upper, 46.57303, 1e-5)
        );
    }

    #[test]
    fn atr_with_wilder_smoothing() {
        let bars = [
            (10.0, 9.0, 9.5),
            (11.0, 9.5, 10.8),
            (12.0, 10.5, 11.2),
            (11.5, 10.0, 10.2),
            (13.0, 11.0, 12.8),
            (12.5, 11.8, 12.0),
        ];
        let mut a = Atr::new(3);
        let got: Vec<f64> = bars.iter().filter_map(|&(h, l, c)| a.update(h, l, c)).collect();
        // True ranges 1, 1.5, 1.5, 1.5, 2.8 (a gap over the last close counts), 1.0.
        for (g, w) in got.iter().zip([1.333333, 1.388889, 1.859259, 1.57284]) {
            assert!(close(*g, w, 1e-5), "{got:?}");
        }
    }

    #[test]
    fn donchian_tracks_the_window_extremes() {
        let mut d = Donchian::new(3);
        let prices = [5.0, 3.0, 4.0, 8.0, 2.0, 6.0, 7.0];
        let got: Vec<(f64, f64)> = prices.iter().filter_map(|&p| d.update(p, p)).collect();
        assert_eq!(got, vec![(3.0, 5.0), (3.0, 8.0), (2.0, 8.0), (2.0, 8.0), (2.0, 7.0)]);
    }
}
