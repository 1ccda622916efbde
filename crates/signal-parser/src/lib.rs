//! Parses the free-form Portuguese signal messages of TP-Capital's Telegram channels.
//!
//! A message is cut into segments: lines, and the parts of a line separated by `|`, `;` or `/` that start with a
//! label (so `Alvos: 1,10 / 1,20` and `1,04/1,06` stay whole while `Ativo: X / Compra: Y` splits). A segment that starts with a known
//! label (after any emoji or bullet) contributes its value: the asset, the entry price or range, numbered or plain
//! targets, the final target, the stop, the signal type. Prices are read as Brazilian numbers and kept on the
//! domain's fixed-point grid; a number followed by `%` is never a price. Text outside labelled segments (dates,
//! commentary) never contributes a price, which is what keeps "ordem até dia 28/10" out of the targets.
//!
//! A message is a signal only with a valid B3 ticker and either an entry price, or at least one target and a stop.
//! A message whose header announces a cancellation or a status update (target hit, stopped out) is not a signal.

use domain::Price;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Side {
    Buy,
    Sell,
}

/// The parse of one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Signal {
    pub asset: String,
    pub side: Side,
    pub signal_type: SignalType,
    /// The entry range (for a SELL signal, the sell range); a single price gives min = max.
    pub buy_min: Option<Price>,
    pub buy_max: Option<Price>,
    pub target_1: Option<Price>,
    pub target_2: Option<Price>,
    /// "Alvo final"/"Alvo geral", else the last target given.
    pub target_final: Option<Price>,
    pub stop: Option<Price>,
    /// Every target in the order given, the final one included.
    pub targets: Vec<Price>,
    pub raw_message: String,
}

/// The kind of trade a signal announces, from its header; "Swing Trade" when it names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SignalType {
    #[serde(rename = "Swing Trade")]
    Swing,
    #[serde(rename = "Day Trade")]
    Day,
    #[serde(rename = "Scalping")]
    Scalping,
    #[serde(rename = "Position")]
    Position,
}

impl SignalType {
    pub const ALL: [SignalType; 4] = [SignalType::Swing, SignalType::Day, SignalType::Scalping, SignalType::Position];

    /// The spelling shown and stored (the original system's).
    pub fn as_str(self) -> &'static str {
        match self {
            SignalType::Swing => "Swing Trade",
            SignalType::Day => "Day Trade",
            SignalType::Scalping => "Scalping",
            SignalType::Position => "Position",
        }
    }

    /// The stored spelling, exactly.
    pub fn parse(text: &str) -> Option<SignalType> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// What a person types in a filter: any case, surrounding spaces ignored.
    pub fn parse_loose(text: &str) -> Option<SignalType> {
        let text = text.trim();
        Self::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(text))
    }

    pub fn choices() -> String {
        Self::ALL.map(SignalType::as_str).join(", ")
    }
}

impl std::fmt::Display for SignalType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a message; `None` when it is not a signal.
pub fn parse(text: &str) -> Option<Signal> {
    let mut p = Partial::default();
    let mut first_line = true;
    // One buffer for the folded text of every segment.
    let mut folded = String::with_capacity(128);
    for line in text.lines() {
        if first_line && !strip_decoration(line).is_empty() {
            first_line = false;
            fold_into(&mut folded, line);
            if is_status_header(&folded) {
                return None;
            }
        }
        // Most lines hold one field: no separator to look at, no list to build.
        if !line.bytes().any(|b| matches!(b, b'|' | b';' | b'/')) {
            fold_into(&mut folded, line);
            p.segment(line, &folded);
            continue;
        }
        for segment in segments(line, &mut folded) {
            fold_into(&mut folded, segment);
            p.segment(segment, &folded);
        }
    }
    p.finish(text)
}

/// The labelled parts of a line: split at `|`, and at `;` or `/` where a label follows.
fn segments<'a>(line: &'a str, scratch: &mut String) -> Vec<&'a str> {
    let mut out: Vec<&'a str> = Vec::new();
    let mut start = 0;
    // Byte offsets of every separator, then the end of the line.
    let cuts =
        line.char_indices().filter(|(_, c)| matches!(c, '|' | ';' | '/')).chain(std::iter::once((line.len(), '|')));
    let mut open = 0; // where the current segment began
    for (at, sep) in cuts {
        let piece = &line[start..at];
        let next_start = (at + sep.len_utf8()).min(line.len());
        if start > 0 {
            let prev_sep = line[..start].chars().next_back().unwrap_or('|');
            fold_into(scratch, piece);
            let s = strip_decoration(scratch);
            let labelled = label_at(s).is_some() || label_after_ticker(s).is_some();
            if prev_sep == '|' || labelled {
                out.push(&line[open..start - prev_sep.len_utf8()]);
                open = start;
            }
        }
        start = next_start;
        if at == line.len() {
            break;
        }
    }
    out.push(&line[open..]);
    out
}

