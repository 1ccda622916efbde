//! Fixed-point prices and money.
//!
//! A [`Price`] is an integer count of 1/10,000 of the quote unit (BRL for stocks, index or dollar points for
//! futures). Every B3 tick size in use (0.01, 0.5, 5) is a whole number of these units, so "on the tick grid" is an
//! exact integer remainder check and no arithmetic on money ever goes through `f64`.
//!
//! Decimals from the outside world are parsed from their text by [`Price::parse_decimal`]: exactly, at any
//! magnitude, and refused (never rounded) when they carry more than 4 decimal places. A binary float that reaches
//! us ([`Price::from_f64`], a TOML file) is read through its shortest round-trip decimal text, the same text the
//! writer printed.

use crate::quantity::Qty;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::Cell;
use std::fmt;

/// Fixed-point scale shared by [`Price`] and [`Money`]: 4 decimal places.
pub const PRICE_SCALE: i64 = 10_000;
/// Decimal places [`PRICE_SCALE`] holds.
pub const PRICE_DECIMALS: u32 = 4;

/// Why a decimal text is not a price or an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("is not a decimal number")]
    NotANumber,
    #[error("has more than 4 decimal places")]
    TooPrecise,
    #[error("is out of range")]
    OutOfRange,
}

/// Parses `[+-]digits[.digits][(e|E)[+-]digits]` into units of 1/10,000, exactly.
fn parse_units(text: &str) -> Result<i64, DecimalError> {
    let s = text.trim().as_bytes();
    let (negative, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match s.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = match mantissa.iter().position(|&c| c == b'.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, &[][..]),
    };
    let all_digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if int_part.is_empty() && frac_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(DecimalError::NotANumber);
    }
    if int_part.iter().chain(frac_part).all(|&c| c == b'0') {
        return match exponent {
            Some(e) if e.is_empty() || e == b"-" || e == b"+" => Err(DecimalError::NotANumber),
            Some(e) if !all_digits(e.strip_prefix(b"-").or(e.strip_prefix(b"+")).unwrap_or(e)) => {
                Err(DecimalError::NotANumber)
            }
            _ => Ok(0),
        };
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let (neg, digits) = match e.first() {
                Some(b'-') => (true, &e[1..]),
                Some(b'+') => (false, &e[1..]),
                _ => (false, e),
            };
            if digits.is_empty() || !all_digits(digits) {
                return Err(DecimalError::NotANumber);
            }
            // Beyond a few thousand the answer is "too precise" or "out of range" whatever the digits say.
            let digits = &digits[digits.iter().take_while(|&&c| c == b'0').count()..];
            if digits.len() > 6 {
                return Err(if neg { DecimalError::TooPrecise } else { DecimalError::OutOfRange });
            }
            let v = digits.iter().fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'));
            if neg {
                -v
            } else {
                v
            }
        }
    };
    // value = digits × 10^(exponent − frac_len); units = value × 10^4.
    let digits: Vec<u8> = int_part.iter().chain(frac_part).copied().collect();
    let mut shift = exponent - frac_part.len() as i64 + i64::from(PRICE_DECIMALS);
    let mut digits = &digits[digits.iter().take_while(|&&c| c == b'0').count()..];
    // Trailing zeros beyond the fourth decimal lose nothing: 37.120000 is 37.12.
    while shift < 0 && digits.last() == Some(&b'0') {
        digits = &digits[..digits.len() - 1];
        shift += 1;
    }
    if digits.is_empty() {
        return Ok(0);
    }
    if shift < 0 {
        return Err(DecimalError::TooPrecise);
    }
    if digits.len() as i64 + shift > 19 {
        return Err(DecimalError::OutOfRange);
    }
    let mut units: i128 = 0;
    for &c in digits {
        units = units * 10 + i128::from(c - b'0');
    }
    units *= 10i128.pow(shift as u32);
    let units = if negative { -units } else { units };
    i64::try_from(units).map_err(|_| DecimalError::OutOfRange)
}

/// Units of a binary float through its shortest round-trip decimal text (what `Display` prints).
fn units_of_f64(value: f64) -> Result<i64, DecimalError> {
    if !value.is_finite() {
        return Err(DecimalError::NotANumber);
    }
    // Fast path (a backtest reads millions of prices): when `value` is exactly the double nearest to units / 10^4,
    // its shortest round-trip text is that decimal, so the text path below would give the same units. Anything
    // else (more decimals, huge values) takes the text path, which decides.
    let scaled = value * PRICE_SCALE as f64;
    if scaled.abs() < 4.0e15 {
        let units = scaled.round();
        if units / PRICE_SCALE as f64 == value {
            return Ok(units as i64);
        }
    }
    parse_units(&value.to_string())
}

