//! The segment files of a journal: names, headers, and the chain of sealed segments.

use crate::{io_err, scan_from, JournalError, MAGIC, MAGIC_V2};
use std::path::{Path, PathBuf};

/// Length of a `TSJRNL02` header: the magic and the count of records before the segment.
pub(crate) const HEADER_V2: usize = 16;

/// The header of a segment that starts after `base` records.
pub(crate) fn header(base: u64) -> Vec<u8> {
    let mut h = MAGIC_V2.to_vec();
    h.extend_from_slice(&base.to_le_bytes());
    h
}

/// Where the records of a segment start; `None` when the file holds no complete header (empty, or torn while the
/// header was written: nothing in it was ever acknowledged).
pub(crate) fn data_start(bytes: &[u8], path: &Path) -> Result<Option<usize>, JournalError> {
    if bytes.starts_with(MAGIC) {
        return Ok(Some(MAGIC.len()));
    }
    if bytes.starts_with(MAGIC_V2) {
        return Ok((bytes.len() >= HEADER_V2).then_some(HEADER_V2));
    }
    if bytes.len() < MAGIC.len() && (MAGIC.starts_with(bytes) || MAGIC_V2.starts_with(bytes)) {
        return Ok(None);
    }
    Err(JournalError::NotAJournal(path.to_path_buf()))
}

/// Records before the segment, from its header (a `TSJRNL01` journal starts at 0).
pub(crate) fn base_of(bytes: &[u8]) -> u64 {
    match bytes.get(MAGIC.len()..HEADER_V2) {
        Some(b) if bytes.starts_with(MAGIC_V2) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        _ => 0,
    }
}

fn stem(active: &Path) -> String {
    active.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "journal".into())
}

fn dir_of(active: &Path) -> PathBuf {
    active.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn archive_dir(active: &Path) -> PathBuf {
    dir_of(active).join("archive")
}

/// `oms-000000000001-000001000000.journal` beside the active `oms.journal`.
pub(crate) fn sealed_path(active: &Path, first: u64, last: u64) -> PathBuf {
    dir_of(active).join(format!("{}-{first:012}-{last:012}.journal", stem(active)))
}

fn parse_name(name: &str, stem: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix(stem)?.strip_prefix('-')?.strip_suffix(".journal")?;
    let (first, last) = rest.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first >= 1 && last >= first).then_some((first, last))
}

/// Reads and checks a whole sealed segment: its header must say it starts after `first - 1` records, and it must
/// hold exactly records `first..=last`, every one intact.
fn check_sealed(path: &Path, first: u64, last: u64) -> Result<(Vec<u8>, crate::Scan), JournalError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let damaged = |detail: String| JournalError::Damaged { path: path.to_path_buf(), detail };
    let start = data_start(&bytes, path)?.ok_or_else(|| damaged("no header".into()))?;
    if base_of(&bytes) != first - 1 {
        return Err(damaged(format!("its header says it follows record {}, its name {}", base_of(&bytes), first - 1)));
    }
    let scan = scan_from(&bytes, start);
    let expected = last - first + 1;
    if scan.discarded > 0 || scan.records.len() as u64 != expected {
        return Err(damaged(format!(
            "{} intact records of {expected}, {} bytes unreadable",
            scan.records.len(),
            scan.discarded
        )));
    }
    Ok((bytes, scan))
}

pub(crate) fn read_sealed(path: &Path, first: u64, last: u64) -> Result<Vec<Vec<u8>>, JournalError> {
    let (bytes, scan) = check_sealed(path, first, last)?;
    Ok(scan.records.iter().map(|&(s, e)| bytes[s..e].to_vec()).collect())
}

/// Start offsets of every record of a sealed segment, then its length.
pub(crate) fn sealed_offsets(path: &Path, first: u64, last: u64) -> Result<Vec<u64>, JournalError> {
    let (bytes, scan) = check_sealed(path, first, last)?;
    let mut offsets: Vec<u64> = scan.records.iter().map(|(s, _)| (s - crate::HEADER) as u64).collect();
    offsets.push(bytes.len() as u64);
    Ok(offsets)
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// 1-based sequence numbers of its first and last records.
    pub first: u64,
    pub last: u64,
    pub path: PathBuf,
    pub archived: bool,
}

/// The sealed segments of a journal, oldest first, contiguous.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    pub sealed: Vec<Segment>,
    active: PathBuf,
}

impl Chain {
    /// Finds the sealed segments beside `active` and in `archive/`. A gap between two of them is refused: records
    /// in the middle of the history would be missing.
    pub fn list(active: &Path) -> Result<Chain, JournalError> {
        let stem = stem(active);
        let mut sealed = Vec::new();
        for (dir, archived) in [(dir_of(active), false), (archive_dir(active), true)] {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err(&dir))?;
                let name = entry.file_name();
                if let Some((first, last)) = parse_name(&name.to_string_lossy(), &stem) {
                    sealed.push(Segment { first, last, path: entry.path(), archived });
                }
            }
        }
        // The same segment in both places (a copy restored by hand): the one beside the active segment wins.
        sealed.sort_by_key(|s| (s.first, s.archived));
        sealed.dedup_by_key(|s| s.first);
        for pair in sealed.windows(2) {
            if pair[1].first != pair[0].last + 1 {
                return Err(JournalError::Missing {
                    dir: dir_of(active),
                    from: pair[0].last + 1,
                    to: pair[1].first.saturating_sub(1).max(pair[0].last + 1),
                });
            }
        }
        Ok(Chain { sealed, active: active.to_path_buf() })
    }

    /// The sealed segment holding record `seq` (1-based).
    pub fn find(&self, seq: u64) -> Option<&Segment> {
        let i = self.sealed.partition_point(|s| s.last < seq);
        self.sealed.get(i).filter(|s| s.first <= seq)
    }

    pub fn push(&mut self, first: u64, last: u64, path: PathBuf) {
        self.sealed.push(Segment { first, last, path, archived: false });
    }

    /// Moves sealed segments ending at or before `seq` into `archive/`.
    pub fn archive_through(&mut self, seq: u64) -> Result<usize, JournalError> {
        let archive = archive_dir(&self.active);
        let mut moved = 0;
        for seg in self.sealed.iter_mut().filter(|s| !s.archived && s.last <= seq) {
            std::fs::create_dir_all(&archive).map_err(io_err(&archive))?;
            let name = seg.path.file_name().map(PathBuf::from).unwrap_or_default();
            let to = archive.join(name);
            std::fs::rename(&seg.path, &to).map_err(io_err(&seg.path))?;
            seg.path = to;
            seg.archived = true;
            moved += 1;
        }
        Ok(moved)
    }
}