#[derive(Default)]
struct Partial {
    asset: Option<String>,
    /// A ticker seen outside an asset label: used when no label names one.
    loose_asset: Option<String>,
    side: Option<Side>,
    /// "SINAL DE VENDA" and the like, for an entry whose label says no side ("Entrada").
    header_side: Option<Side>,
    signal_type: Option<SignalType>,
    entry: Option<(Price, Price)>,
    /// Numbered or plain targets (not the final one), with their number when given.
    targets: Vec<(Option<u32>, Price)>,
    final_target: Option<Price>,
    /// The order every target price appeared in, final included.
    all_targets: Vec<Price>,
    stop: Option<Price>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Label {
    Type,
    Asset,
    /// `None`: a label that does not say which way ("Entrada").
    Entry(Option<Side>),
    Target,
    Final,
    Stop,
}

/// Labels, folded (lower case, no accents), longest first where one is a prefix of another.
const LABELS: &[(&str, Label)] = &[
    ("tipo", Label::Type),
    ("ativo", Label::Asset),
    ("ativa", Label::Asset),
    ("papel", Label::Asset),
    ("ticker", Label::Asset),
    ("codigo", Label::Asset),
    ("compra acima de", Label::Entry(Some(Side::Buy))),
    ("compra entre", Label::Entry(Some(Side::Buy))),
    ("compra de", Label::Entry(Some(Side::Buy))),
    ("comprar", Label::Entry(Some(Side::Buy))),
    ("compra", Label::Entry(Some(Side::Buy))),
    ("preco de entrada", Label::Entry(None)),
    ("entrada", Label::Entry(None)),
    ("venda acima de", Label::Entry(Some(Side::Sell))),
    ("venda entre", Label::Entry(Some(Side::Sell))),
    ("venda de", Label::Entry(Some(Side::Sell))),
    ("vender", Label::Entry(Some(Side::Sell))),
    ("venda", Label::Entry(Some(Side::Sell))),
    ("alvo final", Label::Final),
    ("alvo geral", Label::Final),
    ("objetivo final", Label::Final),
    ("objetivos", Label::Target),
    ("objetivo", Label::Target),
    ("alvos", Label::Target),
    ("alvo", Label::Target),
    ("take profit", Label::Target),
    ("target", Label::Target),
    ("tp", Label::Target),
    ("stop loss", Label::Stop),
    ("stop", Label::Stop),
    ("sl", Label::Stop),
];

/// Headers that announce something about an earlier signal, not a new one.
const STATUS_MARKERS: &[&str] = &[
    "cancelad",
    "cancelament",
    "sinal cancel",
    "encerrad",
    "atingid",
    "stopad",
    "stop atingido",
    "stopou",
    "parcial",
    "realizad",
    "zerad",
    "zerar",
    "saida",
    "sair ",
];

fn is_status_header(folded_line: &str) -> bool {
    let t = strip_decoration(folded_line);
    STATUS_MARKERS.iter().any(|m| t.contains(m))
        && !LABELS.iter().any(|(l, k)| *k != Label::Target && *k != Label::Stop && starts_with_word(t, l))
}

impl Partial {
    fn segment(&mut self, original: &str, folded: &str) {
        if self.loose_asset.is_none() {
            self.loose_asset = tickers(original).next();
        }
        let s = strip_decoration(folded);
        if s.is_empty() {
            return;
        }
        // The type may be a header of its own ("🟢Swing Trade", "Day Trade 🔵").
        if self.signal_type.is_none() {
            self.signal_type = signal_type_in(s);
        }
        let Some((label, rest)) = label_at(s).or_else(|| label_after_ticker(s)) else {
            if s.contains("sinal de venda") || s.starts_with("venda") || s.contains("short") {
                self.header_side = Some(Side::Sell);
            }
            return;
        };
        match label {
            Label::Type => {
                if let Some(t) = signal_type_in(rest) {
                    self.signal_type = Some(t);
                }
            }
            Label::Asset => {
                if self.asset.is_none() {
                    self.asset = first_word_ticker(rest);
                }
            }
            Label::Entry(side) => {
                let prices = prices(rest);
                if let Some(&first) = prices.first() {
                    if self.entry.is_none() {
                        let second = prices.get(1).copied().filter(|_| joined_as_range(rest));
                        let (lo, hi) = match second {
                            Some(b) if b < first => (b, first),
                            Some(b) => (first, b),
                            None => (first, first),
                        };
                        self.entry = Some((lo, hi));
                        self.side = side;
                    }
                } else if side == Some(Side::Sell) {
                    // "Venda" as a bare header still says which way.
                    self.header_side = Some(Side::Sell);
                }
            }
            Label::Target => {
                let (number, rest) = target_number(rest);
                let prices = prices(rest);
                for (i, p) in prices.iter().enumerate() {
                    let n = if i == 0 { number } else { None };
                    self.targets.push((n, *p));
                    self.all_targets.push(*p);
                }
            }
            Label::Final => {
                if let Some(&p) = prices(rest).first() {
                    self.final_target = Some(p);
                    self.all_targets.push(p);
                }
            }
            Label::Stop => {
                if self.stop.is_none() {
                    self.stop = prices(rest).first().copied();
                }
            }
        }
    }

