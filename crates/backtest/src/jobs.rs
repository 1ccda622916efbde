//! Backtests as jobs, for the API: a bounded queue, a fixed number of worker threads (so backtests never take
//! every core from the server), progress, cancellation, and each run's report under `<dir>/<id>/`. Finished runs
//! found on disk at start are listed again (their summary and report); a run the process was killed in is not.
//! Job times (created, finished) are the wall clock: bookkeeping, not the market path.

use crate::source::{store, DateRange, Feed, SymbolTable};
use crate::{BacktestError, Control, RunSpec, Settings};
use chrono::{DateTime, NaiveDate, Utc};
use domain::Symbol;
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use strategy::params::Params;

/// What a client asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub strategy: String,
    pub symbols: Vec<String>,
    #[serde(default)]
    pub params: Params,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    #[serde(default)]
    pub settings: Option<Settings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Canceled,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    pub status: JobStatus,
    pub strategy: String,
    pub symbols: Vec<String>,
    pub params: Params,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Events processed and expected (an estimate from the files' row counts).
    pub events: u64,
    pub expected_events: u64,
    pub progress: f64,
    pub error: Option<String>,
    /// `summary.json` of a finished run.
    pub summary: Option<serde_json::Value>,
    /// The equity curve, at most 500 points: `[epoch milliseconds, equity in R$]`.
    pub equity: Vec<(i64, f64)>,
}

/// Why a job was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The request names something wrong: the field and what.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("{0} backtests are already waiting; try again when some finish")]
    Busy(usize),
}

struct Job {
    view: Mutex<JobView>,
    done: AtomicU64,
    stop: AtomicBool,
    work: Mutex<Option<(RunSpec, Feed)>>,
}

struct Inner {
    dir: PathBuf,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
    queue: Mutex<VecDeque<u64>>,
    wake: Condvar,
    next_id: AtomicU64,
    max_queued: usize,
    shutdown: AtomicBool,
}

/// The job service. Cloning shares it.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
    market_dirs: Vec<PathBuf>,
}

fn job_id(n: u64) -> String {
    format!("bt-{n}")
}

fn parse_id(id: &str) -> Option<u64> {
    id.strip_prefix("bt-")?.parse().ok()
}

