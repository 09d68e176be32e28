//! The worker's lifetime across connections: connect, serve, and on any
//! failure reconnect with capped jittered backoff while sessions keep running;
//! drain and shutdown requests arrive through a [`WorkerHandle`].

use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::config::{ConfigError, WorkerConfig};
use super::health::HealthServer;
use super::job::{CancelReason, SharedHandler};
use super::link::{self, Control, Link, LinkEnd};
use super::metrics;
use super::protocol::{ConnectError, ReconnectBackoff};
use super::sessions::{WorkerSnapshot, WorkerState};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("gave up after {attempts} reconnect attempts; last error: {last}")]
    GaveUp { attempts: u32, last: ConnectError },
    #[error("could not start the health server on {addr}: {detail}")]
    Health {
        addr: std::net::SocketAddr,
        detail: String,
    },
    #[error("interrupted by a second signal; sessions were cut off")]
    Interrupted,
    #[error("could not start the connection thread: {0}")]
    Runtime(String),
}

struct StopOnDrop(WorkerHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // The connection thread never outlives the future that owns it.
        self.0.control.send_replace(Control::Shutdown);
    }
}

/// The LiveKit agent worker run by `voxguard start`.
pub struct Worker {
    state: Arc<WorkerState>,
    handler: SharedHandler,
    outbound: mpsc::UnboundedReceiver<proto::worker_message::Message>,
    control: watch::Receiver<Control>,
    handle: WorkerHandle,
}

/// Controls a running worker and observes it; cheap to clone.
#[derive(Clone)]
pub struct WorkerHandle {
    state: Arc<WorkerState>,
    control: Arc<watch::Sender<Control>>,
    registrations: watch::Receiver<u64>,
    registrations_tx: Arc<watch::Sender<u64>>,
}

impl WorkerHandle {
    /// Stops taking jobs (reports FULL, refuses availability), lets sessions
    /// finish up to `drain_timeout`, then ends the rest; `run` returns Ok.
    pub fn drain(&self) {
        if self.state.start_draining() {
            tracing::info!(sessions = self.state.running_job_ids().len(), "draining");
        }
        self.control.send_if_modified(|c| {
            let changed = *c == Control::Run;
            if changed {
                *c = Control::Drain;
            }
            changed
        });
    }

    /// Ends every session now and stops the worker.
    pub fn shutdown_now(&self) {
        self.state.start_draining();
        self.state.cancel_all(CancelReason::Shutdown);
        self.control.send_replace(Control::Shutdown);
    }

    pub fn snapshot(&self) -> WorkerSnapshot {
        self.state.snapshot()
    }

    /// Report `fleet`'s health on `/worker` and `/metrics` (the first fleet
    /// attached stays).
    pub fn attach_fleet(&self, fleet: crate::fleet::Fleet) {
        let _ = self.state.fleet.set(fleet);
    }

    /// Report the services behind the agent on `/worker` and `/metrics`
    /// (the first report attached stays).
    pub fn attach_services(&self, report: super::sessions::ServiceReport) {
        let _ = self.state.services.set(report);
    }

    /// Add `report` to `/worker` under `name`.
    pub fn attach_report(&self, name: &'static str, report: super::sessions::ExtraReport) {
        self.state
            .reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name, report));
    }

    /// The address the health server bound (after [`Worker::run`] started it).
    pub fn health_addr(&self) -> Option<std::net::SocketAddr> {
        self.state.health_addr.get().copied()
    }

    /// How many times the worker registered (one per successful connection).
    pub fn registrations(&self) -> u64 {
        *self.registrations.borrow()
    }

    /// Waits until the worker has registered at least `count` times.
    pub async fn wait_registrations(&self, count: u64, timeout: Duration) -> bool {
        let mut rx = self.registrations.clone();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n >= count))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn registered(&self) {
        self.registrations_tx.send_modify(|n| *n += 1);
    }
}

impl Worker {
    /// Validates `config`; nothing connects until [`Worker::run`].
    pub fn new(config: WorkerConfig, handler: SharedHandler) -> Result<Self, WorkerError> {
        config.validate()?;
        let (state, outbound) = WorkerState::new(config);
        let (control_tx, control) = watch::channel(Control::Run);
        let (registrations_tx, registrations) = watch::channel(0);
        let handle = WorkerHandle {
            state: Arc::clone(&state),
            control: Arc::new(control_tx),
            registrations,
            registrations_tx: Arc::new(registrations_tx),
        };
        Ok(Self {
            state,
            handler,
            outbound,
            control,
            handle,
        })
    }

    pub fn handle(&self) -> WorkerHandle {
        self.handle.clone()
    }

    /// Same as [`WorkerHandle::drain`].
    pub fn drain(&self) {
        self.handle.drain();
    }

