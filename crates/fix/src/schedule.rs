//! When a session may be up, in São Paulo time: a daily window on chosen weekdays (B3's order entry opens before
//! the market and closes after it). Outside it the initiator stays logged out; each window is a new session
//! period, whose first logon resets the sequence numbers.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::America::Sao_Paulo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub days: Vec<Weekday>,
}

impl Schedule {
    /// `start` and `end` as `HH:MM` (or `HH:MM:SS`), `days` as `mon,tue,...` (empty: Monday to Friday).
    pub fn parse(start: &str, end: &str, days: &[String]) -> Result<Schedule, String> {
        let time = |s: &str| {
            NaiveTime::parse_from_str(s, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
                .map_err(|_| format!("{s:?} is not a time of day (HH:MM)"))
        };
        let (start, end) = (time(start)?, time(end)?);
        if start >= end {
            return Err(format!("the session must start before it ends ({start} to {end}, São Paulo time)"));
        }
        let days = if days.is_empty() {
            vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
        } else {
            days.iter()
                .map(|d| d.parse::<Weekday>().map_err(|_| format!("{d:?} is not a weekday (mon, tue, ...)")))
                .collect::<Result<_, _>>()?
        };
        Ok(Schedule { start, end, days })
    }

    /// The window containing `t`, as UTC instants.
    pub fn window_at(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let local = t.with_timezone(&Sao_Paulo);
        let date = local.date_naive();
        if !self.days.contains(&date.weekday()) {
            return None;
        }
        let at = |time: NaiveTime| Sao_Paulo.from_local_datetime(&date.and_time(time)).earliest();
        let (start, end) = (at(self.start)?.with_timezone(&Utc), at(self.end)?.with_timezone(&Utc));
        (start <= t && t < end).then_some((start, end))
    }

    /// When the next window opens after `t` (within the next two weeks).
    pub fn next_start(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&Sao_Paulo).date_naive();
        (0..15).find_map(|d| {
            let date = local + Duration::days(d);
            if !self.days.contains(&date.weekday()) {
                return None;
            }
            let start = Sao_Paulo.from_local_datetime(&date.and_time(self.start)).earliest()?.with_timezone(&Utc);
            (start > t).then_some(start)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn windows_are_in_sao_paulo_time_on_weekdays() {
        let s = Schedule::parse("09:00", "18:30", &[]).unwrap();
        // Friday 2026-12-04, 09:00 in São Paulo is 12:00 UTC.
        assert_eq!(s.window_at(utc("2026-12-04T11:59:59Z")), None);
        assert_eq!(s.window_at(utc("2026-12-04T12:00:00Z")).map(|w| w.0), Some(utc("2026-12-04T12:00:00Z")));
        assert_eq!(s.window_at(utc("2026-12-04T21:30:00Z")), None);
        // Saturday: closed; the next window is Monday's.
        assert_eq!(s.window_at(utc("2026-12-05T15:00:00Z")), None);
        assert_eq!(s.next_start(utc("2026-12-05T15:00:00Z")), Some(utc("2026-12-07T12:00:00Z")));
        assert!(Schedule::parse("18:00", "09:00", &[]).is_err());
        assert!(Schedule::parse("9h", "18:00", &[]).is_err());
        assert!(Schedule::parse("09:00", "18:00", &["someday".into()]).is_err());
    }
}
