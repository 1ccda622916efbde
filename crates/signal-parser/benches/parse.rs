//! Parse throughput on one core: the shared examples plus variants of them (signals and non-signals, as a channel
//! mixes them), parsed in a loop.
//!
//! `cargo bench -p signal-parser --bench parse` (add `-- --quick` for a short run).

use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let examples = include_str!("../tests/data/examples.jsonl");
    let mut messages: Vec<String> = examples
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    messages.push("Bom dia, pessoal! Hoje o mercado abre em alta. Fiquem atentos ao IBOV e ao dólar.".into());
    messages.push(
        "✅ Código - ITUB4\n💵 Compra entre R$ 32,10 e R$ 32,40\n🎯 Alvos: 33,00 / 33,80 / 35,00\n⛔ Stop: 31,50"
            .into(),
    );
    let rounds = if quick { 20_000 } else { 200_000 };
    let mut signals = 0usize;
    let started = Instant::now();
    for _ in 0..rounds {
        for m in &messages {
            signals += usize::from(std::hint::black_box(signal_parser::parse(std::hint::black_box(m))).is_some());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = rounds * messages.len();
    let bytes: usize = messages.iter().map(String::len).sum::<usize>() * rounds;
    println!(
        "signal parse: {n} messages ({signals} signals) in {secs:.2} s = {:.0} messages/s, {:.0} MB/s, {:.2} µs/message on one core",
        n as f64 / secs,
        bytes as f64 / secs / 1e6,
        secs * 1e6 / n as f64
    );
}
