//! What a simulation measures about the process rather than the calls:
//! sessions running at once (counted where the worker runs them), event-loop
//! lag on the sessions' runtime, and resident memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::worker::{JobContext, JobHandler, JobResult};

/// Sessions running now and at most, counted around the job handler.
#[derive(Debug, Default)]
pub struct SessionGauge {
    active: AtomicUsize,
    peak: AtomicUsize,
}

impl SessionGauge {
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    fn enter(&self) {
        let now = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn exit(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A job handler that counts the sessions of the handler it wraps: a session
/// counts from the moment the worker hands it the joined room until it ends.
pub struct Counted<H> {
    pub inner: H,
    pub gauge: Arc<SessionGauge>,
}

impl<H: JobHandler> JobHandler for Counted<H> {
    fn room_options(&self, job: &livekit_protocol::Job) -> crate::room::RoomOptions {
        self.inner.room_options(job)
    }

    fn run(&self, job: JobContext) -> Pin<Box<dyn Future<Output = JobResult> + Send>> {
        let gauge = Arc::clone(&self.gauge);
        gauge.enter();
        let leave = Exit(Arc::clone(&gauge));
        let session = self.inner.run(job);
        Box::pin(async move {
            let result = session.await;
            drop(leave);
            result
        })
    }
}

/// Counts the session out even when its future is dropped (aborted).
struct Exit(Arc<SessionGauge>);

impl Drop for Exit {
    fn drop(&mut self) {
        self.0.exit();
    }
}

/// How often the lag probe asks to be woken.
pub const LAG_PERIOD: Duration = Duration::from_millis(10);

/// Event-loop lag: a task on the runtime being measured asks to be woken
/// every [`LAG_PERIOD`] and records how late it actually runs. On a
/// multi-threaded runtime it lands on whichever worker thread is free, so
/// the figure is how long a ready task waits for any thread (plus up to the
/// timer's 1 ms granularity).
pub struct LagProbe {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<f64>>,
}

impl LagProbe {
    /// Starts sampling on the current runtime.
    pub fn start() -> LagProbe {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let asked = Instant::now();
                tokio::select! {
                    _ = tokio::time::sleep(LAG_PERIOD) => {}
                    _ = &mut stopped => break,
                }
                let late = asked.elapsed().saturating_sub(LAG_PERIOD);
                samples.push(late.as_secs_f64() * 1000.0);
            }
            samples
        });
        LagProbe { stop, task }
    }

    /// Stops sampling; every lag sample in milliseconds.
    pub async fn finish(self) -> Vec<f64> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// The process's resident set size now (VmRSS) and at its peak (VmHWM), in
/// bytes, where the OS tells them.
pub fn rss_bytes() -> Option<(u64, u64)> {
    rss_bytes_of("self")
}

/// Like [`rss_bytes`] for another process (`pid` as written under `/proc`).
pub fn rss_bytes_of(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time of a process (`pid` as written under `/proc`), user and
/// system, with its finished children's (a worker's espeak-ng runs), in
/// seconds.
pub fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at
    // field 3; utime, stime, cutime and cstime are fields 14 to 17.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..15)?
        .iter()
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(
        ticks
            / if per_second > 0 {
                per_second as f64
            } else {
                100.0
            },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_keeps_its_peak_after_sessions_end() {
        let gauge = SessionGauge::default();
        gauge.enter();
        gauge.enter();
        gauge.exit();
        gauge.enter();
        gauge.exit();
        gauge.exit();
        assert_eq!((gauge.active(), gauge.peak()), (0, 2));
    }

    #[tokio::test]
    async fn the_lag_probe_samples_until_stopped() {
        let probe = LagProbe::start();
        tokio::time::sleep(LAG_PERIOD * 5).await;
        let samples = probe.finish().await;
        assert!(samples.len() >= 2, "{samples:?}");
        assert!(samples.iter().all(|ms| *ms >= 0.0));
    }

    #[test]
    fn cpu_time_grows_with_work() {
        if cfg!(target_os = "linux") {
            let before = cpu_seconds_of("self").expect("/proc/self/stat");
            let mut x = 0u64;
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(60) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            let after = cpu_seconds_of("self").expect("/proc/self/stat");
            assert!(after > before, "{before} → {after}");
        }
    }

    #[test]
    fn rss_is_read_from_proc_on_linux() {
        if cfg!(target_os = "linux") {
            let (now, peak) = rss_bytes().expect("VmRSS and VmHWM");
            assert!(now > 0 && peak >= now, "rss {now} peak {peak}");
        }
    }
}
