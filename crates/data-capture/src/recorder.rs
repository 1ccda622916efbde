//! Writes the processed market data from the bus into Parquet ([`market_store`]).
//!
//! Everything is buffered in memory and written in batches (every few seconds, or sooner when a buffer grows
//! large), on a blocking thread so the async workers never wait on the disk. Book snapshots are sampled at most
//! once per symbol per second; one-minute candles are written when they close. [`Recorder::flush`] writes what is
//! buffered, including the bars still open; `serve` calls it on shutdown.

use bus::{Bus, Event};
use chrono::{DateTime, Utc};
use market_data::{BookSnapshot, Candle, Quote, Trade};
use market_store::ParquetStore;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

#[derive(Default)]
struct Buffers {
    trades: Vec<Trade>,
    quotes: Vec<Quote>,
    books: Vec<BookSnapshot>,
    candles: Vec<Candle>,
    open_bars: HashMap<String, Candle>,
    last_book: HashMap<String, DateTime<Utc>>,
}

impl Buffers {
    fn rows(&self) -> usize {
        self.trades.len() + self.quotes.len() + self.books.len() + self.candles.len()
    }

    fn take(&mut self, include_open_bars: bool) -> Buffers {
        let mut out = Buffers {
            trades: std::mem::take(&mut self.trades),
            quotes: std::mem::take(&mut self.quotes),
            books: std::mem::take(&mut self.books),
            candles: std::mem::take(&mut self.candles),
            ..Buffers::default()
        };
        if include_open_bars {
            out.candles.extend(self.open_bars.drain().map(|(_, c)| c));
        }
        out
    }

    fn add(&mut self, event: &Event) {
        match event {
            Event::Trade(t) => self.trades.push(t.clone()),
            Event::Quote(q) => self.quotes.push(q.clone()),
            Event::Book(b) => {
                let due = self.last_book.get(&b.symbol).is_none_or(|t| b.ts - *t >= chrono::Duration::seconds(1));
                if due {
                    self.last_book.insert(b.symbol.clone(), b.ts);
                    self.books.push(b.clone());
                }
            }
            Event::Candle(c) => {
                if let Some(open) = self.open_bars.get(&c.symbol) {
                    if c.open_time > open.open_time {
                        // A new minute began: the previous bar is final.
                        self.candles.push(open.clone());
                    }
                }
                // Corrections to an already written minute are rare and go to the next part as a revised bar.
                let replace = self.open_bars.get(&c.symbol).is_none_or(|open| c.open_time >= open.open_time);
                if replace {
                    self.open_bars.insert(c.symbol.clone(), c.clone());
                } else {
                    self.candles.push(c.clone());
                }
            }
            _ => {}
        }
    }
}

fn write(store: &Mutex<ParquetStore>, b: Buffers) {
    let started = Instant::now();
    let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
    for (name, rows, result) in [
        ("trades", b.trades.len(), if b.trades.is_empty() { Ok(vec![]) } else { store.write_trades(&b.trades) }),
        ("quotes", b.quotes.len(), if b.quotes.is_empty() { Ok(vec![]) } else { store.write_quotes(&b.quotes) }),
        ("book_snapshots", b.books.len(), if b.books.is_empty() { Ok(vec![]) } else { store.write_books(&b.books) }),
        ("candles", b.candles.len(), if b.candles.is_empty() { Ok(vec![]) } else { store.write_candles(&b.candles) }),
    ] {
        match result {
            Ok(_) => metrics::counter!("ts_md_parquet_rows_total", "dataset" => name).increment(rows as u64),
            Err(e) => {
                metrics::counter!("ts_md_parquet_errors_total", "dataset" => name).increment(1);
                tracing::error!(dataset = name, rows, error = %e, "could not write market data to Parquet");
            }
        }
    }
    metrics::histogram!("ts_md_parquet_write_seconds").record(started.elapsed().as_secs_f64());
}

#[derive(Clone)]
pub struct Recorder {
    flush_tx: mpsc::Sender<oneshot::Sender<()>>,
}

impl Recorder {
    /// Subscribes to `md.>` and writes under `data_dir/market/`.
    pub fn start(bus: &Bus, data_dir: &Path, every: Duration, max_rows: usize) -> Result<Recorder, bus::BusError> {
        let mut sub = bus.subscribe("md.>", 262_144)?;
        let removed = market_store::clean_temporaries(data_dir);
        if removed > 0 {
            tracing::warn!(removed, "removed temporary Parquet files left by a crash");
        }
        let store = Arc::new(Mutex::new(ParquetStore::new(data_dir)));
        let (flush_tx, mut flush_rx) = mpsc::channel::<oneshot::Sender<()>>(4);
        tokio::spawn(async move {
            let mut buf = Buffers::default();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut reported_drops = 0;
            loop {
                tokio::select! {
                    d = sub.recv() => {
                        let Some(d) = d else { break };
                        buf.add(&d.event);
                        if buf.rows() >= max_rows {
                            let batch = buf.take(false);
                            let store = store.clone();
                            let _ = tokio::task::spawn_blocking(move || write(&store, batch)).await;
                        }
                    }
                    _ = tick.tick() => {
                        if sub.dropped() > reported_drops {
                            tracing::error!(dropped = sub.dropped() - reported_drops, "the Parquet recorder fell behind; market data was not recorded");
                            reported_drops = sub.dropped();
                        }
                        let batch = buf.take(false);
                        if batch.rows() > 0 {
                            let store = store.clone();
                            let _ = tokio::task::spawn_blocking(move || write(&store, batch)).await;
                        }
                    }
                    reply = flush_rx.recv() => {
                        let Some(reply) = reply else { break };
                        while let Some(d) = sub.try_recv() {
                            buf.add(&d.event);
                        }
                        let batch = buf.take(true);
                        let store = store.clone();
                        let _ = tokio::task::spawn_blocking(move || write(&store, batch)).await;
                        let _ = reply.send(());
                    }
                }
            }
        });
        Ok(Recorder { flush_tx })
    }

    /// Writes everything buffered (open one-minute bars included) and returns when it is on disk.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.flush_tx.send(tx).await.is_ok() {
            let _ = rx.await;
        }
    }
}