impl Jobs {
    /// Jobs reading market data from `market_dirs` (the data dir's `market/` and `archive/market/`, where
    /// retention moves old partitions) and writing reports under `reports_dir`, run by `workers` threads, with at
    /// most `max_queued` waiting.
    pub fn start(market_dirs: Vec<PathBuf>, reports_dir: PathBuf, workers: usize, max_queued: usize) -> Jobs {
        let inner = Arc::new(Inner {
            dir: reports_dir,
            jobs: Mutex::new(BTreeMap::new()),
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            next_id: AtomicU64::new(1),
            max_queued,
            shutdown: AtomicBool::new(false),
        });
        let jobs = Jobs { inner, market_dirs };
        jobs.load_finished();
        for i in 0..workers.max(1) {
            let inner = jobs.inner.clone();
            let spawned = std::thread::Builder::new().name(format!("backtest-{i}")).spawn(move || worker(inner));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a backtest worker");
            }
        }
        jobs
    }

    /// Lists the reports of earlier runs that finished (a `job.json` beside their summary).
    fn load_finished(&self) {
        let Ok(entries) = std::fs::read_dir(&self.inner.dir) else { return };
        let mut max = 0;
        let mut jobs = self.inner.jobs.lock();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(n) = parse_id(&name) else { continue };
            max = max.max(n);
            let Ok(text) = std::fs::read_to_string(e.path().join("job.json")) else { continue };
            let Ok(stored) = serde_json::from_str::<StoredJob>(&text) else { continue };
            let mut view = stored.into_view(&name);
            view.summary =
                std::fs::read_to_string(e.path().join("summary.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
            jobs.insert(
                n,
                Arc::new(Job {
                    done: AtomicU64::new(view.events),
                    view: Mutex::new(view),
                    stop: AtomicBool::new(false),
                    work: Mutex::new(None),
                }),
            );
        }
        self.inner.next_id.store(max + 1, Ordering::Relaxed);
    }

    /// Checks a request, finds its data, and queues it. Reads file metadata: call it off the async workers.
    pub fn submit(&self, req: JobRequest, now: DateTime<Utc>) -> Result<JobView, JobError> {
        let invalid = |field, message: String| JobError::Invalid { field, message };
        if req.symbols.is_empty() || req.symbols.len() > 50 {
            return Err(invalid("symbols", "between 1 and 50 symbols".into()));
        }
        let mut symbols = Vec::new();
        for s in &req.symbols {
            let t = s.trim().to_ascii_uppercase();
            symbols.push(t.parse::<Symbol>().map_err(|e| invalid("symbols", format!("{s:?} {e}")))?);
        }
        if let (Some(f), Some(t)) = (req.from, req.to) {
            if f > t {
                return Err(invalid("from", format!("{f} is after to = {t}")));
            }
        }
        let mut spec = RunSpec::new(&req.strategy, symbols);
        spec.params = req.params.clone();
        spec.range = DateRange { from: req.from, to: req.to };
        if let Some(s) = req.settings.clone() {
            if s.capital.0 <= 0 || !(0..=1000).contains(&s.slippage_ticks) || !(0.0..=10.0).contains(&s.cdi) {
                return Err(invalid("settings", "capital > 0, slippage_ticks 0..1000, cdi 0..10".into()));
            }
            spec.settings = s;
        }
        match crate::check(&spec) {
            Err(BacktestError::Strategy(strategy::kinds::BuildError::UnknownKind { kind, known })) => {
                return Err(invalid("strategy", format!("unknown strategy {kind:?}; known: {known}")));
            }
            Err(e) => return Err(invalid("params", e.to_string())),
            Ok(()) => {}
        }
        let feed = self.feed(&spec).map_err(|m| invalid("symbols", m))?;
        if self.inner.queue.lock().len() >= self.inner.max_queued {
            return Err(JobError::Busy(self.inner.max_queued));
        }
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let view = JobView {
            id: job_id(n),
            status: JobStatus::Queued,
            strategy: spec.strategy.clone(),
            symbols: spec.symbols.iter().map(|s| s.to_string()).collect(),
            params: spec.params.clone(),
            created_at: now,
            finished_at: None,
            events: 0,
            expected_events: feed.expected_events(),
            progress: 0.0,
            error: None,
            summary: None,
            equity: Vec::new(),
        };
        let job = Arc::new(Job {
            view: Mutex::new(view.clone()),
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            work: Mutex::new(Some((spec, feed))),
        });
        self.inner.jobs.lock().insert(n, job);
        self.inner.queue.lock().push_back(n);
        self.inner.wake.notify_one();
        Ok(view)
    }

    fn feed(&self, spec: &RunSpec) -> Result<Feed, String> {
        let table = SymbolTable::new(&spec.symbols).map_err(|e| e.to_string())?;
        let mut feed = Feed::new();
        for dir in &self.market_dirs {
            if dir.is_dir() {
                store::add_store(&mut feed, dir, &table, spec.range).map_err(|e| e.to_string())?;
            }
        }
        if feed.is_empty() {
            return Err(format!(
                "no market data for {} in the range given (the server reads {})",
                spec.symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                self.market_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" and ")
            ));
        }
        Ok(feed)
    }

    pub fn get(&self, id: &str) -> Option<JobView> {
        let job = self.inner.jobs.lock().get(&parse_id(id)?)?.clone();
        Some(view_now(&job))
    }

    /// Newest first.
    pub fn list(&self) -> Vec<JobView> {
        let jobs: Vec<Arc<Job>> = self.inner.jobs.lock().values().rev().cloned().collect();
        jobs.iter()
            .map(|j| {
                let mut v = view_now(j);
                // The list is for overviews: the curve and the full summary are one GET away.
                v.equity.clear();
                v
            })
            .collect()
    }

    /// Cancels a queued or running job and removes it with its report. False: no such job.
    pub fn delete(&self, id: &str) -> bool {
        let Some(n) = parse_id(id) else { return false };
        let Some(job) = self.inner.jobs.lock().remove(&n) else { return false };
        job.stop.store(true, Ordering::Relaxed);
        self.inner.queue.lock().retain(|q| *q != n);
        let dir = self.inner.dir.join(job_id(n));
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(error = %e, dir = %dir.display(), "could not remove a backtest's report");
            }
        }
        true
    }

    /// A file of a finished job's report (`report.html`, `summary.json`, `fills.csv`, ...).
    pub fn report_file(&self, id: &str, name: &str) -> Option<PathBuf> {
        let n = parse_id(id)?;
        let allowed = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
            && !name.starts_with('.')
            && name != "job.json";
        if !allowed || !self.inner.jobs.lock().contains_key(&n) {
            return None;
        }
        let p = self.inner.dir.join(job_id(n)).join(name);
        p.is_file().then_some(p)
    }

    /// Stops the workers after their current job.
    pub fn shutdown(&self) {
        self.inner.shutdown.store(true, Ordering::Relaxed);
        for j in self.inner.jobs.lock().values() {
            j.stop.store(true, Ordering::Relaxed);
        }
        self.inner.wake.notify_all();
    }
}

