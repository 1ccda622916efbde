//! Snapshots of the Order Manager's state, so a restart decodes only the records written since the latest one.
//!
//! A snapshot is written by a background thread, never by the order path: each time the journal seals a segment,
//! the checkpointer loads the latest snapshot, applies the records after it up to the end of that segment (with
//! [`OmsState::apply`], as a restart would), writes the result, and moves the segments it covers to the journal's
//! `archive/`. The state it writes is therefore exactly the state a full replay would build.
//!
//! File: `journal/snapshots/oms-<records>.snapshot` = `TSSNAP01` | records applied: u64 LE | payload length: u64
//! LE | crc32(payload): u32 LE | payload (JSON of the state, amounts as exact decimal strings). Written to a
//! temporary file, synced and renamed into place; a snapshot that fails its checks is skipped for the one before
//! it (its records are still in the journal or its archive).

use crate::record::Record;
use crate::state::{OmsState, Persisted};
use domain::Instruments;
use journal::Journal;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"TSSNAP01";
const HEADER: usize = 8 + 8 + 8 + 4;
/// Snapshots kept; older ones are deleted (they are derived from records that are all kept).
const KEEP: usize = 3;
/// Records decoded per read while catching up.
const CHUNK: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("snapshot {path} is invalid: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("{0}")]
    Journal(#[from] journal::JournalError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_path_buf(), source }
}

/// The snapshot directory beside a journal's active segment.
pub fn dir_for(journal_path: &Path) -> PathBuf {
    journal_path.parent().map(Path::to_path_buf).unwrap_or_default().join("snapshots")
}

fn name(applied: u64) -> String {
    format!("oms-{applied:012}.snapshot")
}

/// Snapshot files, newest first, with the record count their names claim.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let file_name = entry.file_name();
        let applied = file_name
            .to_str()
            .and_then(|n| n.strip_prefix("oms-"))
            .and_then(|n| n.strip_suffix(".snapshot"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(applied) = applied {
            found.push((applied, entry.path()));
        }
    }
    found.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// Writes `state` as a snapshot and deletes all but the newest [`KEEP`]. Returns its path.
pub fn write(dir: &Path, state: &OmsState) -> Result<PathBuf, SnapshotError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let payload = domain::price::with_exact_strings(|| serde_json::to_vec(&state.to_persisted()))
        .map_err(|e| SnapshotError::Invalid { path: dir.to_path_buf(), detail: format!("cannot encode: {e}") })?;
    let path = dir.join(name(state.applied()));
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&state.applied().to_le_bytes());
        header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        f.write_all(&header).and_then(|_| f.write_all(&payload)).and_then(|_| f.sync_all()).map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    for (_, old) in list(dir)?.into_iter().skip(KEEP) {
        if let Err(e) = std::fs::remove_file(&old) {
            tracing::warn!(path = %old.display(), error = %e, "could not delete an old snapshot");
        }
    }
    Ok(path)
}

fn read(path: &Path, claimed: u64) -> Result<OmsState, SnapshotError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let invalid = |detail: &str| SnapshotError::Invalid { path: path.to_path_buf(), detail: detail.to_string() };
    let header = bytes.get(..HEADER).ok_or_else(|| invalid("shorter than its header"))?;
    if &header[..8] != MAGIC {
        return Err(invalid("bad magic"));
    }
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or_default());
    let (applied, len) = (word(8), word(16) as usize);
    let crc = u32::from_le_bytes(header[24..28].try_into().unwrap_or_default());
    let payload = bytes.get(HEADER..).filter(|p| p.len() == len).ok_or_else(|| invalid("truncated"))?;
    if crc32fast::hash(payload) != crc {
        return Err(invalid("checksum mismatch"));
    }
    if applied != claimed {
        return Err(invalid("its name and header disagree on the records it covers"));
    }
    let persisted: Persisted = serde_json::from_slice(payload).map_err(|e| invalid(&format!("cannot decode: {e}")))?;
    if persisted.applied != applied {
        return Err(invalid("its header and contents disagree on the records it covers"));
    }
    Ok(OmsState::from_persisted(persisted))
}

/// The newest snapshot that passes its checks, skipping (and logging) any that do not.
pub fn load_latest(dir: &Path) -> Result<Option<OmsState>, SnapshotError> {
    for (applied, path) in list(dir)? {
        match read(&path, applied) {
            Ok(state) => return Ok(Some(state)),
            Err(e) => tracing::error!(error = %e, "snapshot skipped; trying the one before it"),
        }
    }
    Ok(None)
}

/// Brings the latest snapshot up to record `target` (a segment's end) from the journal and writes it. Returns the
/// records it covers.
pub fn checkpoint(dir: &Path, journal: &Journal, instruments: &Instruments, target: u64) -> Result<u64, SnapshotError> {
    let mut state = load_latest(dir)?.unwrap_or_else(OmsState::new);
    if state.applied() >= target {
        return Ok(state.applied());
    }
    while state.applied() < target {
        let want = (target - state.applied()).min(CHUNK as u64) as usize;
        let rows = journal.read_range(state.applied(), want)?;
        if rows.is_empty() {
            return Err(SnapshotError::Invalid {
                path: journal.path().to_path_buf(),
                detail: format!("record {} could not be read", state.applied() + 1),
            });
        }
        for bytes in rows {
            match serde_json::from_slice::<Record>(&bytes) {
                Ok(record) => {
                    state.apply(&record, instruments);
                }
                Err(_) => state.skip_undecodable(),
            }
        }
    }
    write(dir, &state)?;
    Ok(state.applied())
}
