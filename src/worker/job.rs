//! The seam between the worker and a conversation: the worker accepts a job,
//! joins its room and hands a [`JobContext`] to a [`JobHandler`]; the handler's
//! result becomes the job's final status (SUCCESS, or FAILED with its text).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use tokio::sync::watch;

use crate::room::{AGENT_STATE_ATTRIBUTE, RoomConnection, RoomError, RoomOptions};
use crate::session::AgentState;

/// What a job returns; an `Err` is reported with JS_FAILED (its text and causes).
pub type JobResult = Result<(), JobError>;

/// Why a job failed, kept as a value up to the status report.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("could not join the room")]
    Join(#[from] RoomError),
    #[error("cancelled before joining the room ({0:?})")]
    CancelledBeforeJoin(CancelReason),
    #[error("session did not stop within {} after {reason:?}", humantime::format_duration(*.grace))]
    StopTimeout {
        grace: Duration,
        reason: CancelReason,
    },
    /// The handler's own error.
    #[error(transparent)]
    Handler(Box<dyn std::error::Error + Send + Sync>),
}

impl JobError {
    /// Wrap a handler's error.
    pub fn handler(error: impl std::error::Error + Send + Sync + 'static) -> JobError {
        JobError::Handler(Box::new(error))
    }

    /// A handler failure described only by text.
    pub fn message(text: impl Into<String>) -> JobError {
        JobError::Handler(text.into().into())
    }

    /// The error and its causes, outermost first: what JS_FAILED carries.
    pub fn report(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// Runs one job. Object-safe so the worker can hold `Arc<dyn JobHandler>`.
pub trait JobHandler: Send + Sync + 'static {
    fn run(&self, job: JobContext) -> Pin<Box<dyn Future<Output = JobResult> + Send>>;

    /// How the job's room is joined: signal only unless the handler hears
    /// and speaks.
    fn room_options(&self, _job: &proto::Job) -> RoomOptions {
        RoomOptions::default()
    }
}

/// Everything a session needs: the job, its room, and a signal to stop.
pub struct JobContext {
    pub job: proto::Job,
    /// The room token from the assignment (identity, room and grants).
    pub token: String,
    /// The URL the room connection used.
    pub url: String,
    pub room: RoomConnection,
    pub cancel: CancelSignal,
}

impl JobContext {
    pub fn job_id(&self) -> &str {
        &self.job.id
    }

    pub fn room_name(&self) -> &str {
        self.job
            .room
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or_default()
    }
}

/// Why a session is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The server sent a JobTermination.
    Terminated,
    /// The worker is draining and the drain timeout ran out.
    DrainTimeout,
    /// The worker is shutting down immediately.
    Shutdown,
}

/// The receiving side of a session's stop signal; cheap to clone.
#[derive(Debug, Clone)]
pub struct CancelSignal(watch::Receiver<Option<CancelReason>>);

/// The sending side, held by the worker.
#[derive(Debug)]
pub struct CancelTrigger(watch::Sender<Option<CancelReason>>);

pub fn cancel_pair() -> (CancelTrigger, CancelSignal) {
    let (tx, rx) = watch::channel(None);
    (CancelTrigger(tx), CancelSignal(rx))
}

impl CancelTrigger {
    /// Signals the session; the first reason wins.
    pub fn cancel(&self, reason: CancelReason) {
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }
}

impl CancelSignal {
    pub fn reason(&self) -> Option<CancelReason> {
        *self.0.borrow()
    }

    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// Resolves once the session is asked to stop (or the worker is gone).
    pub async fn cancelled(&self) -> CancelReason {
        let mut rx = self.0.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.unwrap_or(CancelReason::Shutdown),
            Err(_) => CancelReason::Shutdown,
        }
    }
}

/// A handler that keeps the agent in the room, `listening`, until the caller
/// leaves or the job is cancelled. Useful for `voxguard dev` smoke runs and tests.
#[derive(Debug, Clone, Default)]
pub struct HoldUntilCallerLeaves;

impl JobHandler for HoldUntilCallerLeaves {
    fn run(&self, job: JobContext) -> Pin<Box<dyn Future<Output = JobResult> + Send>> {
        Box::pin(async move {
            job.room
                .set_attribute(AGENT_STATE_ATTRIBUTE, AgentState::Listening.as_str())
                .await;
            tokio::select! {
                _ = job.room.caller_left() => {}
                _ = job.cancel.cancelled() => {}
            }
            Ok(())
        })
    }
}

/// A handler that runs for a fixed time (or until cancelled) and then returns
/// a fixed result. Test scaffolding for the worker's status flow.
#[derive(Debug, Clone)]
pub struct ScriptedJob {
    pub duration: Duration,
    /// `Some(reason)` makes the job fail with that text.
    pub failure: Option<String>,
    /// Whether a cancel ends the job early; `false` models a session that
    /// ignores its stop signal (to exercise the worker's abort path).
    pub honours_cancel: bool,
}

impl ScriptedJob {
    pub fn succeeding_after(duration: Duration) -> Self {
        Self {
            duration,
            failure: None,
            honours_cancel: true,
        }
    }

    pub fn failing_after(duration: Duration, error: impl Into<String>) -> Self {
        Self {
            duration,
            failure: Some(error.into()),
            honours_cancel: true,
        }
    }
}

impl JobHandler for ScriptedJob {
    fn run(&self, job: JobContext) -> Pin<Box<dyn Future<Output = JobResult> + Send>> {
        let script = self.clone();
        Box::pin(async move {
            job.room
                .set_attribute(AGENT_STATE_ATTRIBUTE, AgentState::Listening.as_str())
                .await;
            let finished = tokio::time::sleep(script.duration);
            if script.honours_cancel {
                tokio::select! {
                    _ = finished => {}
                    _ = job.cancel.cancelled() => {}
                }
            } else {
                finished.await;
            }
            match script.failure {
                Some(reason) => Err(JobError::message(reason)),
                None => Ok(()),
            }
        })
    }
}

/// Adapts a closure into a [`JobHandler`].
pub struct FnHandler<F>(pub F);

impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = JobResult> + Send + 'static,
{
    fn run(&self, job: JobContext) -> Pin<Box<dyn Future<Output = JobResult> + Send>> {
        Box::pin((self.0)(job))
    }
}

/// Shared handler pointer as the worker stores it.
pub type SharedHandler = Arc<dyn JobHandler>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_cancel_reason_wins() {
        let (trigger, signal) = cancel_pair();
        assert!(!signal.is_cancelled());
        trigger.cancel(CancelReason::Terminated);
        trigger.cancel(CancelReason::Shutdown);
        assert_eq!(signal.cancelled().await, CancelReason::Terminated);
    }

    #[tokio::test]
    async fn a_dropped_trigger_reads_as_shutdown() {
        let (trigger, signal) = cancel_pair();
        drop(trigger);
        assert_eq!(signal.cancelled().await, CancelReason::Shutdown);
    }
}