/// Writes units as an exact decimal: `371200` → `37.12`, `12345` → `1.2345`, `-5000` → `-0.50`.
fn fmt_units(units: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let scale = PRICE_SCALE as u64;
    let mut frac = abs % scale;
    let mut width = PRICE_DECIMALS as usize;
    while width > 2 && frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    write!(f, "{sign}{}.{frac:0width$}", abs / scale)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(pub i64);

impl Price {
    pub const ZERO: Price = Price(0);

    pub const fn from_units(units: i64) -> Self {
        Price(units)
    }

    pub const fn units(self) -> i64 {
        self.0
    }

    /// Parses a decimal text exactly: `"37.12"`, `"125435"`, `"3.712e1"`. More than 4 decimal places is refused.
    pub fn parse_decimal(text: &str) -> Result<Self, DecimalError> {
        parse_units(text).map(Price)
    }

    /// Converts a binary float through its shortest round-trip decimal text. Returns `None` for non-finite
    /// values, values out of range, or values whose decimal has more than 4 places.
    pub fn from_f64(value: f64) -> Option<Self> {
        units_of_f64(value).ok().map(Price)
    }

    pub fn to_f64(self) -> f64 {
        self.0 as f64 / PRICE_SCALE as f64
    }

    pub fn is_on_grid(self, tick: Price) -> bool {
        tick.0 > 0 && self.0 % tick.0 == 0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_units(self.0, f)
    }
}

/// An amount of BRL in 1/10,000 units. Sums of many fills stay exact; division (average cost) rounds half away
/// from zero once, at the point where it happens. Arithmetic is checked: an amount beyond ±922 trillion BRL is a
/// bug upstream, and stopping is better than carrying on with a wrong number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn parse_decimal(text: &str) -> Result<Self, DecimalError> {
        parse_units(text).map(Money)
    }

    pub fn from_f64(value: f64) -> Option<Self> {
        units_of_f64(value).ok().map(Money)
    }

    pub fn to_f64(self) -> f64 {
        self.0 as f64 / PRICE_SCALE as f64
    }

    pub fn from_brl(brl: i64) -> Self {
        Money(brl * PRICE_SCALE)
    }

    pub fn abs(self) -> Self {
        Money(self.0.abs())
    }

    pub fn checked_add(self, rhs: Money) -> Option<Money> {
        self.0.checked_add(rhs.0).map(Money)
    }

    pub fn checked_sub(self, rhs: Money) -> Option<Money> {
        self.0.checked_sub(rhs.0).map(Money)
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        self.checked_add(rhs).unwrap_or_else(|| panic!("money overflow: {self} + {rhs}"))
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        self.checked_sub(rhs).unwrap_or_else(|| panic!("money overflow: {self} - {rhs}"))
    }
}

impl std::ops::Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(self.0.checked_neg().unwrap_or_else(|| panic!("money overflow: -{}", self.0)))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("R$ ")?;
        fmt_units(self.0, f)
    }
}

thread_local! {
    static EXACT_STRINGS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a serialization) with prices and amounts written as exact decimal strings (`"37.12"`) instead of
/// JSON numbers. The journal uses it so that what it stores never passes through a binary float; the API keeps
/// plain numbers, which its clients expect. Serialization is synchronous, so a thread-local flag is exact scope.
pub fn with_exact_strings<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            EXACT_STRINGS.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(EXACT_STRINGS.with(|c| c.replace(true)));
    f()
}

struct Units(i64);

impl fmt::Display for Units {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_units(self.0, f)
    }
}

// On the wire (API) prices and money are plain decimal numbers; serialization prints the shortest decimal that
// maps back to the same double, which is the exact decimal for any amount below 10^11. Deserialization takes a
// number, an integer or a decimal string, always exactly: anything with more than 4 decimals is refused.
fn serialize_units<S: Serializer>(units: i64, s: S) -> Result<S::Ok, S::Error> {
    if EXACT_STRINGS.with(Cell::get) {
        s.collect_str(&Units(units))
    } else {
        s.serialize_f64(units as f64 / PRICE_SCALE as f64)
    }
}

struct UnitsVisitor;

impl serde::de::Visitor<'_> for UnitsVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal with at most 4 places")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        v.checked_mul(PRICE_SCALE).ok_or_else(|| E::custom(format!("{v} {}", DecimalError::OutOfRange)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v)
            .ok()
            .and_then(|v| v.checked_mul(PRICE_SCALE))
            .ok_or_else(|| E::custom(format!("{v} {}", DecimalError::OutOfRange)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        units_of_f64(v).map_err(|e| E::custom(format!("{v} {e}")))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        parse_units(v).map_err(|e| E::custom(format!("{} {e}", shorten(v))))
    }
}

