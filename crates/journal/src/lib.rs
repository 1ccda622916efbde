//! The journal: the Order Manager's source of truth.
//!
//! File layout: an 8-byte magic, then records of `len: u32 LE | crc32(payload): u32 LE | payload`. A record is
//! acknowledged only after the bytes that contain it have been written and `fdatasync`ed. One writer thread does
//! the syncing; everything appended while it syncs goes out in the next batch (group commit), so throughput grows
//! with concurrency while each caller still waits for its own durability.
//!
//! On open, the file is scanned; the first record whose header or payload is incomplete, whose length is absurd or
//! whose checksum does not match ends the good prefix, and the file is truncated back to it. A torn tail is what a
//! crash in the middle of a write leaves; nothing after it can be trusted, so nothing after it is kept.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::watch;

pub const MAGIC: &[u8; 8] = b"TSJRNL01";
const HEADER: usize = 8;
/// No legitimate record comes near this; a length beyond it is corruption, not a record.
pub const MAX_RECORD: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0} is not a journal (bad magic)")]
    NotAJournal(PathBuf),
    #[error("record of {0} bytes exceeds the maximum")]
    TooLarge(usize),
    #[error("the journal failed and accepts no more writes: {0}")]
    Failed(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io { path: path.to_path_buf(), source }
}

/// Result of scanning journal bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Byte ranges of the payloads of the good records.
    pub records: Vec<(usize, usize)>,
    /// Length of the good prefix (where the next record goes).
    pub good_len: usize,
    /// Bytes after the good prefix that were discarded.
    pub discarded: usize,
}

/// Scans the records after the magic. Never panics, whatever the bytes.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut pos = MAGIC.len().min(bytes.len());
    let mut records = Vec::new();
    while let Some(header) = bytes.get(pos..pos + HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD {
            break;
        }
        let start = pos + HEADER;
        let Some(payload) = bytes.get(start..start + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        records.push((start, start + len));
        pos = start + len;
    }
    Scan { records, good_len: pos, discarded: bytes.len() - pos }
}

/// Reads the good records of a journal without modifying it (safe while a server has it open).
pub fn read_file(path: &Path) -> Result<Vec<Vec<u8>>, JournalError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        if bytes.is_empty() || MAGIC.starts_with(&bytes) {
            return Ok(Vec::new());
        }
        return Err(JournalError::NotAJournal(path.to_path_buf()));
    }
    Ok(scan(&bytes).records.iter().map(|&(s, e)| bytes[s..e].to_vec()).collect())
}

