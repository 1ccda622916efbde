//! The FIX log: every message in and out, and the session's own events, one line each, in a file per São Paulo
//! date (`fix-YYYYMMDD.log`): a new day starts a new file, old files stay for the audit trail. SOH shows as `|`.

use crate::codec::printable;
use chrono::{DateTime, NaiveDate, Utc};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

pub struct FixLog {
    dir: PathBuf,
    day: Option<NaiveDate>,
    file: Option<BufWriter<File>>,
}

#[derive(Clone, Copy)]
pub enum Direction {
    In,
    Out,
    Event,
}

impl FixLog {
    pub fn new(dir: PathBuf) -> FixLog {
        FixLog { dir, day: None, file: None }
    }

    pub fn path_for(&self, day: NaiveDate) -> PathBuf {
        self.dir.join(format!("fix-{}.log", day.format("%Y%m%d")))
    }

    /// Writes one line; a log that cannot be written is reported once per failure, never stops the session.
    pub fn write(&mut self, now: DateTime<Utc>, dir: Direction, bytes: &[u8]) {
        if let Err(e) = self.try_write(now, dir, bytes) {
            metrics::counter!("ts_fix_log_errors_total").increment(1);
            tracing::error!(dir = %self.dir.display(), error = %e, "could not write the FIX log");
            self.file = None;
            self.day = None;
        }
    }

    fn try_write(&mut self, now: DateTime<Utc>, dir: Direction, bytes: &[u8]) -> io::Result<()> {
        let day = now.with_timezone(&chrono_tz::America::Sao_Paulo).date_naive();
        if self.day != Some(day) || self.file.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let f = OpenOptions::new().create(true).append(true).open(self.path_for(day))?;
            self.file = Some(BufWriter::new(f));
            self.day = Some(day);
        }
        let arrow = match dir {
            Direction::In => "<",
            Direction::Out => ">",
            Direction::Event => "*",
        };
        if let Some(f) = self.file.as_mut() {
            let text = match dir {
                Direction::Event => String::from_utf8_lossy(bytes).into_owned(),
                _ => printable(bytes),
            };
            writeln!(f, "{} {arrow} {text}", now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))?;
        }
        Ok(())
    }

    /// Pushes buffered lines to the file: the session calls it after each burst of messages.
    pub fn flush(&mut self) {
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.flush() {
                tracing::error!(error = %e, "could not flush the FIX log");
            }
        }
    }
}