fn view_now(job: &Job) -> JobView {
    let mut v = job.view.lock().clone();
    if v.status == JobStatus::Running {
        v.events = job.done.load(Ordering::Relaxed);
        v.progress = if v.expected_events > 0 { (v.events as f64 / v.expected_events as f64).min(1.0) } else { 0.0 };
    }
    v
}

/// What `job.json` keeps of a finished job, to list it again after a restart.
#[derive(Serialize, Deserialize)]
struct StoredJob {
    strategy: String,
    symbols: Vec<String>,
    params: Params,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    events: u64,
    equity: Vec<(i64, f64)>,
}

impl StoredJob {
    fn into_view(self, id: &str) -> JobView {
        JobView {
            id: id.to_string(),
            status: JobStatus::Done,
            strategy: self.strategy,
            symbols: self.symbols,
            params: self.params,
            created_at: self.created_at,
            finished_at: self.finished_at,
            events: self.events,
            expected_events: self.events,
            progress: 1.0,
            error: None,
            summary: None,
            equity: self.equity,
        }
    }
}

fn worker(inner: Arc<Inner>) {
    loop {
        let n = {
            let mut q = inner.queue.lock();
            loop {
                if inner.shutdown.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(n) = q.pop_front() {
                    break n;
                }
                inner.wake.wait(&mut q);
            }
        };
        let Some(job) = inner.jobs.lock().get(&n).cloned() else { continue };
        let Some((spec, mut feed)) = job.work.lock().take() else { continue };
        job.view.lock().status = JobStatus::Running;
        let mut progress = |done: u64, _: u64| job.done.store(done, Ordering::Relaxed);
        // A panic in a strategy ends this job, not the worker or the server.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::run(&spec, &mut feed, Control { stop: &job.stop, progress: &mut progress })
        }));
        let now = Utc::now();
        let dir = inner.dir.join(job_id(n));
        let mut v = job.view.lock();
        v.finished_at = Some(now);
        match result {
            Ok(Ok(outcome)) if job.stop.load(Ordering::Relaxed) => {
                v.status = JobStatus::Canceled;
                v.events = outcome.timing.events;
            }
            Ok(Ok(outcome)) => {
                v.events = outcome.timing.events;
                v.progress = 1.0;
                v.equity = thin_curve(&outcome.ledger.curve, 500);
                match write_job(&dir, &outcome, &v) {
                    Ok(()) => {
                        v.status = JobStatus::Done;
                        v.summary = serde_json::to_value(&outcome.summary).ok();
                    }
                    Err(e) => {
                        v.status = JobStatus::Failed;
                        v.error = Some(format!("could not write the report: {e}"));
                    }
                }
            }
            Ok(Err(e)) => {
                v.status = JobStatus::Failed;
                v.error = Some(e.to_string());
            }
            Err(_) => {
                v.status = JobStatus::Failed;
                v.error = Some("the strategy panicked; the run was stopped".into());
            }
        }
        // Removed while its report was being written: the removal wins.
        if job.stop.load(Ordering::Relaxed) && v.status == JobStatus::Done {
            v.status = JobStatus::Canceled;
            let _ = std::fs::remove_dir_all(&dir);
        }
        tracing::info!(id = %v.id, status = ?v.status, events = v.events, "backtest finished");
    }
}

fn write_job(dir: &Path, o: &crate::Outcome, v: &JobView) -> std::io::Result<()> {
    crate::report::write(dir, o)?;
    let stored = StoredJob {
        strategy: v.strategy.clone(),
        symbols: v.symbols.clone(),
        params: v.params.clone(),
        created_at: v.created_at,
        finished_at: v.finished_at,
        events: v.events,
        equity: v.equity.clone(),
    };
    std::fs::write(dir.join("job.json"), serde_json::to_vec(&stored).map_err(std::io::Error::other)?)
}

fn thin_curve(curve: &[(i64, f64)], max: usize) -> Vec<(i64, f64)> {
    let step = curve.len().div_ceil(max).max(1);
    let mut out: Vec<(i64, f64)> = curve.iter().step_by(step).map(|(t, e)| (t / 1_000_000, *e)).collect();
    if let Some((t, e)) = curve.last() {
        if out.last().map(|(lt, _)| *lt) != Some(t / 1_000_000) {
            out.push((t / 1_000_000, *e));
        }
    }
    out
}