    fn finish(self, raw: &str) -> Option<Signal> {
        let asset = self.asset.or(self.loose_asset)?;
        let has_entry = self.entry.is_some();
        let has_exit = !self.all_targets.is_empty() && self.stop.is_some();
        if !(has_entry || has_exit) {
            return None;
        }
        let mut slots: [Option<Price>; 2] = [None, None];
        for (n, p) in &self.targets {
            let slot = match n {
                Some(n @ 1..=2) => Some(*n as usize - 1),
                Some(_) => None,
                None => slots.iter().position(Option::is_none),
            };
            if let Some(i) = slot {
                if slots[i].is_none() {
                    slots[i] = Some(*p);
                }
            }
        }
        let target_final = self.final_target.or_else(|| self.all_targets.last().copied());
        Some(Signal {
            asset,
            side: self.side.or(self.header_side).unwrap_or(Side::Buy),
            signal_type: self.signal_type.unwrap_or(SignalType::Swing),
            buy_min: self.entry.map(|e| e.0),
            buy_max: self.entry.map(|e| e.1),
            target_1: slots[0],
            target_2: slots[1],
            target_final,
            stop: self.stop,
            targets: self.all_targets,
            raw_message: raw.to_string(),
        })
    }
}

/// Lower case without Portuguese accents; every other character kept, so byte offsets of ASCII text line up.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold_into(&mut out, s);
    out
}

fn fold_into(out: &mut String, s: &str) {
    out.clear();
    // Runs of spaces and tabs are one space: "Alvo   1", "Stop  Loss".
    let mut last_space = false;
    if s.is_ascii() {
        if !s.contains("  ") && !s.contains('\t') {
            out.push_str(s);
            out.make_ascii_lowercase();
            return;
        }
        for &b in s.as_bytes() {
            let space = b == b' ' || b == b'\t';
            if !(space && last_space) {
                out.push(if space { ' ' } else { char::from(b.to_ascii_lowercase()) });
            }
            last_space = space;
        }
        return;
    }
    for c in s.chars() {
        let space = c == ' ' || c == '\t';
        if !(space && last_space) {
            fold_char_into(out, if space { ' ' } else { c });
        }
        last_space = space;
    }
}

fn fold_char_into(out: &mut String, c: char) {
    out.push(match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' | 'Á' | 'À' | 'Â' | 'Ã' | 'Ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ç' | 'Ç' => 'c',
        c => c.to_lowercase().next().unwrap_or(c),
    });
}

/// Drops leading emoji, bullets and punctuation (and the trailing ones), keeping the text from the first letter,
/// digit or `r$`.
fn strip_decoration(s: &str) -> &str {
    let start = s.find(|c: char| c.is_alphanumeric()).unwrap_or(s.len());
    let end = s
        .rfind(|c: char| c.is_alphanumeric() || c == '%' || c == ')')
        .map_or(start, |i| i + s[i..].chars().next().map_or(1, char::len_utf8));
    if end <= start {
        return "";
    }
    &s[start..end]
}

fn starts_with_word(s: &str, word: &str) -> bool {
    s.starts_with(word) && !s[word.len()..].starts_with(|c: char| c.is_alphabetic())
}

/// The label a segment starts with and what follows its separator.
fn label_at(s: &str) -> Option<(Label, &str)> {
    for (word, label) in LABELS {
        if !starts_with_word(s, word) {
            continue;
        }
        let mut rest = &s[word.len()..];
        // "TP1" / "Alvo1": a number glued to a target label is its index, not a price.
        if matches!(label, Label::Target) && rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Some((*label, rest));
        }
        // Whatever stands between the label and its value: `:`, `=`, `-`, `->`, `=>`, `➜`, emoji, spaces.
        rest = rest.trim_start_matches(|c: char| !c.is_alphanumeric());
        return Some((*label, rest));
    }
    None
}

