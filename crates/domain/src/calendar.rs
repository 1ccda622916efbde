//! Trading sessions. Real feeds follow B3's hours in America/Sao_Paulo; the simulated market is open at any hour
//! so that a demo works at night, but it still has a session date (for daily P&L and DAY order expiry).

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::America::Sao_Paulo;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum TradingCalendar {
    /// Always open (the simulated market).
    Continuous,
    /// Open between `open` and `close` São Paulo time on weekdays, except `holidays`.
    Sessions { open: NaiveTime, close: NaiveTime, holidays: Vec<NaiveDate> },
}

impl TradingCalendar {
    /// B3's regular hours as the original system configured them: 09:00–18:00 America/Sao_Paulo.
    pub fn b3_regular() -> Self {
        TradingCalendar::Sessions {
            open: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            close: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default(),
            holidays: Vec::new(),
        }
    }

    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        match self {
            TradingCalendar::Continuous => true,
            TradingCalendar::Sessions { open, close, holidays } => {
                let local = now.with_timezone(&Sao_Paulo);
                let date = local.date_naive();
                if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) || holidays.contains(&date) {
                    return false;
                }
                let t = local.time();
                t >= *open && t < *close
            }
        }
    }

    /// When the trading date after `now`'s begins (the next midnight in São Paulo), in UTC.
    pub fn next_date_change(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        use chrono::TimeZone;
        let tomorrow = self.session_date(now).succ_opt().unwrap_or(NaiveDate::MAX);
        let midnight = tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default();
        // São Paulo has no DST now, but a gap or overlap at midnight is handled by taking the earliest instant.
        Sao_Paulo
            .from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now + chrono::Duration::hours(1))
    }

    /// The trading date `now` belongs to, in São Paulo.
    pub fn session_date(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&Sao_Paulo).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn b3_hours_in_sao_paulo() {
        let cal = TradingCalendar::b3_regular();
        // Monday 2025-11-24 12:00 UTC = 09:00 in São Paulo (UTC−3): open.
        assert!(cal.is_open(Utc.with_ymd_and_hms(2025, 11, 24, 12, 0, 0).unwrap()));
        assert!(!cal.is_open(Utc.with_ymd_and_hms(2025, 11, 24, 11, 59, 59).unwrap()));
        assert!(cal.is_open(Utc.with_ymd_and_hms(2025, 11, 24, 20, 59, 59).unwrap()));
        assert!(!cal.is_open(Utc.with_ymd_and_hms(2025, 11, 24, 21, 0, 0).unwrap()));
        // Saturday.
        assert!(!cal.is_open(Utc.with_ymd_and_hms(2025, 11, 22, 15, 0, 0).unwrap()));
        assert!(TradingCalendar::Continuous.is_open(Utc.with_ymd_and_hms(2025, 11, 22, 3, 0, 0).unwrap()));
    }

    #[test]
    fn holidays_close_the_session() {
        let holiday = NaiveDate::from_ymd_opt(2025, 11, 20).unwrap();
        let cal = match TradingCalendar::b3_regular() {
            TradingCalendar::Sessions { open, close, .. } => {
                TradingCalendar::Sessions { open, close, holidays: vec![holiday] }
            }
            c => c,
        };
        assert!(!cal.is_open(Utc.with_ymd_and_hms(2025, 11, 20, 15, 0, 0).unwrap()));
    }

    #[test]
    fn next_date_change_is_local_midnight() {
        let cal = TradingCalendar::Continuous;
        let now = Utc.with_ymd_and_hms(2025, 11, 24, 15, 0, 0).unwrap();
        assert_eq!(cal.next_date_change(now), Utc.with_ymd_and_hms(2025, 11, 25, 3, 0, 0).unwrap());
    }

    #[test]
    fn session_date_is_local() {
        // 01:00 UTC on the 25th is still the 24th in São Paulo.
        let cal = TradingCalendar::Continuous;
        assert_eq!(
            cal.session_date(Utc.with_ymd_and_hms(2025, 11, 25, 1, 0, 0).unwrap()),
            NaiveDate::from_ymd_opt(2025, 11, 24).unwrap()
        );
    }
}