fn encode_into(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// What opening found.
#[derive(Debug)]
pub struct Recovery {
    pub records: Vec<Vec<u8>>,
    /// Bytes cut from a torn or corrupt tail.
    pub truncated_bytes: usize,
}

struct State {
    pending: Vec<u8>,
    /// Sequence number of the last record appended (1-based; 0 = none).
    appended: u64,
    /// Byte offset where each record starts, for random access by the audit API.
    offsets: Vec<u64>,
    /// File length once everything pending is written.
    end: u64,
    failed: Option<String>,
    closing: bool,
    /// The writer is parked on the condvar; only then does an append need to wake it (a futex syscall).
    writer_idle: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    durable: watch::Sender<u64>,
    path: PathBuf,
}

/// A handle to an open journal. Cloning shares the same writer.
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, recovering its good prefix and truncating any torn tail.
    pub fn open(path: impl AsRef<Path>) -> Result<(Journal, Recovery), JournalError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err(&path))?;
        if bytes.is_empty() {
            file.write_all(MAGIC).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
            sync_dir(&path)?;
            bytes.extend_from_slice(MAGIC);
        } else if bytes.len() < MAGIC.len() {
            // A crash while writing the magic of a brand-new journal: nothing was ever acknowledged.
            if MAGIC.starts_with(&bytes) {
                file.set_len(0).map_err(io_err(&path))?;
                file.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
                file.write_all(MAGIC).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
                bytes = MAGIC.to_vec();
            } else {
                return Err(JournalError::NotAJournal(path));
            }
        } else if &bytes[..MAGIC.len()] != MAGIC {
            return Err(JournalError::NotAJournal(path));
        }
        let scan = scan(&bytes);
        if scan.discarded > 0 {
            tracing::warn!(path = %path.display(), discarded_bytes = scan.discarded, kept_records = scan.records.len(),
                "journal tail was torn or corrupt; truncated to the last good record");
            file.set_len(scan.good_len as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        file.seek(SeekFrom::Start(scan.good_len as u64)).map_err(io_err(&path))?;
        let offsets = scan.records.iter().map(|(s, _)| (s - HEADER) as u64).collect::<Vec<_>>();
        let records = scan.records.iter().map(|&(s, e)| bytes[s..e].to_vec()).collect::<Vec<_>>();
        let count = records.len() as u64;
        let (durable, _) = watch::channel(count);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::with_capacity(1 << 20),
                appended: count,
                offsets,
                end: scan.good_len as u64,
                failed: None,
                closing: false,
                writer_idle: false,
            }),
            wake: Condvar::new(),
            durable,
            path: path.clone(),
        });
        let writer_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer_loop(writer_shared, file))
            .map_err(io_err(&path))?;
        let journal = Journal { shared, writer: Arc::new(Mutex::new(Some(handle))) };
        Ok((journal, Recovery { records, truncated_bytes: scan.discarded }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the buffer half-encoded (encode is infallible), so the
        // state is usable even if poisoned.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a record and returns its sequence number; it is durable once [`Journal::wait_durable`] returns.
    pub fn append(&self, payload: &[u8]) -> Result<u64, JournalError> {
        let (seq, idle) = self.append_quiet(payload)?;
        if idle {
            self.shared.wake.notify_one();
        }
        Ok(seq)
    }

    /// Appends without waking an idle writer: the caller promises a [`Journal::wait_durable`] (which wakes it) soon.
    /// Saves a futex wake on the path that routes an order before waiting for the disk.
    pub fn append_lazy(&self, payload: &[u8]) -> Result<u64, JournalError> {
        self.append_quiet(payload).map(|(seq, _)| seq)
    }

    fn append_quiet(&self, payload: &[u8]) -> Result<(u64, bool), JournalError> {
        if payload.len() > MAX_RECORD {
            return Err(JournalError::TooLarge(payload.len()));
        }
        let mut st = self.lock();
        if let Some(e) = &st.failed {
            return Err(JournalError::Failed(e.clone()));
        }
        let offset = st.end;
        st.offsets.push(offset);
        encode_into(&mut st.pending, payload);
        st.end += (HEADER + payload.len()) as u64;
        st.appended += 1;
        let seq = st.appended;
        Ok((seq, st.writer_idle))
    }

    /// Waits until record `seq` (and all before it) is on disk.
    pub async fn wait_durable(&self, seq: u64) -> Result<(), JournalError> {
        let mut rx = self.shared.durable.subscribe();
        if *rx.borrow() < seq {
            self.kick();
        }
        loop {
            if *rx.borrow_and_update() >= seq {
                return Ok(());
            }
            if let Some(e) = &self.lock().failed {
                return Err(JournalError::Failed(e.clone()));
            }
            if rx.changed().await.is_err() {
                return Err(JournalError::Failed("journal writer stopped".into()));
            }
        }
    }

    /// Blocking variant for non-async callers (CLI tools, tests).
    pub fn wait_durable_blocking(&self, seq: u64) -> Result<(), JournalError> {
        let mut rx = self.shared.durable.subscribe();
        self.kick();
        loop {
            if *rx.borrow_and_update() >= seq {
                return Ok(());
            }
            if let Some(e) = &self.lock().failed {
                return Err(JournalError::Failed(e.clone()));
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// Wakes the writer if it is idle and something is pending.
    /// Wakes an idle writer for records appended with [`Journal::append_lazy`] that nobody will wait for.
    pub fn flush_soon(&self) {
        self.kick();
    }

    fn kick(&self) {
        let st = self.lock();
        let wake = st.writer_idle && !st.pending.is_empty();
        drop(st);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    pub fn len(&self) -> u64 {
        self.lock().appended
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn durable_seq(&self) -> u64 {
        *self.shared.durable.borrow()
    }

    pub fn failure(&self) -> Option<String> {
        self.lock().failed.clone()
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Reads the durable records at these 0-based indexes (ascending), straight from the file; indexes not yet
    /// durable are left out. One open and one positioned read per record.
    pub fn read_at(&self, indexes: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
        let durable = self.durable_seq();
        let spans: Vec<(u64, u64, u64)> = {
            let st = self.lock();
            let last = durable.min(st.offsets.len() as u64);
            indexes
                .iter()
                .filter(|&&i| i < last)
                .map(|&i| {
                    let start = st.offsets[i as usize];
                    let end = st.offsets.get(i as usize + 1).copied().unwrap_or(st.end);
                    (i, start, end)
                })
                .collect()
        };
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        let path = &self.shared.path;
        let mut file = File::open(path).map_err(io_err(path))?;
        let mut out = Vec::with_capacity(spans.len());
        for (i, start, end) in spans {
            file.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
            let mut buf = vec![0u8; (end - start) as usize];
            file.read_exact(&mut buf).map_err(io_err(path))?;
            if let Some(h) = buf.get(..HEADER) {
                let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                if let Some(p) = buf.get(HEADER..HEADER + len) {
                    out.push((i, p.to_vec()));
                }
            }
        }
        Ok(out)
    }

    /// Reads durable records `[from, from + limit)` (0-based) straight from the file.
    pub fn read_range(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, JournalError> {
        let durable = self.durable_seq();
        let (start, end) = {
            let st = self.lock();
            let last = durable.min(st.offsets.len() as u64);
            if from >= last || limit == 0 {
                return Ok(Vec::new());
            }
            let to = from.saturating_add(limit as u64).min(last);
            let start = st.offsets[from as usize];
            let end = if (to as usize) < st.offsets.len() { st.offsets[to as usize] } else { st.end };
            (start, end)
        };
        let path = &self.shared.path;
        let mut file = File::open(path).map_err(io_err(path))?;
        file.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
        let mut buf = vec![0u8; (end - start) as usize];
        file.read_exact(&mut buf).map_err(io_err(path))?;
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(h) = buf.get(pos..pos + HEADER) {
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let Some(p) = buf.get(pos + HEADER..pos + HEADER + len) else {
                break;
            };
            out.push(p.to_vec());
            pos += HEADER + len;
        }
        Ok(out)
    }

    /// Flushes what is pending and stops the writer thread. Appends after this fail.
    pub fn close(&self) {
        {
            let mut st = self.lock();
            st.closing = true;
        }
        self.shared.wake.notify_one();
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn sync_dir(path: &Path) -> Result<(), JournalError> {
    if let Some(dir) = path.parent() {
        // Makes the directory entry of a new file durable; required on ext4/xfs for the file to survive a crash.
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    }
    Ok(())
}

fn writer_loop(shared: Arc<Shared>, mut file: File) {
    let mut batch = Vec::with_capacity(1 << 20);
    let fsync_hist = metrics::histogram!("ts_journal_fsync_seconds");
    let batch_hist = metrics::histogram!("ts_journal_batch_records");
    loop {
        let (upto, closing) = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while st.pending.is_empty() && !st.closing {
                st.writer_idle = true;
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                st.writer_idle = false;
            }
            std::mem::swap(&mut st.pending, &mut batch);
            (st.appended, st.closing)
        };
        if !batch.is_empty() {
            let before = *shared.durable.borrow();
            let started = Instant::now();
            let result = file.write_all(&batch).and_then(|_| file.sync_data());
            fsync_hist.record(started.elapsed().as_secs_f64());
            batch_hist.record((upto - before) as f64);
            batch.clear();
            if let Err(e) = result {
                // After a failed fsync the page cache state is unknown (fsyncgate): refuse all further writes.
                let msg = format!("write/fsync of {} failed: {e}", shared.path.display());
                tracing::error!(error = %msg, "journal failed");
                shared.state.lock().unwrap_or_else(|e| e.into_inner()).failed = Some(msg);
                shared.durable.send_modify(|_| {});
                return;
            }
            shared.durable.send_replace(upto);
        }
        if closing {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.pending.is_empty() {
                st.failed = Some("journal closed".into());
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(j: &Journal) -> Vec<Vec<u8>> {
        j.read_range(0, usize::MAX).unwrap()
    }

    #[tokio::test]
    async fn append_wait_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.log");
        let (j, rec) = Journal::open(&path).unwrap();
        assert!(rec.records.is_empty());
        let mut last = 0;
        for i in 0..100u32 {
            last = j.append(format!("record {i}").as_bytes()).unwrap();
        }
        j.wait_durable(last).await.unwrap();
        assert_eq!(last, 100);
        assert_eq!(records(&j).len(), 100);
        assert_eq!(j.read_range(98, 10).unwrap(), vec![b"record 98".to_vec(), b"record 99".to_vec()]);
        j.close();
        assert!(j.append(b"after close").is_err());
        let (j2, rec) = Journal::open(&path).unwrap();
        assert_eq!(rec.records.len(), 100);
        assert_eq!(rec.records[42], b"record 42");
        assert_eq!(rec.truncated_bytes, 0);
        let s = j2.append(b"more").unwrap();
        assert_eq!(s, 101);
        j2.wait_durable(s).await.unwrap();
        j2.close();
    }

    #[test]
    fn refuses_a_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.log");
        std::fs::write(&path, b"hello world, not a journal").unwrap();
        assert!(matches!(Journal::open(&path), Err(JournalError::NotAJournal(_))));
    }

    #[test]
    fn corrupt_middle_record_cuts_from_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.log");
        let (j, _) = Journal::open(&path).unwrap();
        for p in [b"aaaa", b"bbbb", b"cccc"] {
            let s = j.append(p).unwrap();
            j.wait_durable_blocking(s).unwrap();
        }
        j.close();
        let mut bytes = std::fs::read(&path).unwrap();
        // Flip a payload byte of the second record.
        let second_payload = MAGIC.len() + (HEADER + 4) + HEADER;
        bytes[second_payload] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (j, rec) = Journal::open(&path).unwrap();
        assert_eq!(rec.records, vec![b"aaaa".to_vec()]);
        assert_eq!(rec.truncated_bytes, 2 * (HEADER + 4));
        j.close();
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, MAGIC.len() + HEADER + 4);
    }

    /// Truncating the file at every byte offset of its last record recovers exactly the records before it
    /// (or all of them when nothing was cut), never panics and never invents a record.
    #[test]
    fn truncation_at_every_offset_of_the_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.log");
        let payloads: Vec<Vec<u8>> =
            (0..5).map(|i| format!("{{\"seq\":{i},\"kind\":\"order\"}}").into_bytes()).collect();
        let (j, _) = Journal::open(&path).unwrap();
        for p in &payloads {
            let s = j.append(p).unwrap();
            j.wait_durable_blocking(s).unwrap();
        }
        j.close();
        let full = std::fs::read(&path).unwrap();
        let last_start = full.len() - (HEADER + payloads[4].len());
        let trial = dir.path().join("t.log");
        for cut in last_start..=full.len() {
            std::fs::write(&trial, &full[..cut]).unwrap();
            let (j, rec) = Journal::open(&trial).unwrap();
            let expected = if cut == full.len() { &payloads[..] } else { &payloads[..4] };
            assert_eq!(rec.records, expected, "cut at {cut}");
            assert_eq!(rec.truncated_bytes, if cut == full.len() { 0 } else { cut - last_start });
            // The journal keeps working after recovery and the new record follows the good prefix.
            let s = j.append(b"next").unwrap();
            j.wait_durable_blocking(s).unwrap();
            j.close();
            let (j, rec) = Journal::open(&trial).unwrap();
            assert_eq!(rec.records.last().map(|r| r.as_slice()), Some(&b"next"[..]));
            assert_eq!(rec.records.len(), expected.len() + 1);
            j.close();
        }
    }

    proptest::proptest! {
        #[test]
        fn scan_never_panics_and_only_returns_checksummed_records(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut data = MAGIC.to_vec();
            data.extend_from_slice(&bytes);
            let s = scan(&data);
            proptest::prop_assert!(s.good_len <= data.len());
            for (a, b) in s.records {
                let h = &data[a - HEADER..a];
                let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
                proptest::prop_assert_eq!(crc32fast::hash(&data[a..b]), crc);
            }
        }
    }
}
