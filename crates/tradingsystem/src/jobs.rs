//! Background jobs under one supervisor: retention, documentation reindex, sweeps, health probes, and the
//! long-running tasks `serve` starts (bus forwarding, auto-trading, Telegram polling).
//!
//! - A scheduled job runs each time on its own task. A panic is logged, counted in `ts_job_panics_total{job}`, and
//!   the job runs again at its next time: one bad run does not end the schedule.
//! - A long-running task cannot be restarted (it owns a queue or a stream). If it panics the server stops (with an
//!   error, so a service manager restarts it) rather than run on without it.
//! - Shutdown stops every schedule between runs and every task, waiting a grace period for runs in progress.
//! - Daily jobs run at a fixed São Paulo time, not 24 h after the process started.

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::America::Sao_Paulo;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// When a scheduled job runs.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// Again this long after the previous run ended.
    Every(Duration),
    /// Every day at this São Paulo wall-clock time.
    DailyAt(NaiveTime),
}

/// The next time `at` (São Paulo) strictly after `now`.
pub fn next_daily(now: DateTime<Utc>, at: NaiveTime) -> DateTime<Utc> {
    let mut date = now.with_timezone(&Sao_Paulo).date_naive();
    // Two days always suffice: today's time has passed at most; a local time skipped by a clock change (none in
    // São Paulo since 2019) moves on to the next day.
    for _ in 0..4 {
        if let Some(t) = Sao_Paulo.from_local_datetime(&date.and_time(at)).earliest() {
            let t = t.with_timezone(&Utc);
            if t > now {
                return t;
            }
        }
        date = date.succ_opt().unwrap_or(date);
    }
    now + chrono::Duration::days(1)
}

fn delay(when: When) -> Duration {
    match when {
        When::Every(d) => d,
        When::DailyAt(at) => {
            let now = Utc::now();
            (next_daily(now, at) - now).to_std().unwrap_or(Duration::from_secs(1))
        }
    }
}

pub struct Jobs {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    died: mpsc::UnboundedSender<&'static str>,
    deaths: Option<mpsc::UnboundedReceiver<&'static str>>,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

impl Jobs {
    pub fn new() -> Self {
        let (stop, _) = watch::channel(false);
        let (died, deaths) = mpsc::unbounded_channel();
        Jobs { stop, tasks: JoinSet::new(), died, deaths: Some(deaths) }
    }

    /// Runs `job` on the schedule `when` (first at start when `at_start`), until shutdown.
    pub fn schedule<F, Fut>(&mut self, name: &'static str, when: When, at_start: bool, job: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            if at_start {
                run_once(name, &job).await;
            }
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(delay(when)) => {}
                }
                run_once(name, &job).await;
            }
        });
    }

    /// Runs a long-running task until it ends or shutdown. If it panics, [`Jobs::died`] resolves with its name.
    pub fn task(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let mut stop = self.stop.subscribe();
        let died = self.died.clone();
        self.tasks.spawn(async move {
            let handle = tokio::spawn(task);
            let abort = handle.abort_handle();
            tokio::select! {
                outcome = handle => {
                    if let Err(e) = outcome {
                        if e.is_panic() {
                            metrics::counter!("ts_job_panics_total", "job" => name).increment(1);
                            tracing::error!(task = name, "a background task panicked; the server stops");
                            let _ = died.send(name);
                        }
                    }
                }
                _ = stop.wait_for(|s| *s) => abort.abort(),
            }
        });
    }

    /// Resolves with the name of the first long-running task that panicked (never, if none does). Once only.
    pub fn died(&mut self) -> impl Future<Output = &'static str> + Send + 'static {
        let deaths = self.deaths.take();
        async move {
            match deaths {
                Some(mut rx) => match rx.recv().await {
                    Some(name) => name,
                    None => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        }
    }

    /// Stops every schedule and task; runs in progress get `grace` to finish, then are dropped. True when all
    /// ended on their own.
    pub async fn shutdown(mut self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("background jobs still running at shutdown were stopped");
            self.tasks.abort_all();
            return false;
        }
        true
    }
}

async fn run_once<F, Fut>(name: &'static str, job: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if let Err(e) = tokio::spawn(job()).await {
        if e.is_panic() {
            metrics::counter!("ts_job_panics_total", "job" => name).increment(1);
            tracing::error!(job = name, "a background job panicked; it runs again at its next time");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn sp(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Sao_Paulo.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daily_jobs_run_at_the_sao_paulo_time_whenever_the_process_started() {
        let at = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(next_daily(sp(2026, 12, 5, 1, 0), at), sp(2026, 12, 5, 2, 30));
        assert_eq!(next_daily(sp(2026, 12, 5, 2, 30), at), sp(2026, 12, 6, 2, 30));
        assert_eq!(next_daily(sp(2026, 12, 5, 14, 0), at), sp(2026, 12, 6, 2, 30));
        // 23:30 in São Paulo is already the next day in UTC: still tomorrow's 02:30 local, 05:30 UTC.
        assert_eq!(next_daily(sp(2026, 12, 31, 23, 30), at), Utc.with_ymd_and_hms(2027, 1, 1, 5, 30, 0).unwrap());
    }

    #[tokio::test]
    async fn a_job_that_panics_runs_again_and_shutdown_stops_the_schedule() {
        let mut jobs = Jobs::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        jobs.schedule("flaky", When::Every(Duration::from_millis(5)), true, move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(n != 0, "the first run fails");
            }
        });
        let mut idle = Jobs::new();
        idle.schedule("hourly", When::Every(Duration::from_secs(3600)), false, || async {});
        while runs.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(jobs.shutdown(Duration::from_secs(60)).await, "the schedule ended at shutdown");
        let after = runs.load(Ordering::SeqCst);
        // A job waiting an hour for its next run ends at shutdown instead of being cut off after the grace.
        assert!(idle.shutdown(Duration::from_secs(60)).await);
        tokio::task::yield_now().await;
        assert_eq!(runs.load(Ordering::SeqCst), after, "nothing runs after shutdown");
    }

    #[tokio::test]
    async fn a_task_that_panics_is_reported_so_the_server_stops() {
        let mut jobs = Jobs::new();
        let died = jobs.died();
        jobs.task("worker", async { panic!("bug") });
        jobs.task("forever", std::future::pending());
        assert_eq!(died.await, "worker");
        assert!(jobs.shutdown(Duration::from_secs(60)).await, "the other task is stopped at shutdown");
    }
}