/// "PETR4 - Compra entre 38,20 e 38,50": a ticker leading the segment, then a label.
fn label_after_ticker(s: &str) -> Option<(Label, &str)> {
    let word_len = s.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(s.len());
    if !is_ticker(&s[..word_len].to_ascii_uppercase()) {
        return None;
    }
    let rest = s[word_len..].trim_start_matches([' ', '-', '–', '—', ':', '|', '/', '.']);
    label_at(rest).filter(|(l, _)| !matches!(l, Label::Asset | Label::Type))
}

/// "1: 1,15" → (Some(1), "1,15"); "1 atingido" → (Some(1), "atingido"); "12,40" → (None, "12,40").
fn target_number(rest: &str) -> (Option<u32>, &str) {
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || digits > 2 {
        return (None, rest);
    }
    let after = &rest[digits..];
    // A decimal separator followed by a digit makes it the price itself.
    let mut chars = after.chars();
    if let (Some('.' | ','), Some(d)) = (chars.next(), chars.next()) {
        if d.is_ascii_digit() {
            return (None, rest);
        }
    }
    let n: u32 = rest[..digits].parse().unwrap_or(0);
    let mut after = after.trim_start();
    if let Some(r) = after.strip_prefix([':', '=', '-', '–', '—', ')', 'º', 'o']) {
        after = r.trim_start();
    }
    // With nothing priced after it, "Alvo 12" names a price, not target 12.
    if prices(after).is_empty() && after.trim().is_empty() {
        return (None, rest);
    }
    (Some(n), after)
}

/// The two first numbers of an entry are a range only when what separates them is a range word.
fn joined_as_range(rest: &str) -> bool {
    let mut spans = number_spans(rest);
    let (Some(a), Some(b)) = (spans.next(), spans.next()) else { return false };
    let between = rest[a.end..b.start].trim();
    let between = between.trim_start_matches("r$").trim();
    let between = between.trim_end_matches("r$").trim();
    matches!(between, "a" | "à" | "ate" | "até" | "e" | "-" | "–" | "—" | "/" | "ou" | "~")
}

struct Span {
    start: usize,
    end: usize,
    value: Option<Price>,
}

/// Number tokens: digits with `.`/`,` inside, not glued to letters, and not followed by `%`.
fn number_spans(s: &str) -> impl Iterator<Item = Span> + '_ {
    let bytes = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if !bytes[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || ((bytes[i] == b'.' || bytes[i] == b',') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            let end = i;
            let glued_before = start > 0 && bytes[start - 1].is_ascii_alphabetic();
            let glued_after = bytes.get(end).is_some_and(u8::is_ascii_alphabetic);
            // 28/10 or 07/10/2025: bare integers joined by slashes are a date ("1,04/1,06" is a range).
            let bare = !s[start..end].contains(['.', ',']) && end - start <= 4;
            let slash_digit_before = start > 1 && bytes[start - 1] == b'/' && bytes[start - 2].is_ascii_digit();
            let slash_digit_after = bytes.get(end) == Some(&b'/') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
            let date = bare && (slash_digit_before || slash_digit_after);
            let rest = s[end..].trim_start();
            let percent = rest.starts_with('%');
            // A time or a date (17:25, 07/10) is not a price.
            let clock = (bytes.get(end) == Some(&b':') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit))
                || (start > 1 && bytes[start - 1] == b':' && bytes[start - 2].is_ascii_digit());
            let value = if glued_before || glued_after || percent || clock || date {
                None
            } else {
                brazilian_number(&s[start..end])
            };
            return Some(Span { start, end, value });
        }
        None
    })
}

/// The prices in a label's value, in order.
fn prices(rest: &str) -> Vec<Price> {
    number_spans(rest).filter_map(|s| s.value).filter(|p| p.units() > 0).collect()
}

