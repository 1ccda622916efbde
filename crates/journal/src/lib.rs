//! The journal: the Order Manager's source of truth.
//!
//! A journal is a chain of segment files in one directory. The active segment (`oms.journal`) takes the appends;
//! once it holds [`Options::segment_bytes`] it is sealed (renamed `oms-<first>-<last>.journal`, the 1-based
//! sequence numbers of its first and last records) and a new active segment begins. Sealed segments that a
//! snapshot covers are moved to `archive/` by [`Journal::archive_through`]: never deleted, and still readable.
//!
//! Segment layout: an 8-byte magic (`TSJRNL02` followed by the u64 LE count of records before the segment; the
//! original single-file `TSJRNL01` journal has no count and starts at 0), then records of
//! `len: u32 LE | crc32(payload): u32 LE | payload`. A record is acknowledged only after the bytes that contain it
//! have been written and `fdatasync`ed. One writer thread does the syncing; everything appended while it syncs goes
//! out in the next batch (group commit), so throughput grows with concurrency while each caller still waits for its
//! own durability.
//!
//! On open, the active segment is scanned; the first record whose header or payload is incomplete, whose length is
//! absurd or whose checksum does not match ends the good prefix, and the file is truncated back to it. A torn tail
//! is what a crash in the middle of a write leaves; nothing after it can be trusted, so nothing after it is kept.
//! A sealed segment was complete when it was sealed: damage there is refused, never truncated away.

mod segments;

use segments::Chain;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::watch;

pub const MAGIC: &[u8; 8] = b"TSJRNL01";
/// Magic of a segment that records how many records came before it (8 more bytes).
pub const MAGIC_V2: &[u8; 8] = b"TSJRNL02";
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
    #[error("journal segment {path} is damaged: {detail}; restore it from a backup (records are never truncated out of a sealed segment)")]
    Damaged { path: PathBuf, detail: String },
    #[error("journal records {from} to {to} are missing: no segment in {dir} or its archive/ holds them")]
    Missing { dir: PathBuf, from: u64, to: u64 },
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
    scan_from(bytes, MAGIC.len())
}

