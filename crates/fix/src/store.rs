//! What a session must remember across restarts: its next sequence numbers both ways and the application messages
//! it sent (to answer a ResendRequest), under one directory per session.
//!
//! Files: `seqnums` (fixed-width text, rewritten in place: `<next out> <next in> <session start>`), and `messages`
//! (append-only: `<seq> <length>\n<raw message>\n` per application message sent). A message is stored, and the
//! next outgoing number advanced, before it is written to the socket: a crash in between leaves a gap the
//! counterparty asks for and we can resend, never a number used twice. Writes are not fsynced (as QuickFIX's
//! FileStore): a process crash loses nothing, a power loss may lose the last messages, which the counterparty's
//! resend and the Order Manager's status requests recover.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub struct SessionStore {
    dir: PathBuf,
    seqnums: File,
    messages: File,
    next_out: u64,
    next_in: u64,
    /// When this sequence of numbers began (the last reset): the schedule resets once per session period.
    created: DateTime<Utc>,
    /// Where each kept message sits in `messages` (offset, length): the messages themselves stay on disk, so a
    /// session that runs for weeks without a reset holds 16 bytes per message, not the message.
    sent: BTreeMap<u64, (u64, usize)>,
    /// The length of `messages`: where the next record goes.
    end: u64,
}

const SEQ_WIDTH: usize = 20;