/// Reads `1,04`, `1.250,50`, `5.412,5`, `127.850` (thousands), `0.250` (decimal), `28.50`.
pub fn brazilian_number(tok: &str) -> Option<Price> {
    let (int_part, frac_part): (String, &str) = match (tok.rfind(','), tok.contains('.')) {
        (Some(comma), _) => {
            // Comma decimal; dots before it group thousands.
            let int = &tok[..comma];
            if int.contains(',') || !thousands_grouped(int) {
                return None;
            }
            (int.replace('.', ""), &tok[comma + 1..])
        }
        (None, true) => {
            let groups: Vec<&str> = tok.split('.').collect();
            let int = groups[0];
            let dotted_thousands = groups.len() > 2
                || (groups.len() == 2
                    && groups[1].len() == 3
                    && !int.trim_start_matches('0').is_empty()
                    && int.len() <= 3);
            if dotted_thousands {
                if !thousands_grouped(tok) {
                    return None;
                }
                (tok.replace('.', ""), "")
            } else {
                (int.to_string(), groups[1])
            }
        }
        (None, false) => (tok.to_string(), ""),
    };
    if int_part.is_empty() || int_part.len() > 12 || frac_part.len() > 4 {
        return None;
    }
    let int: i64 = int_part.parse().ok()?;
    let frac: i64 = if frac_part.is_empty() { 0 } else { format!("{frac_part:0<4}").parse().ok()? };
    Some(Price::from_units(int.checked_mul(10_000)?.checked_add(frac)?))
}

/// `1.250.000`, `127`, `1.250`: a first group of 1–3 digits, then groups of exactly three.
fn thousands_grouped(s: &str) -> bool {
    let mut groups = s.split('.');
    let first = groups.next().unwrap_or("");
    let dotted = s.contains('.');
    !first.is_empty() && (!dotted || first.len() <= 3) && groups.all(|g| g.len() == 3)
}

fn signal_type_in(s: &str) -> Option<SignalType> {
    const TYPES: &[(&str, SignalType)] = &[
        ("swing trade", SignalType::Swing),
        ("swingtrade", SignalType::Swing),
        ("swing", SignalType::Swing),
        ("day trade", SignalType::Day),
        ("daytrade", SignalType::Day),
        ("day-trade", SignalType::Day),
        ("scalping", SignalType::Scalping),
        ("scalp", SignalType::Scalping),
        ("position trade", SignalType::Position),
        ("position", SignalType::Position),
    ];
    let hit = TYPES.iter().filter_map(|(k, v)| s.find(k).map(|i| (i, *v))).min_by_key(|(i, _)| *i);
    hit.map(|(_, v)| v)
}

/// A B3 ticker: stocks, units, ETFs and BDRs (PETR4, B3SA3, BOVA11, PETR4F), options and warrants (BOVAW32,
/// PETRK400, CSNAW919), futures (WINZ25, WDOF26).
pub fn is_ticker(t: &str) -> bool {
    let b = t.as_bytes();
    let upper_or_digit = |c: &u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    if !(5..=8).contains(&b.len()) || !b.iter().all(upper_or_digit) || !b[0].is_ascii_uppercase() {
        return false;
    }
    const NOT_ROOTS: &[&str] = &["ALVO", "STOP", "META", "DATA", "HORA", "TIPO"];
    if NOT_ROOTS.iter().any(|r| t.starts_with(r)) {
        return false;
    }
    let digits_from = |i: usize| b[i..].iter().all(u8::is_ascii_digit);
    // Futures: three letters, month code, two-digit year.
    if b.len() == 6 && b[..3].iter().all(u8::is_ascii_uppercase) && b"FGHJKMNQUVXZ".contains(&b[3]) && digits_from(4) {
        return true;
    }
    if !b[3].is_ascii_uppercase() {
        return false;
    }
    let root_ok = b[..4].iter().all(upper_or_digit) && b[1..4].iter().any(u8::is_ascii_uppercase);
    if !root_ok {
        return false;
    }
    let tail = &t[4..];
    let tb = tail.as_bytes();
    // Stock-like: 1–2 digits, optional fractional F.
    let stock = |s: &[u8]| (1..=2).contains(&s.len()) && s.iter().all(u8::is_ascii_digit);
    if stock(tb) || (tb.last() == Some(&b'F') && stock(&tb[..tb.len() - 1])) {
        return true;
    }
    // Options and warrants: series letter A–X, then 2–3 digits.
    tb.len() >= 3 && (b'A'..=b'X').contains(&tb[0]) && (2..=3).contains(&(tb.len() - 1)) && digits_from(5)
}

/// Upper-case tickers in the original (not folded) text.
fn tickers(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| is_ticker(w)).map(str::to_string)
}

/// A labelled asset: the first word, in any case.
fn first_word_ticker(rest: &str) -> Option<String> {
    let rest = rest.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let word: String = rest.chars().take_while(char::is_ascii_alphanumeric).collect::<String>().to_ascii_uppercase();
    is_ticker(&word).then_some(word)
}

#[cfg(test)]
mod tests;
