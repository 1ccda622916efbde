//! FIX codec throughput: encoding NewOrderSingle, decoding ExecutionReport (one message, and a stream cut into
//! socket-sized reads). `cargo bench -p fix --bench codec`; results in BENCHMARKS.md.

use fix::codec::{Decoder, Message, MessageBuilder};
use std::hint::black_box;
use std::time::Instant;

fn new_order_single(seq: u64) -> Vec<u8> {
    let mut m = MessageBuilder::new("D");
    m.field(49, "TS").field(56, "BROKER").int(34, seq).field(52, "20261206-13:00:00.123");
    m.field(11, "mf3k2a.42.0").field(1, "ACC1").field(55, "PETR4").field(207, "BVMF").field(54, "1");
    m.field(60, "20261206-13:00:00.123").int(38, 100).field(40, "2").field(44, "38.45").field(59, "0");
    m.finish()
}

fn execution_report(seq: u64) -> Vec<u8> {
    let mut m = MessageBuilder::new("8");
    m.field(49, "BROKER").field(56, "TS").int(34, seq).field(52, "20261206-13:00:00.200");
    m.field(37, "O42").field(11, "mf3k2a.42.0").field(17, "E9").field(150, "F").field(39, "1");
    m.field(1, "ACC1").field(55, "PETR4").field(54, "1").int(38, 100).field(40, "2").field(44, "38.45");
    m.field(59, "0").field(32, "40").field(31, "38.45").int(151, 60).int(14, 40).field(6, "38.45");
    m.field(60, "20261206-13:00:00.199");
    m.finish()
}

/// Runs `f` `n` times (each call handles `per_call` messages), five rounds, and reports the best round.
fn measure(name: &str, n: u64, per_call: u64, bytes_per_msg: usize, mut f: impl FnMut(u64)) {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..n {
            f(i);
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let per_sec = (n * per_call) as f64 / best;
    println!(
        "{name:<44} {:>8.2} M msg/s  {:>6.0} ns/msg  {:>6.0} MB/s",
        per_sec / 1e6,
        1e9 / per_sec,
        per_sec * bytes_per_msg as f64 / 1e6
    );
}

fn main() {
    let n = 1_000_000;
    let nos = new_order_single(1);
    let er = execution_report(1);
    println!("NewOrderSingle {} bytes, ExecutionReport {} bytes", nos.len(), er.len());
    measure("encode NewOrderSingle (fields, length, checksum)", n, 1, nos.len(), |i| {
        black_box(new_order_single(black_box(i)));
    });
    measure("encode ExecutionReport", n, 1, er.len(), |i| {
        black_box(execution_report(black_box(i)));
    });
    measure("decode NewOrderSingle (frame, checksum, index)", n, 1, nos.len(), |_| {
        black_box(Message::parse(black_box(&nos)).map(|m| m.get(44).map(<[u8]>::len)).ok());
    });
    measure("decode ExecutionReport + read 5 fields", n, 1, er.len(), |_| {
        let m = Message::parse(black_box(&er)).ok();
        black_box(m.map(|m| {
            let len = |tag| m.get(tag).map_or(0, <[u8]>::len);
            (len(11), len(17), len(150), m.get_u64(32), len(31))
        }));
    });
    // A stream of reports arriving in 4 KiB reads, as the session reads them.
    let stream: Vec<u8> = (0..4096u64).flat_map(execution_report).collect();
    let per_stream = 4096;
    let mut decoder = Decoder::new();
    measure("decode a stream of ExecutionReports (4 KiB reads)", n / per_stream, per_stream, er.len(), |_| {
        for chunk in stream.chunks(4096) {
            decoder.extend(chunk);
            while let Ok(Some(m)) = decoder.next_message() {
                black_box(m.seq_num());
            }
        }
    });
}