    /// Runs until drained or shut down (Ok) or reconnect retries run out (Err).
    ///
    /// The LiveKit connection runs on a thread of its own so availability is
    /// answered within milliseconds whatever the sessions do; sessions and the
    /// health server run on the caller's runtime.
    pub async fn run(self) -> Result<(), WorkerError> {
        let _health = match self.state.config.health_addr {
            Some(addr) => {
                let server = HealthServer::start(addr, self.handle())
                    .await
                    .map_err(|e| WorkerError::Health {
                        addr,
                        detail: e.to_string(),
                    })?;
                let _ = self.state.health_addr.set(server.local_addr());
                Some(server)
            }
            None => None,
        };
        self.state
            .set_sessions_runtime(tokio::runtime::Handle::current());
        let handle = self.handle();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("voxguard-livekit".into())
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(self.serve_connections()),
                    Err(error) => Err(WorkerError::Runtime(error.to_string())),
                };
                let _ = done_tx.send(result);
            });
        if let Err(error) = spawned {
            return Err(WorkerError::Runtime(error.to_string()));
        }
        // If this future is dropped, the connection thread is told to stop.
        let _stop_on_drop = StopOnDrop(handle);
        done_rx.await.unwrap_or_else(|_| {
            Err(WorkerError::Runtime(
                "connection thread ended abruptly".into(),
            ))
        })
    }

    async fn serve_connections(mut self) -> Result<(), WorkerError> {
        let seed = self
            .state
            .config
            .reconnect
            .seed
            .unwrap_or_else(rand::random);
        let mut backoff = ReconnectBackoff::new(self.state.config.reconnect, seed);
        let mut drain_deadline = None;
        let mut status_seq = 0;
        loop {
            if *self.control.borrow() == Control::Shutdown {
                break;
            }
            // A stop request with no session to drain ends the worker even
            // while it is still trying to reach the server. (A copy of the
            // control receiver, so the link still sees a drain as news.)
            let mut control = self.control.clone();
            let opened = tokio::select! {
                opened = link::open(&self.state) => opened,
                stop = stop_while_idle(&mut control, &self.state) => match stop {
                    Control::Shutdown => break,
                    _ => {
                        tracing::info!("stop requested while connecting, no session running; worker stopping");
                        return Ok(());
                    }
                },
            };
            let outcome = match opened {
                Ok(socket) => {
                    let link = Link {
                        state: &self.state,
                        handler: &self.handler,
                        outbound: &mut self.outbound,
                        control: &mut self.control,
                        drain_deadline: &mut drain_deadline,
                        status_seq: &mut status_seq,
                    };
                    let handle = &self.handle;
                    let backoff = &mut backoff;
                    link.serve(socket, |_| {
                        backoff.reset();
                        handle.registered();
                    })
                    .await
                }
                Err(error) => Err(error),
            };
            let error = match outcome {
                Ok(LinkEnd::Drained) => {
                    tracing::info!("drained; worker stopping");
                    return Ok(());
                }
                Ok(LinkEnd::Shutdown) => break,
                Err(error) => error,
            };
            metrics::reconnect(error.kind());
            if error.is_auth() {
                tracing::error!(%error, "LiveKit refused the worker: set LIVEKIT_API_KEY and LIVEKIT_API_SECRET to a key pair of this server");
            } else {
                tracing::warn!(%error, running = self.state.running_job_ids().len(), "lost the LiveKit connection");
            }
            if self.state.is_draining() && self.state.is_idle() {
                tracing::info!("drained while disconnected; worker stopping");
                return Ok(());
            }
            let Some(delay) = backoff.next_delay() else {
                self.state.cancel_all(CancelReason::Shutdown);
                return Err(WorkerError::GaveUp {
                    attempts: backoff.failures(),
                    last: error,
                });
            };
            tracing::info!(delay = ?delay, attempt = backoff.failures(), "reconnecting");
            if self.wait_before_retry(delay, &mut drain_deadline).await {
                break;
            }
            if self.state.is_draining() && self.state.is_idle() {
                return Ok(());
            }
        }
        self.state.cancel_all(CancelReason::Shutdown);
        self.state.abort_all();
        Ok(())
    }

    /// Sleeps `delay` while honouring shutdown and the drain deadline; `true` means stop.
    async fn wait_before_retry(
        &mut self,
        delay: Duration,
        drain_deadline: &mut Option<Instant>,
    ) -> bool {
        let wake = Instant::now() + delay;
        loop {
            // Marked seen here so `changed()` below waits for the next request.
            let control = *self.control.borrow_and_update();
            if control == Control::Shutdown {
                return true;
            }
            // Nothing to drain: a stop request ends the wait at once rather
            // than when the backoff (up to its 30 s cap) runs out.
            if control == Control::Drain && self.state.is_idle() {
                return false;
            }
            if control == Control::Drain && drain_deadline.is_none() {
                *drain_deadline = Some(Instant::now() + self.state.config.drain_timeout);
            }
            let far_future = Instant::now() + Duration::from_secs(86_400 * 365);
            if let Some(deadline) = *drain_deadline
                && Instant::now() >= deadline
            {
                self.state.cancel_all(CancelReason::DrainTimeout);
                *drain_deadline = Some(far_future);
            }
            let drain_wake = drain_deadline.unwrap_or(far_future);
            let ended = self.state.session_ended.notified();
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => return false,
                _ = tokio::time::sleep_until(drain_wake) => {}
                changed = self.control.changed() => if changed.is_err() { return true },
                _ = ended => if self.state.is_draining() && self.state.is_idle() { return false },
            }
        }
    }
}

/// Resolves with the stop request once the worker is asked to shut down, or
/// to drain with no session running: then there is nothing to wait for.
async fn stop_while_idle(control: &mut watch::Receiver<Control>, state: &WorkerState) -> Control {
    loop {
        let ended = state.session_ended.notified();
        let request = *control.borrow_and_update();
        if request == Control::Shutdown || (request == Control::Drain && state.is_idle()) {
            return request;
        }
        tokio::select! {
            changed = control.changed() => if changed.is_err() { return Control::Shutdown },
            () = ended => {}
        }
    }
}
