//! Quantities: whole shares or contracts, signed where a position is meant (positive long, negative short).
//!
//! A newtype so that a quantity is never added to a price's units, a count of orders or a lot number by accident,
//! and so that its arithmetic is checked: an overflow is a bug upstream, and stopping is better than carrying on
//! with a wrong position (the operators panic with the operands; the `checked_*` forms return `None`).

use crate::order::Side;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Qty(pub i64);

impl Qty {
    pub const ZERO: Qty = Qty(0);

    pub const fn get(self) -> i64 {
        self.0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// -1, 0 or +1.
    pub const fn signum(self) -> i64 {
        self.0.signum()
    }

    pub fn checked_add(self, rhs: Qty) -> Option<Qty> {
        self.0.checked_add(rhs.0).map(Qty)
    }

    pub fn checked_sub(self, rhs: Qty) -> Option<Qty> {
        self.0.checked_sub(rhs.0).map(Qty)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Qty> {
        self.0.checked_mul(factor).map(Qty)
    }

    pub fn abs(self) -> Qty {
        Qty(self.0.checked_abs().unwrap_or_else(|| panic!("quantity overflow: |{}|", self.0)))
    }

    /// The quantity with the sign an execution on `side` gives a net position.
    pub fn signed(self, side: Side) -> Qty {
        match side {
            Side::Buy => self,
            Side::Sell => -self,
        }
    }

    /// How many whole `lot`s this holds and the odd quantity left over; a lot of zero or less counts as one share.
    pub fn in_lots(self, lot: Qty) -> (i64, Qty) {
        let lot = lot.0.max(1);
        (self.0 / lot, Qty(self.0 % lot))
    }

    /// Whether this is a whole number of `lot`s (a lot of zero or less divides nothing).
    pub fn is_multiple_of_lot(self, lot: Qty) -> bool {
        lot.0 > 0 && self.0 % lot.0 == 0
    }
}

impl From<Qty> for i128 {
    fn from(q: Qty) -> i128 {
        i128::from(q.0)
    }
}

impl std::ops::Add for Qty {
    type Output = Qty;
    fn add(self, rhs: Qty) -> Qty {
        self.checked_add(rhs).unwrap_or_else(|| panic!("quantity overflow: {self} + {rhs}"))
    }
}

impl std::ops::AddAssign for Qty {
    fn add_assign(&mut self, rhs: Qty) {
        *self = *self + rhs;
    }
}

impl std::ops::Sub for Qty {
    type Output = Qty;
    fn sub(self, rhs: Qty) -> Qty {
        self.checked_sub(rhs).unwrap_or_else(|| panic!("quantity overflow: {self} - {rhs}"))
    }
}

impl std::ops::SubAssign for Qty {
    fn sub_assign(&mut self, rhs: Qty) {
        *self = *self - rhs;
    }
}

impl std::ops::Neg for Qty {
    type Output = Qty;
    fn neg(self) -> Qty {
        Qty(self.0.checked_neg().unwrap_or_else(|| panic!("quantity overflow: -{}", self.0)))
    }
}

/// A quantity times a count (of lots, of levels) is a quantity.
impl std::ops::Mul<i64> for Qty {
    type Output = Qty;
    fn mul(self, n: i64) -> Qty {
        self.checked_mul(n).unwrap_or_else(|| panic!("quantity overflow: {self} × {n}"))
    }
}

impl std::ops::Mul<Qty> for i64 {
    type Output = Qty;
    fn mul(self, q: Qty) -> Qty {
        q * self
    }
}

/// A share of a quantity, rounded toward zero as integer division is.
impl std::ops::Div<i64> for Qty {
    type Output = Qty;
    fn div(self, n: i64) -> Qty {
        Qty(self.0.checked_div(n).unwrap_or_else(|| panic!("quantity division: {self} / {n}")))
    }
}

impl std::iter::Sum for Qty {
    fn sum<I: Iterator<Item = Qty>>(iter: I) -> Qty {
        iter.fold(Qty::ZERO, |a, b| a + b)
    }
}

impl<'a> std::iter::Sum<&'a Qty> for Qty {
    fn sum<I: Iterator<Item = &'a Qty>>(iter: I) -> Qty {
        iter.copied().sum()
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for Qty {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Qty, Self::Err> {
        s.trim().parse().map(Qty)
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{KnownFormat, RefOr, Schema};

    impl utoipa::PartialSchema for super::Qty {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .description(Some("Whole shares or contracts"))
                .into()
        }
    }
    impl utoipa::ToSchema for super::Qty {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked_not_wrapping() {
        assert_eq!(Qty(i64::MAX).checked_add(Qty(1)), None);
        assert_eq!(Qty(i64::MIN).checked_sub(Qty(1)), None);
        assert!(std::panic::catch_unwind(|| Qty(i64::MAX) + Qty(1)).is_err());
        assert!(std::panic::catch_unwind(|| -Qty(i64::MIN)).is_err());
        assert!(std::panic::catch_unwind(|| Qty(i64::MIN).abs()).is_err());
        assert_eq!(Qty(5) - Qty(7), Qty(-2));
        assert_eq!([Qty(1), Qty(2), Qty(3)].iter().sum::<Qty>(), Qty(6));
    }

    #[test]
    fn sides_lots_and_the_wire() {
        assert_eq!(Qty(100).signed(Side::Sell), Qty(-100));
        assert_eq!(Qty(100).signed(Side::Buy), Qty(100));
        assert!(Qty(300).is_multiple_of_lot(Qty(100)));
        assert!(!Qty(150).is_multiple_of_lot(Qty(100)));
        assert!(!Qty(150).is_multiple_of_lot(Qty::ZERO));
        assert_eq!(Qty(350).in_lots(Qty(100)), (3, Qty(50)));
        assert_eq!(Qty(7).in_lots(Qty::ZERO), (7, Qty::ZERO));
        assert_eq!(serde_json::to_string(&Qty(-42)).unwrap(), "-42");
        assert_eq!(serde_json::from_str::<Qty>("42").unwrap(), Qty(42));
        assert!(serde_json::from_str::<Qty>("4.5").is_err());
        assert_eq!("  17 ".parse::<Qty>(), Ok(Qty(17)));
    }
}
