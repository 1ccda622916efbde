use super::*;
use proptest::prelude::*;

fn p(units: f64) -> Option<Price> {
    Some(Price::from_units((units * 10_000.0).round() as i64))
}

fn sig(text: &str) -> Signal {
    parse(text).unwrap_or_else(|| panic!("not parsed as a signal: {text:?}"))
}

#[test]
fn brazilian_numbers() {
    let n = |s: &str| brazilian_number(s).map(|p| p.units() as f64 / 10_000.0);
    assert_eq!(n("1,04"), Some(1.04));
    assert_eq!(n("1.250,50"), Some(1250.5));
    assert_eq!(n("5.412,5"), Some(5412.5));
    assert_eq!(n("127.850"), Some(127850.0));
    assert_eq!(n("1.250.000"), Some(1_250_000.0));
    assert_eq!(n("0.250"), Some(0.25));
    assert_eq!(n("28.50"), Some(28.5));
    assert_eq!(n("2.00"), Some(2.0));
    assert_eq!(n("144"), Some(144.0));
    assert_eq!(n("0,00015"), None, "more than four decimals is not a price");
    assert_eq!(n("1.25.0"), None);
    assert_eq!(n("12.34.567"), None);
}

#[test]
fn tickers_of_every_b3_shape() {
    for t in [
        "PETR4", "BOVA11", "TAEE11", "B3SA3", "PETR4F", "BOVAW32", "PETRK400", "ABEVK122", "CSNAW919", "WINZ25",
        "WDOF26", "BEEFW655", "KLBN11",
    ] {
        assert!(is_ticker(t), "{t}");
    }
    for t in ["COMPRA", "ALVO1", "PETR", "2025", "petr4", "STOP10", "ABC", "TOOLONGNAME1"] {
        assert!(!is_ticker(t), "{t}");
    }
}

#[test]
fn labels_with_or_without_separators_and_synonyms() {
    let s = sig("Papel PETR4\nCompra de 38,50\nTP1 39,00\nTP2 39,50\nStop Loss 37,90");
    assert_eq!(s.asset, "PETR4");
    assert_eq!((s.buy_min, s.buy_max), (p(38.5), p(38.5)));
    assert_eq!((s.target_1, s.target_2, s.target_final), (p(39.0), p(39.5), p(39.5)));
    assert_eq!(s.stop, p(37.9));

    let s = sig("TICKER = vale3\nENTRADA = 61,00 / 61,40\nTARGET 1 = 63\nSL = 59,90");
    assert_eq!(s.asset, "VALE3");
    assert_eq!((s.buy_min, s.buy_max), (p(61.0), p(61.4)));
    assert_eq!(s.target_1, p(63.0));

    let s =
        sig("✅ Código - ITUB4\n💵 Compra entre R$ 32,10 e R$ 32,40\n🎯 Alvos: 33,00 / 33,80 / 35,00\n⛔ Stop: 31,50");
    assert_eq!(s.asset, "ITUB4");
    assert_eq!((s.buy_min, s.buy_max), (p(32.1), p(32.4)));
    assert_eq!(s.targets, vec![p(33.0).unwrap(), p(33.8).unwrap(), p(35.0).unwrap()]);
    assert_eq!((s.target_1, s.target_2, s.target_final), (p(33.0), p(33.8), p(35.0)));

    let s = sig("Ativa: WEGE3\nCompra acima de 40,10\nTake Profit: 42,00\nStop: 39,00");
    assert_eq!((s.asset.as_str(), s.buy_min, s.target_1), ("WEGE3", p(40.1), p(42.0)));
}

#[test]
fn ranges_in_every_spelling() {
    for (text, lo, hi) in [
        ("Compra: 1,04 a 1,06", 1.04, 1.06),
        ("Compra: 1,04 à 1,06", 1.04, 1.06),
        ("Compra: 1,04 até 1,06", 1.04, 1.06),
        ("Compra: 1,04 ate 1,06", 1.04, 1.06),
        ("Compra: 1,04 e 1,06", 1.04, 1.06),
        ("Compra: 1,04 - 1,06", 1.04, 1.06),
        ("Compra: 1,04 – 1,06", 1.04, 1.06),
        ("Compra: 1,04/1,06", 1.04, 1.06),
        ("Compra: R$1,04 a R$1,06", 1.04, 1.06),
        ("Compra: 1,06 a 1,04", 1.04, 1.06),
    ] {
        let s = sig(&format!("Ativo: PETR4\n{text}"));
        assert_eq!((s.buy_min, s.buy_max), (p(lo), p(hi)), "{text}");
    }
}