impl SessionStore {
    /// Opens (or creates, numbering from 1) the store in `dir`.
    pub fn open(dir: &Path, now: DateTime<Utc>) -> io::Result<SessionStore> {
        std::fs::create_dir_all(dir)?;
        let seq_path = dir.join("seqnums");
        let existed = seq_path.exists();
        let seqnums = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&seq_path)?;
        let messages = OpenOptions::new().read(true).append(true).create(true).open(dir.join("messages"))?;
        let mut store = SessionStore {
            dir: dir.to_path_buf(),
            seqnums,
            messages,
            next_out: 1,
            next_in: 1,
            created: now,
            sent: BTreeMap::new(),
            end: 0,
        };
        if existed {
            let mut text = String::new();
            (&store.seqnums).read_to_string(&mut text)?;
            let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("{}: unreadable", seq_path.display()));
            let mut parts = text.split_whitespace();
            store.next_out = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            store.next_in = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            store.created = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            store.load_messages()?;
        } else {
            store.write_seqnums()?;
        }
        Ok(store)
    }

    /// Indexes the kept messages. A torn last record (a crash mid-append) is cut off, so the next record is
    /// appended where the intact ones end.
    fn load_messages(&mut self) -> io::Result<()> {
        let mut reader = BufReader::new(File::open(self.dir.join("messages"))?);
        let mut head = String::new();
        let mut at = 0u64;
        loop {
            head.clear();
            let head_len = reader.read_line(&mut head)? as u64;
            if head_len == 0 {
                break;
            }
            let mut parts = head.split_whitespace();
            let (Some(seq), Some(len), true) = (
                parts.next().and_then(|v| v.parse::<u64>().ok()),
                parts.next().and_then(|v| v.parse::<usize>().ok()),
                head.ends_with('\n'),
            ) else {
                break;
            };
            let mut raw = vec![0u8; len + 1];
            if reader.read_exact(&mut raw).is_err() || raw[len] != b'\n' {
                break;
            }
            self.sent.insert(seq, (at + head_len, len));
            at += head_len + len as u64 + 1;
        }
        if at < self.messages.metadata()?.len() {
            tracing::warn!(dir = %self.dir.display(), "FIX message store ended in a torn record; cut off");
            self.messages.set_len(at)?;
        }
        self.end = at;
        Ok(())
    }

    fn write_seqnums(&mut self) -> io::Result<()> {
        let line = format!(
            "{:0w$} {:0w$} {}\n",
            self.next_out,
            self.next_in,
            self.created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            w = SEQ_WIDTH
        );
        self.seqnums.write_all_at(line.as_bytes(), 0)
    }

    pub fn next_out(&self) -> u64 {
        self.next_out
    }

    pub fn next_in(&self) -> u64 {
        self.next_in
    }

    pub fn created(&self) -> DateTime<Utc> {
        self.created
    }

    /// Takes the next outgoing number for a message that is not kept for resends (session messages).
    pub fn take_out(&mut self) -> io::Result<u64> {
        let seq = self.next_out;
        self.next_out += 1;
        self.write_seqnums()?;
        Ok(seq)
    }

    /// Keeps an application message sent with number `seq` (already taken) for resends.
    pub fn keep(&mut self, seq: u64, raw: &[u8]) -> io::Result<()> {
        let mut rec = Vec::with_capacity(raw.len() + 24);
        rec.extend_from_slice(format!("{seq} {}\n", raw.len()).as_bytes());
        rec.extend_from_slice(raw);
        rec.push(b'\n');
        self.messages.write_all(&rec)?;
        let head = rec.len() - raw.len() - 1;
        self.sent.insert(seq, (self.end + head as u64, raw.len()));
        self.end += rec.len() as u64;
        Ok(())
    }

    pub fn set_next_in(&mut self, next: u64) -> io::Result<()> {
        self.next_in = next;
        self.write_seqnums()
    }

    pub fn set_next_out(&mut self, next: u64) -> io::Result<()> {
        self.next_out = next;
        self.write_seqnums()
    }

    /// The application messages kept with numbers in `from..=to`, read back from the store.
    pub fn sent_between(&self, from: u64, to: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        self.sent
            .range(from..=to)
            .map(|(&seq, &(offset, len))| {
                let mut raw = vec![0u8; len];
                self.messages.read_exact_at(&mut raw, offset)?;
                Ok((seq, raw))
            })
            .collect()
    }

    /// Both numbers back to 1 and the kept messages dropped: a new sequence (ResetSeqNumFlag, a new session period).
    pub fn reset(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        self.messages.set_len(0)?;
        self.sent.clear();
        self.end = 0;
        self.next_out = 1;
        self.next_in = 1;
        self.created = now;
        self.write_seqnums()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_messages_survive_a_reopen_and_a_reset_clears_them() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let mut s = SessionStore::open(dir.path(), now).unwrap();
        assert_eq!((s.next_out(), s.next_in()), (1, 1));
        assert_eq!(s.take_out().unwrap(), 1);
        let seq = s.take_out().unwrap();
        s.keep(seq, b"8=FIX.4.4\x01...").unwrap();
        s.set_next_in(5).unwrap();
        drop(s);
        let s = SessionStore::open(dir.path(), now).unwrap();
        assert_eq!((s.next_out(), s.next_in()), (3, 5));
        assert_eq!(s.sent_between(1, 10).unwrap(), vec![(2, b"8=FIX.4.4\x01...".to_vec())]);
        // A torn record at the end is ignored, what came before stays.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("messages"))
            .unwrap()
            .write_all(b"3 40\n8=F")
            .unwrap();
        drop(s);
        let mut s = SessionStore::open(dir.path(), now).unwrap();
        assert_eq!(s.sent_between(1, 10).unwrap().len(), 1);
        // The torn bytes are gone: what is kept next reads back whole after another reopen.
        let seq = s.take_out().unwrap();
        s.keep(seq, b"8=FIX.4.4\x01next").unwrap();
        drop(s);
        let mut s = SessionStore::open(dir.path(), now).unwrap();
        assert_eq!(s.sent_between(3, 3).unwrap(), vec![(3, b"8=FIX.4.4\x01next".to_vec())]);
        s.reset(now).unwrap();
        drop(s);
        let s = SessionStore::open(dir.path(), now).unwrap();
        assert_eq!((s.next_out(), s.next_in(), s.sent_between(1, 10).unwrap().len()), (1, 1, 0));
    }
}
