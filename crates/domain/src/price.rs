//! Fixed-point prices and money.
//!
//! A [`Price`] is an integer count of 1/10,000 of the quote unit (BRL for stocks, index or dollar points for
//! futures). Every B3 tick size in use (0.01, 0.5, 5) is a whole number of these units, so "on the tick grid" is an
//! exact integer remainder check and no arithmetic on money ever goes through `f64`. Floats appear only at the JSON
//! edge, where [`Price::from_f64`] refuses any value that is not exactly representable.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Fixed-point scale shared by [`Price`] and [`Money`]: 4 decimal places.
pub const PRICE_SCALE: i64 = 10_000;

/// Quantities are whole shares or contracts.
pub type Qty = i64;

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

    /// Converts a decimal number from the outside world. Returns `None` for non-finite values, values out of
    /// range, or values with more precision than 4 decimal places (after tolerating binary rounding noise).
    pub fn from_f64(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        let scaled = value * PRICE_SCALE as f64;
        if scaled.abs() > 9.0e15 {
            return None;
        }
        let rounded = scaled.round();
        // Binary floats cannot hold 37.12 exactly; anything within a millionth of a unit is that decimal.
        if (scaled - rounded).abs() > 1e-6 * scaled.abs().max(1.0) {
            return None;
        }
        Some(Price(rounded as i64))
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
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let scale = PRICE_SCALE as u64;
        let frac = abs % scale;
        let mut frac_str = format!("{frac:04}");
        while frac_str.len() > 2 && frac_str.ends_with('0') {
            frac_str.pop();
        }
        write!(f, "{sign}{}.{frac_str}", abs / scale)
    }
}

/// An amount of BRL in 1/10,000 units. Sums of many fills stay exact; division (average cost) rounds half away
/// from zero once, at the point where it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_f64(value: f64) -> Option<Self> {
        Price::from_f64(value).map(|p| Money(p.0))
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
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0.saturating_sub(rhs.0))
    }
}

impl std::ops::Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R$ {}", Price(self.0))
    }
}

// On the wire (API and journal) prices and money are plain decimal numbers. Serialization prints the shortest
// decimal that maps back to the same double, and deserialization goes through `from_f64`, so any value up to
// ~2×10^11 round-trips to the same integer exactly; anything with more than 4 decimals is refused, not rounded.
fn serialize_units<S: Serializer>(units: i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(units as f64 / PRICE_SCALE as f64)
}

fn deserialize_units<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = f64::deserialize(d)?;
    Price::from_f64(v)
        .map(|p| p.0)
        .ok_or_else(|| serde::de::Error::custom(format!("{v} is not a decimal with at most 4 places")))
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
pub(crate) fn div_round(num: i128, den: i128) -> i128 {
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

/// Clamps an i128 intermediate back into the i64 domain; amounts beyond ±922 trillion BRL are not real.
pub(crate) fn clamp_i64(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Cash value of `qty` at `price` for an instrument with `multiplier` (BRL per point, itself fixed-point).
pub fn notional(price: Price, qty: Qty, multiplier: Money) -> Money {
    let v = price.0 as i128 * qty as i128 * multiplier.0 as i128;
    Money(clamp_i64(div_round(v, PRICE_SCALE as i128)))
}

#[cfg(test)]
mod tests {
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
        let n = notional(Price::from_f64(128_000.0).unwrap(), 10, Money::from_f64(0.2).unwrap());
        assert_eq!(n, Money::from_brl(256_000));
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