#[test]
fn sell_signals_and_types() {
    let s = sig("🔴 SINAL DE VENDA\nAtivo: PETR4\nEntrada: 39,00\nAlvo: 37,50\nStop: 39,80");
    assert_eq!(s.side, Side::Sell);
    let s = sig("Position\nAtivo: TAEE11\nVender: 35,40 a 35,10\nStop: 36,20");
    assert_eq!((s.side, s.signal_type), (Side::Sell, SignalType::Position));
    assert_eq!((s.buy_min, s.buy_max), (p(35.1), p(35.4)));
    assert_eq!(sig("DAYTRADE\nAtivo: WDOF26\nCompra: 5.412,5\nStop: 5.395").signal_type, SignalType::Day);
    assert_eq!(sig("Scalp rápido\nAtivo: WINZ25\nCompra: 127.850\nStop: 127.700").signal_type, SignalType::Scalping);
}

#[test]
fn futures_points_and_thousands() {
    let s = sig("Day Trade\nAtivo: WDOF26\nCompra: 5.412,5 a 5.415,0\nAlvo 1: 5.430\nStop: 5.400");
    assert_eq!((s.buy_min, s.buy_max, s.target_1, s.stop), (p(5412.5), p(5415.0), p(5430.0), p(5400.0)));
}

#[test]
fn percentages_dates_and_times_are_not_prices() {
    let s = sig(
        "Ativo: PETR4\nCompra: 38,50 (-1,5%)\nAlvo 1: 40,00 (+3,9%)\nStop: 37,00 (-3,9%)\nVálido até 28/10 às 17:30",
    );
    assert_eq!((s.buy_min, s.buy_max), (p(38.5), p(38.5)));
    assert_eq!(s.targets, vec![p(40.0).unwrap()]);
    assert_eq!(s.stop, p(37.0));
}

#[test]
fn a_labelled_ticker_wins_over_others_mentioned() {
    let s = sig("Depois de VALE3 e ITUB4, hoje:\nAtivo: PETR4\nCompra: 38,50\nStop: 37,00");
    assert_eq!(s.asset, "PETR4");
    // Without a label, the first ticker in the text.
    let s = sig("PETR4 🟢\nCompra: 38,50\nStop: 37,00");
    assert_eq!(s.asset, "PETR4");
}

#[test]
fn more_channel_styles() {
    let s = sig("PETR4 - Compra entre 38,20 e 38,50 | Alvo 39,80 | Stop 37,60");
    assert_eq!(
        (s.asset.as_str(), s.buy_min, s.buy_max, s.target_1, s.stop),
        ("PETR4", p(38.2), p(38.5), p(39.8), p(37.6))
    );
    let s = sig("🟢 COMPRA PETR4\nEntrada: 38,50\nAlvo: 40,00\nStop: 37,00");
    assert_eq!((s.asset.as_str(), s.side, s.buy_min), ("PETR4", Side::Buy, p(38.5)));
    let s = sig("VENDA VALE3\nEntrada 61,50\nStop 62,40\nAlvo 60,00");
    assert_eq!((s.asset.as_str(), s.side, s.buy_min, s.stop), ("VALE3", Side::Sell, p(61.5), p(62.4)));
    let s = sig("Ativo: WEGE3 (WEG)\nCompra: de 40,10 a 40,40\nAlvos: 41,00 - 41,80 - 43,00\nStop: abaixo de 39,20");
    assert_eq!((s.buy_min, s.buy_max, s.targets.len(), s.stop), (p(40.1), p(40.4), 3, p(39.2)));
    let s = sig("Ativo: ABEV3\nEntrada: a mercado\nAlvo 1: 14,00\nStop: 12,90");
    assert_eq!((s.buy_min, s.target_1, s.stop), (None, p(14.0), p(12.9)));
    assert_eq!(parse("ABEV3\nStop: -3%\nAlvo: +5%"), None, "percentages are not prices");
}

#[test]
fn final_target_falls_back_to_the_last_one() {
    let s = sig("Ativo: PETR4\nCompra: 38,50\nAlvo 1: 39\nAlvo 2: 40\nAlvo 3: 41\nStop: 37");
    assert_eq!((s.target_1, s.target_2, s.target_final), (p(39.0), p(40.0), p(41.0)));
    assert_eq!(s.targets.len(), 3);
    let s = sig("Ativo: PETR4\nCompra: 38,50\nAlvo 2: 40\nAlvo geral: 45\nStop: 37");
    assert_eq!((s.target_1, s.target_2, s.target_final), (None, p(40.0), p(45.0)));
}