/// Scans the records starting at byte `start`.
fn scan_from(bytes: &[u8], start: usize) -> Scan {
    let mut pos = start.min(bytes.len());
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

/// Reads every good record of the journal whose active segment is `path`, archived and sealed segments first,
/// without modifying anything (safe while a server has it open).
pub fn read_file(path: &Path) -> Result<Vec<Vec<u8>>, JournalError> {
    let chain = Chain::list(path)?;
    let mut out = Vec::new();
    for seg in &chain.sealed {
        out.extend(segments::read_sealed(&seg.path, seg.first, seg.last)?);
    }
    match std::fs::read(path) {
        Ok(bytes) => {
            let Some(data_start) = segments::data_start(&bytes, path)? else {
                return Ok(out);
            };
            out.extend(scan_from(&bytes, data_start).records.iter().map(|&(s, e)| bytes[s..e].to_vec()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !out.is_empty() => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    Ok(out)
}

fn encode_into(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// How a journal is opened.
#[derive(Clone)]
pub struct Options {
    /// The active segment is sealed and a new one begun once it holds this many bytes.
    pub segment_bytes: u64,
    /// Records up to this sequence number are already accounted for (by a snapshot): recovery returns only the
    /// records after it and reads no segment that ends before it.
    pub replay_after: u64,
    /// Told of every segment sealed, on the writer thread (keep it short: hand the news to another thread).
    pub on_seal: Option<Arc<dyn Fn(Sealed) + Send + Sync>>,
}

impl Default for Options {
    fn default() -> Self {
        Options { segment_bytes: 256 * 1024 * 1024, replay_after: 0, on_seal: None }
    }
}

/// A segment that was sealed: records `first..=last` (1-based), complete and durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    pub first: u64,
    pub last: u64,
}

/// What opening found.
#[derive(Debug)]
pub struct Recovery {
    /// The records after [`Options::replay_after`], in order.
    pub records: Vec<Vec<u8>>,
    /// Bytes cut from a torn or corrupt tail.
    pub truncated_bytes: usize,
    /// Records in the journal, including those before `replay_after`.
    pub total: u64,
    /// Sealed segments still outside the archive (not yet covered by a snapshot).
    pub unarchived: Vec<Sealed>,
}

struct State {
    pending: Vec<u8>,
    /// Sequence number of the last record appended (1-based; 0 = none).
    appended: u64,
    /// Records before the active segment.
    base: u64,
    /// Byte offset where each record of the active segment starts, for random access by the audit API.
    offsets: Vec<u64>,
    /// Active segment length once everything pending is written.
    end: u64,
    /// Sealed segments, oldest first, wherever they are (journal directory or archive).
    chain: Chain,
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
    options: Options,
    /// Record offsets of sealed segments read recently, by first sequence number (a sealed segment never changes).
    sealed_offsets: Mutex<HashMap<u64, Arc<Vec<u64>>>>,
    /// `Some` for a journal kept in memory (a backtest): the records themselves, durable as soon as appended.
    memory: Option<Mutex<Vec<Vec<u8>>>>,
}

/// A record's 0-based index and the byte range of its frame in a segment file.
type Span = (u64, u64, u64);

/// A handle to an open journal. Cloning shares the same writer.
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Journal {
    /// Opens (or creates) the journal whose active segment is `path`, recovering its good prefix and truncating
    /// any torn tail.
    pub fn open(path: impl AsRef<Path>) -> Result<(Journal, Recovery), JournalError> {
        Self::open_with(path, Options::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<(Journal, Recovery), JournalError> {
        let path = path.as_ref().to_path_buf();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let chain = Chain::list(&path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err(&path))?;
        let sealed_end = chain.sealed.last().map_or(0, |s| s.last);
        let data_start = match segments::data_start(&bytes, &path) {
            Ok(Some(start)) => start,
            // Empty, or a crash while writing the header of a new segment: nothing in it was ever acknowledged.
            Ok(None) => {
                bytes = segments::header(sealed_end);
                file.set_len(0).map_err(io_err(&path))?;
                file.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
                file.write_all(&bytes).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
                sync_dir(&path)?;
                bytes.len()
            }
            Err(e) => return Err(e),
        };
        let base = segments::base_of(&bytes);
        if base != sealed_end {
            return Err(JournalError::Missing { dir, from: sealed_end.min(base) + 1, to: sealed_end.max(base) });
        }
        let scan = scan_from(&bytes, data_start);
        if scan.discarded > 0 {
            tracing::warn!(path = %path.display(), discarded_bytes = scan.discarded, kept_records = scan.records.len(),
                "journal tail was torn or corrupt; truncated to the last good record");
            file.set_len(scan.good_len as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        file.seek(SeekFrom::Start(scan.good_len as u64)).map_err(io_err(&path))?;
        let total = base + scan.records.len() as u64;
        let replay_after = options.replay_after;
        if replay_after > total {
            return Err(JournalError::Missing { dir, from: total + 1, to: replay_after });
        }
        // Records after `replay_after` from the sealed segments that hold any, then from the active one.
        let mut records = Vec::new();
        for seg in chain.sealed.iter().filter(|s| s.last > replay_after) {
            let rows = segments::read_sealed(&seg.path, seg.first, seg.last)?;
            let skip = replay_after.saturating_sub(seg.first - 1) as usize;
            records.extend(rows.into_iter().skip(skip));
        }
        if let Some(first) = chain.sealed.first() {
            if first.first > replay_after + 1 {
                return Err(JournalError::Missing { dir, from: replay_after + 1, to: first.first - 1 });
            }
        }
        let skip_active = replay_after.saturating_sub(base) as usize;
        records.extend(scan.records.iter().skip(skip_active).map(|&(s, e)| bytes[s..e].to_vec()));
        let offsets = scan.records.iter().map(|(s, _)| (s - HEADER) as u64).collect::<Vec<_>>();
        let unarchived =
            chain.sealed.iter().filter(|s| !s.archived).map(|s| Sealed { first: s.first, last: s.last }).collect();
        let (durable, _) = watch::channel(total);
        let active_len = scan.good_len as u64;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::with_capacity(1 << 20),
                appended: total,
                base,
                offsets,
                end: active_len,
                chain,
                failed: None,
                closing: false,
                writer_idle: false,
            }),
            wake: Condvar::new(),
            durable,
            path: path.clone(),
            options,
            sealed_offsets: Mutex::new(HashMap::new()),
            memory: None,
        });
        let writer_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer_loop(writer_shared, file, active_len))
            .map_err(io_err(&path))?;
        let journal = Journal { shared, writer: Arc::new(Mutex::new(Some(handle))) };
        Ok((journal, Recovery { records, truncated_bytes: scan.discarded, total, unarchived }))
    }

    /// A journal kept in memory: the same records in the same order, durable as soon as they are appended and
    /// gone with the process. A backtest's Order Manager journals into one, so it runs the code that trades
    /// without touching the disk.
    pub fn in_memory() -> Journal {
        let (durable, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::new(),
                appended: 0,
                base: 0,
                offsets: Vec::new(),
                end: 0,
                chain: Chain::default(),
                failed: None,
                closing: false,
                writer_idle: false,
            }),
            wake: Condvar::new(),
            durable,
            path: PathBuf::from("(memory)"),
            options: Options::default(),
            sealed_offsets: Mutex::new(HashMap::new()),
            memory: Some(Mutex::new(Vec::new())),
        });
        Journal { shared, writer: Arc::new(Mutex::new(None)) }
    }

    /// Whether this journal lives in memory only ([`Journal::in_memory`]).
    pub fn is_in_memory(&self) -> bool {
        self.shared.memory.is_some()
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
        if let Some(memory) = &self.shared.memory {
            if st.closing {
                return Err(JournalError::Failed("journal closed".into()));
            }
            memory.lock().unwrap_or_else(|e| e.into_inner()).push(payload.to_vec());
            st.appended += 1;
            let seq = st.appended;
            self.shared.durable.send_replace(seq);
            return Ok((seq, false));
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

    /// The active segment's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Sealed segments, oldest first, and whether each is archived.
    pub fn segments(&self) -> Vec<(Sealed, bool)> {
        self.lock().chain.sealed.iter().map(|s| (Sealed { first: s.first, last: s.last }, s.archived)).collect()
    }

    /// Moves the sealed segments whose records all lie at or before `seq` into `archive/` (a snapshot covers
    /// them, so no restart reads them again; the audit API still can). Returns how many moved.
    pub fn archive_through(&self, seq: u64) -> Result<usize, JournalError> {
        if self.is_in_memory() {
            return Ok(0);
        }
        let mut st = self.lock();
        let moved = st.chain.archive_through(seq)?;
        drop(st);
        if moved > 0 {
            // Both directory entries changed: the renames are durable once both directories are synced.
            sync_dir(&self.shared.path)?;
            let archive = segments::archive_dir(&self.shared.path);
            File::open(&archive).and_then(|d| d.sync_all()).map_err(io_err(&archive))?;
        }
        Ok(moved)
    }

    /// Reads the durable records at these 0-based indexes (ascending) straight from the segment files; indexes not
    /// yet durable are left out.
    pub fn read_at(&self, indexes: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
        if let Some(memory) = &self.shared.memory {
            let records = memory.lock().unwrap_or_else(|e| e.into_inner());
            return Ok(indexes.iter().filter_map(|&i| Some((i, records.get(i as usize)?.clone()))).collect());
        }
        let durable = self.durable_seq();
        let wanted: Vec<u64> = indexes.iter().copied().filter(|&i| i < durable).collect();
        let mut out = Vec::with_capacity(wanted.len());
        let mut rest = &wanted[..];
        while !rest.is_empty() {
            let (spans, file, path) = self.spans(rest)?;
            if spans.is_empty() {
                break;
            }
            rest = &rest[spans.len()..];
            let rows = read_spans(&file, &path, &spans)?;
            out.extend(spans.iter().map(|s| s.0).zip(rows));
        }
        Ok(out)
    }

    /// Reads durable records `[from, from + limit)` (0-based) straight from the segment files.
    pub fn read_range(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, JournalError> {
        let durable = self.durable_seq();
        if from >= durable || limit == 0 {
            return Ok(Vec::new());
        }
        let to = from.saturating_add(limit as u64).min(durable);
        let wanted: Vec<u64> = (from..to).collect();
        Ok(self.read_at(&wanted)?.into_iter().map(|(_, r)| r).collect())
    }

    /// The byte spans `(index, start, end)` of the leading `wanted` records (0-based, ascending) that lie in one
    /// segment, and that segment opened. The file is opened under the lock that renames segments, so it is the
    /// one the spans were computed for.
    fn spans(&self, wanted: &[u64]) -> Result<(Vec<Span>, File, PathBuf), JournalError> {
        let st = self.lock();
        let first = wanted[0];
        if first >= st.base {
            let spans = wanted
                .iter()
                .take_while(|&&i| i < st.appended)
                .map(|&i| {
                    let local = (i - st.base) as usize;
                    let end = st.offsets.get(local + 1).copied().unwrap_or(st.end);
                    (i, st.offsets[local], end)
                })
                .collect();
            let path = self.shared.path.clone();
            let file = File::open(&path).map_err(io_err(&path))?;
            return Ok((spans, file, path));
        }
        let seg = st.chain.find(first + 1).ok_or_else(|| JournalError::Missing {
            dir: self.shared.path.parent().map(Path::to_path_buf).unwrap_or_default(),
            from: first + 1,
            to: first + 1,
        })?;
        let (seg_first, seg_last, path) = (seg.first, seg.last, seg.path.clone());
        let file = File::open(&path).map_err(io_err(&path))?;
        drop(st);
        let offsets = self.sealed_offsets(seg_first, seg_last, &path)?;
        let spans = wanted
            .iter()
            .take_while(|&&i| i < seg_last)
            .map(|&i| {
                let local = (i + 1 - seg_first) as usize;
                match (offsets.get(local), offsets.get(local + 1)) {
                    (Some(&start), Some(&end)) => Ok((i, start, end)),
                    _ => Err(JournalError::Damaged {
                        path: path.clone(),
                        detail: format!("record {} is not in it", i + 1),
                    }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((spans, file, path))
    }

    /// Record start offsets (plus the end) of a sealed segment: scanned once and remembered (it never changes).
    fn sealed_offsets(&self, first: u64, last: u64, path: &Path) -> Result<Arc<Vec<u64>>, JournalError> {
        let mut cache = self.shared.sealed_offsets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = cache.get(&first) {
            return Ok(o.clone());
        }
        let offsets = Arc::new(segments::sealed_offsets(path, first, last)?);
        // A handful of segments at most: each costs one u64 per record.
        if cache.len() >= 8 {
            cache.clear();
        }
        cache.insert(first, offsets.clone());
        Ok(offsets)
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

/// Reads the records at these spans of one file: one positioned read when they are contiguous, else one each.
fn read_spans(file: &File, path: &Path, spans: &[Span]) -> Result<Vec<Vec<u8>>, JournalError> {
    use std::os::unix::fs::FileExt;
    let payload = |buf: &[u8]| -> Option<Vec<u8>> {
        let h = buf.get(..HEADER)?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        buf.get(HEADER..HEADER + len).map(<[u8]>::to_vec)
    };
    let contiguous = spans.windows(2).all(|w| w[0].2 == w[1].1);
    let mut out = Vec::with_capacity(spans.len());
    if contiguous {
        let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
            return Ok(out);
        };
        let mut buf = vec![0u8; (last.2 - first.1) as usize];
        file.read_exact_at(&mut buf, first.1).map_err(io_err(path))?;
        for &(_, start, end) in spans {
            out.extend(payload(&buf[(start - first.1) as usize..(end - first.1) as usize]));
        }
    } else {
        for &(_, start, end) in spans {
            let mut buf = vec![0u8; (end - start) as usize];
            file.read_exact_at(&mut buf, start).map_err(io_err(path))?;
            out.extend(payload(&buf));
        }
    }
    Ok(out)
}

fn sync_dir(path: &Path) -> Result<(), JournalError> {
    if let Some(dir) = path.parent() {
        // Makes the directory entry of a new file durable; required on ext4/xfs for the file to survive a crash.
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    }
    Ok(())
}

fn writer_loop(shared: Arc<Shared>, mut file: File, mut active_len: u64) {
    let mut batch = Vec::with_capacity(1 << 20);
    let fsync_hist = metrics::histogram!("ts_journal_fsync_seconds");
    let batch_hist = metrics::histogram!("ts_journal_batch_records");
    let fail = |msg: String| {
        tracing::error!(error = %msg, "journal failed");
        shared.state.lock().unwrap_or_else(|e| e.into_inner()).failed = Some(msg);
        shared.durable.send_modify(|_| {});
    };
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
            active_len += batch.len() as u64;
            batch.clear();
            if let Err(e) = result {
                // After a failed fsync the page cache state is unknown (fsyncgate): refuse all further writes.
                return fail(format!("write/fsync of {} failed: {e}", shared.path.display()));
            }
            shared.durable.send_replace(upto);
            if active_len >= shared.options.segment_bytes {
                match seal(&shared, upto, active_len) {
                    Ok(Some((next, sealed))) => {
                        file = next;
                        active_len = segments::HEADER_V2 as u64;
                        metrics::counter!("ts_journal_segments_sealed_total").increment(1);
                        if let Some(told) = &shared.options.on_seal {
                            told(sealed);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => return fail(format!("sealing a segment of {} failed: {e}", shared.path.display())),
                }
            }
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

/// Seals the active segment after record `upto` (everything up to it is written and synced) and starts the next
/// one. Records appended meanwhile are still pending; their offsets move to the new segment.
fn seal(shared: &Shared, upto: u64, written: u64) -> Result<Option<(File, Sealed)>, JournalError> {
    let path = &shared.path;
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    if upto <= st.base {
        return Ok(None);
    }
    let sealed = Sealed { first: st.base + 1, last: upto };
    let sealed_path = segments::sealed_path(path, sealed.first, sealed.last);
    std::fs::rename(path, &sealed_path).map_err(io_err(path))?;
    let mut next = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(io_err(path))?;
    next.write_all(&segments::header(upto)).map_err(io_err(path))?;
    let header = segments::HEADER_V2 as u64;
    let moved = (upto - st.base) as usize;
    st.offsets.drain(..moved);
    for o in st.offsets.iter_mut() {
        *o = *o - written + header;
    }
    st.end = st.end - written + header;
    st.base = upto;
    st.chain.push(sealed.first, sealed.last, sealed_path);
    drop(st);
    next.sync_all().map_err(io_err(path))?;
    sync_dir(path)?;
    Ok(Some((next, sealed)))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_in_memory_keeps_the_records_in_order_and_durable_at_once() {
        let j = Journal::in_memory();
        assert_eq!((j.append(b"one").unwrap(), j.append_lazy(b"two").unwrap()), (1, 2));
        assert_eq!((j.len(), j.durable_seq()), (2, 2));
        j.wait_durable_blocking(2).unwrap();
        assert_eq!(j.read_range(0, 10).unwrap(), vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(j.read_at(&[1, 5]).unwrap(), vec![(1, b"two".to_vec())]);
        assert!(j.segments().is_empty() && j.archive_through(2).unwrap() == 0);
        j.close();
        assert!(j.append(b"three").is_err(), "closed");
    }

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
        let second_payload = segments::HEADER_V2 + (HEADER + 4) + HEADER;
        bytes[second_payload] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (j, rec) = Journal::open(&path).unwrap();
        assert_eq!(rec.records, vec![b"aaaa".to_vec()]);
        assert_eq!(rec.truncated_bytes, 2 * (HEADER + 4));
        j.close();
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, segments::HEADER_V2 + HEADER + 4);
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

    fn payload(i: u64) -> Vec<u8> {
        format!("record number {i}").into_bytes()
    }

    /// Appends records `from..to` (payload i for sequence i) and waits for them.
    fn fill(j: &Journal, from: u64, to: u64) {
        let mut last = 0;
        for i in from..to {
            last = j.append(&payload(i + 1)).unwrap();
            if i % 7 == 0 {
                j.wait_durable_blocking(last).unwrap();
            }
        }
        j.wait_durable_blocking(last).unwrap();
    }

    fn small(replay_after: u64) -> Options {
        Options { segment_bytes: 300, replay_after, on_seal: None }
    }

    #[test]
    fn segments_seal_and_every_read_spans_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oms.journal");
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        let told = move |s: Sealed| {
            let _ = tx.lock().unwrap().send(s);
        };
        let (j, _) = Journal::open_with(&path, Options { on_seal: Some(Arc::new(told)), ..small(0) }).unwrap();
        fill(&j, 0, 200);
        let segments = j.segments();
        assert!(segments.len() >= 5, "{segments:?}");
        let told: Vec<Sealed> = rx.try_iter().collect();
        assert_eq!(told, segments.iter().map(|s| s.0).collect::<Vec<_>>());
        for pair in segments.windows(2) {
            assert_eq!(pair[1].0.first, pair[0].0.last + 1);
        }
        let all = j.read_range(0, usize::MAX).unwrap();
        assert_eq!(all, (1..=200).map(payload).collect::<Vec<_>>());
        let sparse = [0, 1, 50, 51, 52, 120, 199];
        let got = j.read_at(&sparse).unwrap();
        assert_eq!(got, sparse.iter().map(|&i| (i, payload(i + 1))).collect::<Vec<_>>());
        assert_eq!(j.read_range(37, 80).unwrap(), (38..=117).map(payload).collect::<Vec<_>>());
        j.close();

        let (j, rec) = Journal::open_with(&path, small(0)).unwrap();
        assert_eq!(rec.total, 200);
        assert_eq!(rec.records, all);
        assert_eq!(j.append(b"next").unwrap(), 201);
        j.close();
        // Replaying after a point reads only what follows it, whichever segment it starts in.
        for after in [0, 1, 57, 150, 199, 201] {
            let (j, rec) = Journal::open_with(&path, small(after)).unwrap();
            assert_eq!(rec.records.len() as u64, 201 - after, "after {after}");
            let expected_first = match after {
                0..200 => Some(payload(after + 1)),
                200 => Some(b"next".to_vec()),
                _ => None,
            };
            assert_eq!(rec.records.first().cloned(), expected_first, "after {after}");
            j.close();
        }
        assert_eq!(read_file(&path).unwrap().len(), 201);
        assert!(matches!(Journal::open_with(&path, small(202)), Err(JournalError::Missing { .. })));
    }

    #[test]
    fn archived_segments_stay_readable_and_are_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oms.journal");
        let (j, _) = Journal::open_with(&path, small(0)).unwrap();
        fill(&j, 0, 120);
        let through = j.segments()[2].0.last;
        assert_eq!(j.archive_through(through).unwrap(), 3);
        assert_eq!(j.archive_through(through).unwrap(), 0);
        let archived: Vec<_> = std::fs::read_dir(dir.path().join("archive")).unwrap().collect();
        assert_eq!(archived.len(), 3);
        assert_eq!(j.read_range(0, 120).unwrap(), (1..=120).map(payload).collect::<Vec<_>>());
        j.close();
        let (j, rec) = Journal::open_with(&path, small(through)).unwrap();
        assert_eq!(rec.records.len() as u64, 120 - through);
        assert!(rec.unarchived.iter().all(|s| s.first > through));
        assert_eq!(j.read_at(&[0, 119]).unwrap(), vec![(0, payload(1)), (119, payload(120))]);
        j.close();
        assert_eq!(read_file(&path).unwrap().len(), 120);
    }

    #[test]
    fn a_missing_or_damaged_segment_is_refused_never_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oms.journal");
        let (j, _) = Journal::open_with(&path, small(0)).unwrap();
        fill(&j, 0, 100);
        let segments = j.segments();
        j.close();
        let second = segments::sealed_path(&path, segments[1].0.first, segments[1].0.last);
        let mut bytes = std::fs::read(&second).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 0xff;
        std::fs::write(&second, &bytes).unwrap();
        let err = Journal::open_with(&path, small(0)).err().unwrap();
        assert!(matches!(err, JournalError::Damaged { .. }), "{err}");
        // A snapshot past the damage does not need the segment.
        let (j, _) = Journal::open_with(&path, small(segments[1].0.last)).unwrap();
        j.close();
        std::fs::remove_file(&second).unwrap();
        let err = Journal::open_with(&path, small(segments[3].0.last)).err().unwrap();
        assert!(matches!(err, JournalError::Missing { .. }), "{err}");
        assert!(err.to_string().contains(&format!("records {}", segments[1].0.first)), "{err}");
    }

    #[test]
    fn a_single_file_journal_of_the_first_format_opens_and_seals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oms.journal");
        let mut bytes = MAGIC.to_vec();
        for i in 1..=30 {
            encode_into(&mut bytes, &payload(i));
        }
        std::fs::write(&path, &bytes).unwrap();
        let (j, rec) = Journal::open_with(&path, small(0)).unwrap();
        assert_eq!(rec.records, (1..=30).map(payload).collect::<Vec<_>>());
        fill(&j, 30, 60);
        assert_eq!(j.segments()[0].0.first, 1);
        assert_eq!(j.read_range(0, 60).unwrap(), (1..=60).map(payload).collect::<Vec<_>>());
        j.close();
        let (j, rec) = Journal::open_with(&path, small(0)).unwrap();
        assert_eq!(rec.records.len(), 60);
        j.close();
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
