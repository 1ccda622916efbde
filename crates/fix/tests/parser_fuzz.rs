//! The parser meets millions of random and mutated messages: it must answer every one with a message or an error,
//! never a panic, and whatever it accepts must really be a well-framed FIX 4.4 message.

use fix::codec::{checksum, Decoder, Message, MessageBuilder};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn seeds() -> Vec<Vec<u8>> {
    let mut nos = MessageBuilder::new("D");
    nos.field(49, "TS").field(56, "BROKER").int(34, 12).field(52, "20261206-13:00:00.123");
    nos.field(11, "7f3a-42-0").field(1, "ACC1").field(55, "PETR4").field(207, "BVMF").field(54, "1");
    nos.field(60, "20261206-13:00:00.123").int(38, 100).field(40, "2").field(44, "38.45").field(59, "0");
    let mut er = MessageBuilder::new("8");
    er.field(49, "BROKER").field(56, "TS").int(34, 40).field(52, "20261206-13:00:00.200").field(43, "Y");
    er.field(122, "20261206-13:00:00.150").field(37, "O-1").field(11, "7f3a-42-0").field(17, "E-9");
    er.field(150, "F").field(39, "1").field(55, "PETR4").field(54, "1").int(38, 100).field(32, "40");
    er.field(31, "38.45").int(151, 60).int(14, 40).field(6, "38.45").field(58, "partial");
    let mut logon = MessageBuilder::new("A");
    logon.field(49, "TS").field(56, "BROKER").int(34, 1).field(52, "20261206-13:00:00.000").int(98, 0).int(108, 30);
    let mut reset = MessageBuilder::new("4");
    reset.field(49, "BROKER").field(56, "TS").int(34, 3).field(52, "20261206-13:00:00.000").field(123, "Y").int(36, 9);
    vec![nos.finish(), er.finish(), logon.finish(), reset.finish()]
}

fn mutate(rng: &mut ChaCha8Rng, msg: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..4) {
        if msg.is_empty() {
            msg.push(rng.gen());
            continue;
        }
        let at = rng.gen_range(0..msg.len());
        match rng.gen_range(0..9) {
            0 => msg[at] = rng.gen(),
            1 => msg[at] = 0x01,
            2 => msg[at] = b'=',
            3 => msg[at] = b"0123456789"[rng.gen_range(0..10)],
            4 => {
                let end = (at + rng.gen_range(1..20)).min(msg.len());
                msg.drain(at..end);
            }
            5 => {
                let len = rng.gen_range(1..30);
                let junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                msg.splice(at..at, junk);
            }
            6 => msg.truncate(at),
            7 => {
                let end = (at + rng.gen_range(1..40)).min(msg.len());
                let copy = msg[at..end].to_vec();
                msg.splice(at..at, copy);
            }
            _ => msg.splice(at..at, b"10=000\x01".iter().copied()).for_each(drop),
        }
    }
}

/// Whatever the parser accepts is a complete FIX 4.4 frame with a right body length and checksum.
fn check_accepted(m: &Message) {
    let raw = m.raw();
    assert!(raw.starts_with(b"8=FIX.4.4\x019="));
    let trailer = raw.len() - 7;
    assert_eq!(&raw[trailer..trailer + 3], b"10=");
    let sum: u32 = std::str::from_utf8(&raw[trailer + 3..trailer + 6]).unwrap().parse().unwrap();
    assert_eq!(sum, checksum(&raw[..trailer]));
    assert!(!m.msg_type().is_empty());
    for (tag, value) in m.fields() {
        assert!(tag > 0 && !value.is_empty() && !value.contains(&0x01));
    }
}

#[test]
fn two_million_mutated_messages_never_panic() {
    let seeds = seeds();
    let mut rng = ChaCha8Rng::seed_from_u64(0x0F1C_4404);
    let (mut accepted, mut refused) = (0u64, 0u64);
    for i in 0..2_000_000u32 {
        let mut msg = seeds[i as usize % seeds.len()].clone();
        mutate(&mut rng, &mut msg);
        match Message::parse(&msg) {
            Ok(m) => {
                check_accepted(&m);
                accepted += 1;
            }
            Err(_) => refused += 1,
        }
    }
    // Mutations that keep a valid frame are rare but exist (a digit changed inside a value changes the checksum,
    // so mostly they are refused).
    assert!(refused > 1_900_000, "refused {refused}, accepted {accepted}");
}

#[test]
fn a_stream_of_mutated_messages_in_random_chunks_never_panics_or_stalls() {
    let seeds = seeds();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut decoder = Decoder::new();
    let mut intact = 0u64;
    let mut got = 0u64;
    for i in 0..200_000u32 {
        let mut msg = seeds[i as usize % seeds.len()].clone();
        if rng.gen_bool(0.3) {
            mutate(&mut rng, &mut msg);
        } else {
            intact += 1;
        }
        let mut at = 0;
        while at < msg.len() {
            let n = rng.gen_range(1..=msg.len() - at);
            decoder.extend(&msg[at..at + n]);
            at += n;
            loop {
                match decoder.next_message() {
                    Ok(Some(m)) => {
                        check_accepted(&m);
                        got += 1;
                    }
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
        }
        // The decoder never hoards: at most one body's worth of bytes waits for more.
        assert!(decoder.buffered() <= fix::codec::MAX_BODY_LENGTH + 64);
    }
    // A mutated message may swallow the intact one after it (a length that reaches into it), never more than
    // one per mutation.
    assert!(got >= intact - (200_000 - intact), "decoded {got} of {intact} intact messages");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Message::parse(&bytes);
        let mut d = Decoder::new();
        d.extend(&bytes);
        for _ in 0..bytes.len() + 1 {
            if let Ok(None) = d.next_message() { break; }
        }
    }

    #[test]
    fn what_is_built_parses_back_field_for_field(
        fields in proptest::collection::vec((1u32..10_000, "[ -~]{1,40}"), 0..30),
        msg_type in "[0-9A-Za-z]{1,2}",
    ) {
        let mut b = MessageBuilder::new(&msg_type);
        for (tag, value) in &fields {
            b.field(*tag, value);
        }
        let m = Message::parse(&b.finish()).unwrap();
        let mut got: Vec<(u32, Vec<u8>)> = m.fields().skip(3).map(|(t, v)| (t, v.to_vec())).collect();
        prop_assert_eq!(got.pop().map(|f| f.0), Some(10));
        let want: Vec<(u32, Vec<u8>)> = fields.iter().map(|(t, v)| (*t, v.as_bytes().to_vec())).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(m.msg_type(), msg_type.as_bytes());
    }
}