#[test]
fn not_signals() {
    for text in [
        "BOVAW22 ALVO 1 ATINGIDO ✅\n+17,02%",
        "PETR4 stop -25%",
        "Bom dia, pessoal! Hoje o mercado abre em alta.",
        "BOVA11\nSeguimos de olho na região do 144, se perder pode buscar 141.",
        "❌ SINAL CANCELADO\nAtivo: PETR4\nCompra: 38,50\nStop: 37,00",
        "Cancelado PETR4",
        "VALE3 - Alvo 2 atingido! Parabéns a todos 🚀",
        "Stopados em MGLU3 (-4,2%)",
        "Ativo: PETR4\nAlvo 1: 40,00",
        "Compra: 38,50\nStop: 37,00",
        "Parcial realizada em ITUB4: +2,3%",
        "",
        "🟢🟢🟢",
    ] {
        assert_eq!(parse(text), None, "{text:?}");
    }
}

#[test]
fn targets_and_stop_without_entry_are_a_signal() {
    let s = sig("Ativo: BBDC4\nAlvo 1: 15,20\nAlvo 2: 16,00\nStop: 13,90");
    assert_eq!((s.buy_min, s.target_final), (None, p(16.0)));
}

#[test]
fn case_and_emoji_do_not_matter() {
    let s = sig("🚀🚀 ATIVO:PETR4\n💰COMPRA:38,50\n🎯ALVO1:39,00\n🛑STOP:37,90");
    assert_eq!((s.asset.as_str(), s.buy_min, s.target_1, s.stop), ("PETR4", p(38.5), p(39.0), p(37.9)));
    let s = sig("ativo: petr4\ncompra: 38,50\nstop: 37,90");
    assert_eq!(s.asset, "PETR4");
}

#[derive(serde::Deserialize)]
struct Example {
    id: String,
    text: String,
    expect: Option<serde_json::Value>,
}

/// Checks every example and reports all that fail at once.
fn check_examples(path: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut n = 0;
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let ex: Example = serde_json::from_str(line).expect("example line");
        let got = parse(&ex.text).map(|s| serde_json::to_value(&s).expect("json"));
        match (&ex.expect, &got) {
            (None, None) => {}
            (Some(want), Some(got)) => {
                for (k, v) in want.as_object().expect("object") {
                    let g = &got[k];
                    let same = match (v.as_f64(), g.as_f64()) {
                        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                        _ => v == g,
                    };
                    if !same {
                        failures.push(format!("{}: {k}: expected {v}, got {g}\n{}", ex.id, ex.text));
                    }
                }
            }
            _ => failures.push(format!("{}: expected {:?}, got {:?}\n{}", ex.id, ex.expect, got, ex.text)),
        }
        n += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {n} examples in {}:\n{}",
        failures.len(),
        path.display(),
        failures.join("\n\n")
    );
    n
}

#[test]
fn the_shared_examples_parse_exactly() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(check_examples(&here.join("tests/data/examples.jsonl")) >= 16);
    // The source of that copy, when this checkout sits beside it.
    let shared = here.join("../../../shared/data/signals/examples.jsonl");
    if shared.exists() {
        check_examples(&shared);
    }
}

/// Layouts real channels use: separators, one-line messages, spacing, case, accents, synonyms, emoji and hashtags,
/// and non-signals that look close.
#[test]
fn layout_variations_parse_exactly() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(check_examples(&here.join("tests/data/variations.jsonl")) >= 40);
}

proptest! {
    #[test]
    fn never_panics_on_any_text(s in "\\PC{0,300}") {
        let _ = parse(&s);
    }

    #[test]
    fn never_panics_on_signal_like_text(
        lines in proptest::collection::vec(
            "(Ativo|Compra|Venda|Alvo [0-9]|Alvo final|Stop|TP[0-9]|SL|Entrada)?[ :=\\-–]{0,2}(R\\$ ?)?[0-9.,%/ aàéte\\-–]{0,20}",
            0..8,
        )
    ) {
        let _ = parse(&lines.join("\n"));
    }
}