/// An error message quotes at most 40 characters of what it refuses.
fn shorten(v: &str) -> String {
    let mut s: String = v.chars().take(40).collect();
    if s.len() < v.len() {
        s.push('…');
    }
    format!("{s:?}")
}

fn deserialize_units<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(UnitsVisitor)
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_units(self.0, s)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_units(d).map(Price)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_units(self.0, s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_units(d).map(Money)
    }
}

/// Divides with rounding half away from zero; `den` must be non-zero.
pub fn div_round(num: i128, den: i128) -> i128 {
    let q = num / den;
    let r = num % den;
    if (r.abs() * 2) >= den.abs() {
        if (num < 0) != (den < 0) {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

/// Cash value of `qty` at `price` for an instrument with `multiplier` (BRL per point, itself fixed-point);
/// `None` beyond ±922 trillion BRL, which no order can be worth (never clipped to the limit).
pub fn notional(price: Price, qty: Qty, multiplier: Money) -> Option<Money> {
    let v = (price.0 as i128 * i128::from(qty)).checked_mul(multiplier.0 as i128)?;
    i64::try_from(div_round(v, PRICE_SCALE as i128)).ok().map(Money)
}

#[cfg(test)]
mod tests {
    /// The fast path of `units_of_f64` agrees with the text path on every value it accepts, and accepts every
    /// 4-decimal value the store writes.
    #[test]
    fn float_fast_path_agrees_with_the_text() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let units = (x % 20_000_000_000) as i64 - 10_000_000_000;
            let v = units as f64 / PRICE_SCALE as f64;
            assert_eq!(super::units_of_f64(v), Ok(units), "{v}");
            let noisy = f64::from_bits(v.to_bits() ^ (x >> 60));
            assert_eq!(super::units_of_f64(noisy), super::parse_units(&noisy.to_string()), "{noisy}");
        }
    }

    use super::*;

    #[test]
    fn parses_decimals_exactly() {
        assert_eq!(Price::from_f64(37.12), Some(Price(371_200)));
        assert_eq!(Price::from_f64(0.01), Some(Price(100)));
        assert_eq!(Price::from_f64(5.5), Some(Price(55_000)));
        assert_eq!(Price::from_f64(128_455.0), Some(Price(1_284_550_000)));
        assert_eq!(Price::from_f64(1.00001), None);
        assert_eq!(Price::from_f64(f64::NAN), None);
        assert_eq!(Price::from_f64(f64::INFINITY), None);
        assert_eq!(Price::from_f64(1e300), None);
        assert_eq!(Price::from_f64(0.1 + 0.2), None, "0.30000000000000004 has more than 4 decimals");
        assert_eq!(Price::from_f64(-38.5), Some(Price(-385_000)));
    }

    #[test]
    fn parses_decimal_text_exactly_at_any_magnitude() {
        let ok = |t: &str| Price::parse_decimal(t);
        assert_eq!(ok("37.34"), Ok(Price(373_400)));
        assert_eq!(ok("37.120000"), Ok(Price(371_200)));
        assert_eq!(ok("3.712e1"), Ok(Price(371_200)));
        assert_eq!(ok("1E2"), Ok(Price(1_000_000)));
        assert_eq!(ok("-0.5"), Ok(Price(-5_000)));
        assert_eq!(ok("0.0001"), Ok(Price(1)));
        assert_eq!(ok("922337203685477.5807"), Ok(Price(i64::MAX)));
        for bad in
            ["37.34001", "37.3400001", "125435.00001", "5432.50001", "2000.00001", "37.3400000000000000001", "1e-5"]
        {
            assert_eq!(ok(bad), Err(DecimalError::TooPrecise), "{bad}");
        }
        for bad in ["", "-", ".", "abc", "1.2.3", "1e", "1e+", "0x10", "1,5", "NaN", "inf", " 1 2"] {
            assert_eq!(ok(bad), Err(DecimalError::NotANumber), "{bad:?}");
        }
        for bad in ["922337203685477.5808", "99999999999999999999", "1e300", "1e99999999999"] {
            assert_eq!(ok(bad), Err(DecimalError::OutOfRange), "{bad}");
        }
        assert_eq!(ok("1e-99999999999"), Err(DecimalError::TooPrecise));
        assert_eq!(ok("0e-99999999999"), Ok(Price(0)));
    }

    #[test]
    fn money_arithmetic_is_checked_not_saturating() {
        assert_eq!(Money(i64::MAX).checked_add(Money(1)), None);
        assert_eq!(Money(i64::MIN).checked_sub(Money(1)), None);
        assert!(std::panic::catch_unwind(|| Money(i64::MAX) + Money(1)).is_err());
        assert_eq!(Money(5) + Money(-7), Money(-2));
    }

    #[test]
    fn exact_strings_scope_writes_strings_and_reads_back() {
        let p = Price(373_401);
        let json = with_exact_strings(|| serde_json::to_string(&p).unwrap());
        assert_eq!(json, "\"37.3401\"");
        assert_eq!(serde_json::from_str::<Price>(&json).unwrap(), p);
        assert_eq!(serde_json::to_string(&p).unwrap(), "37.3401");
        assert_eq!(with_exact_strings(|| serde_json::to_string(&Money(-5_000)).unwrap()), "\"-0.50\"");
    }

    proptest::proptest! {
        /// Any integer part, any run of decimals: up to 4 places parse to exactly that value, more are refused.
        #[test]
        fn more_than_four_decimals_is_refused_at_every_magnitude(
            int in 0u64..922_337_203_685_477,
            frac in "[0-9]{0,4}",
            extra in "[0-9]{0,20}[1-9]",
            negative: bool,
        ) {
            let sign = if negative { "-" } else { "" };
            let exact = format!("{sign}{int}.{frac}");
            let units = (int as i64) * PRICE_SCALE + format!("{frac:0<4}").parse::<i64>().unwrap();
            let expected = if negative { -units } else { units };
            proptest::prop_assert_eq!(Price::parse_decimal(&exact), Ok(Price(expected)));
            let padded = format!("{frac:0<4}");
            let too_precise = format!("{sign}{int}.{padded}{extra}");
            proptest::prop_assert_eq!(Price::parse_decimal(&too_precise), Err(DecimalError::TooPrecise));
            proptest::prop_assert_eq!(Price::parse_decimal(&Price(expected).to_string()), Ok(Price(expected)));
        }
    }

    #[test]
    fn grid() {
        let tick = Price::from_f64(0.01).unwrap();
        assert!(Price::from_f64(37.12).unwrap().is_on_grid(tick));
        assert!(!Price::from_f64(37.125).unwrap().is_on_grid(tick));
        let win_tick = Price::from_f64(5.0).unwrap();
        assert!(Price::from_f64(128_455.0).unwrap().is_on_grid(win_tick));
        assert!(!Price::from_f64(128_453.0).unwrap().is_on_grid(win_tick));
    }

    #[test]
    fn display() {
        assert_eq!(Price(371_200).to_string(), "37.12");
        assert_eq!(Price(-5_000).to_string(), "-0.50");
        assert_eq!(Price(12_345).to_string(), "1.2345");
        assert_eq!(Money(2_000).to_string(), "R$ 0.20");
    }

    #[test]
    fn rounding_division() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(-4, 3), -1);
        assert_eq!(div_round(7, -2), -4);
    }

    #[test]
    fn serde_round_trips_exactly() {
        for units in [0i64, 1, 100, 371_200, 12_345, -5_000, 1_284_550_000, 999_999_999_999_999, -2_000_000_000_000_000]
        {
            let json = serde_json::to_string(&Price(units)).unwrap();
            assert_eq!(serde_json::from_str::<Price>(&json).unwrap(), Price(units), "{json}");
            let json = serde_json::to_string(&Money(units)).unwrap();
            assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), Money(units), "{json}");
        }
        assert_eq!(serde_json::to_string(&Price(371_200)).unwrap(), "37.12");
        assert!(serde_json::from_str::<Price>("37.123456").is_err());
        assert_eq!(serde_json::from_str::<Price>("38").unwrap(), Price(380_000));
    }

    #[test]
    fn notional_with_multiplier() {
        // 10 WIN contracts at 128,000 points, R$ 0.20 per point = R$ 256,000.
        let n = notional(Price::from_f64(128_000.0).unwrap(), Qty(10), Money::from_f64(0.2).unwrap());
        assert_eq!(n, Some(Money::from_brl(256_000)));
        assert_eq!(notional(Price(i64::MAX), Qty(1_000_000_000), Money::from_brl(10)), None);
    }
}

/// On the wire a price or an amount is a plain JSON number (a decimal with at most four places).
#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{KnownFormat, RefOr, Schema};

    fn decimal(description: &str) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .description(Some(description))
            .into()
    }

    impl utoipa::PartialSchema for super::Price {
        fn schema() -> RefOr<Schema> {
            decimal("A price in BRL (or index points), on the instrument's tick grid; at most 4 decimal places")
        }
    }
    impl utoipa::ToSchema for super::Price {}

    impl utoipa::PartialSchema for super::Money {
        fn schema() -> RefOr<Schema> {
            decimal("An amount in BRL; at most 4 decimal places")
        }
    }
    impl utoipa::ToSchema for super::Money {}
}