/// Writes a price the Brazilian way, with or without `R$`.
fn brl(units: i64, with_currency: bool) -> String {
    let s = format!("{},{:02}", units / 10_000, (units % 10_000) / 100);
    if with_currency {
        format!("R$ {s}")
    } else {
        s
    }
}

/// One field's label in a given spelling: case, accents, synonyms.
fn spelled(label: &str, style: usize) -> String {
    match style % 4 {
        0 => label.to_string(),
        1 => label.to_uppercase(),
        2 => label.to_lowercase(),
        _ => label
            .split(' ')
            .map(|w| w.replace('ó', "o").replace('ç', "c").replace('é', "e"))
            .collect::<Vec<_>>()
            .join("  "),
    }
}

proptest! {
    /// The same signal written the ways channels write it parses the same: separators, one line or many (joined
    /// by `;`, `|` or `/`), spacing, case, accents, label synonyms, emoji and hashtags.
    #[test]
    fn reformatting_a_signal_keeps_its_parse(
        ticker in proptest::sample::select(vec!["PETR4", "VALE3", "BOVA11", "ITUB4", "BOVAW32"]),
        base in 1_000i64..20_000,
        spread in 0i64..50,
        sep in proptest::sample::select(vec![": ", ":", " = ", "=", " - ", " -> ", " => ", " ➜ ", "  :  "]),
        join in proptest::sample::select(vec!["\n", "\n\n", "; ", " | ", " / ", ";", "|"]),
        case in 0usize..4,
        asset_label in proptest::sample::select(vec!["Ativo", "Papel", "Código", "Ticker"]),
        entry_label in proptest::sample::select(vec!["Compra", "Entrada", "Comprar", "Preço de entrada"]),
        target_style in 0usize..4,
        stop_label in proptest::sample::select(vec!["Stop", "Stop Loss", "SL"]),
        currency: bool,
        decorate: bool,
        hashtag: bool,
    ) {
        // Cents: entry lo..hi, two targets above, a final above them, a stop below.
        let lo = base * 100;
        let hi = lo + spread * 100;
        let (t1, t2, tf, stop) = (hi + 500, hi + 1_000, hi + 2_000, lo - 500);
        let target = |n: u32| match target_style {
            0 => format!("Alvo {n}"),
            1 => format!("TP{n}"),
            2 => format!("Objetivo {n}"),
            _ => format!("Target {n}"),
        };
        let range = if spread == 0 { brl(lo, currency) } else { format!("{} a {}", brl(lo, currency), brl(hi, currency)) };
        let asset = if hashtag { format!("#{ticker}") } else { ticker.to_string() };
        let fields = [
            (spelled(asset_label, case), asset),
            (spelled(entry_label, case), range),
            (spelled(&target(1), case), brl(t1, currency)),
            (spelled(&target(2), case), brl(t2, currency)),
            (spelled("Alvo final", case), brl(tf, currency)),
            (spelled(stop_label, case), brl(stop, currency)),
        ];
        let emoji = ["📊", "💰", "🎯", "🎯", "🏁", "🛑"];
        let text = fields
            .iter()
            .zip(emoji)
            .map(|((label, value), e)| if decorate { format!("{e} {label}{sep}{value} {e}") } else { format!("{label}{sep}{value}") })
            .collect::<Vec<_>>()
            .join(join);
        let s = parse(&text);
        proptest::prop_assert!(s.is_some(), "not parsed:\n{}", text);
        let s = s.unwrap();
        let p = |cents: i64| Some(Price::from_units(cents));
        proptest::prop_assert_eq!(&s.asset, ticker, "{}", text);
        proptest::prop_assert_eq!(s.side, Side::Buy, "{}", text);
        proptest::prop_assert_eq!((s.buy_min, s.buy_max), (p(lo), p(hi)), "{}", text);
        proptest::prop_assert_eq!((s.target_1, s.target_2, s.target_final), (p(t1), p(t2), p(tf)), "{}", text);
        proptest::prop_assert_eq!(s.stop, p(stop), "{}", text);
    }
}

#[test]
fn signal_types_read_back_as_written() {
    for t in SignalType::ALL {
        assert_eq!(SignalType::parse(t.as_str()), Some(t));
        assert_eq!(SignalType::parse_loose(&format!(" {} ", t.as_str().to_uppercase())), Some(t));
        assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
    }
    assert_eq!(SignalType::parse("swing trade"), None, "the stored spelling is exact");
    assert_eq!(SignalType::parse_loose("Swing"), None);
}
