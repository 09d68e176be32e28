//! Process signals for `voxguard start`: the first SIGTERM/SIGINT drains the
//! worker gracefully, a second one ends it at once.

use std::future::Future;

use super::runner::{Worker, WorkerError, WorkerHandle};

/// Runs `worker` until it stops; SIGTERM or SIGINT starts a drain, a second
/// signal cuts the sessions off and returns [`WorkerError::Interrupted`].
pub async fn run_until_signal(worker: Worker) -> Result<(), WorkerError> {
    run_until(worker, shutdown_signal).await
}

/// [`run_until_signal`] with any source of "stop" events (tests use a channel).
pub async fn run_until<S, F>(worker: Worker, mut next_signal: S) -> Result<(), WorkerError>
where
    S: FnMut() -> F,
    F: Future<Output = ()>,
{
    let handle: WorkerHandle = worker.handle();
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => return result,
        _ = next_signal() => {
            tracing::info!("stop signal received: draining (send it again to stop at once)");
            handle.drain();
        }
    }
    tokio::select! {
        result = &mut run => result,
        _ = next_signal() => {
            tracing::warn!("second stop signal: ending sessions now");
            handle.shutdown_now();
            // Give the run loop a moment to send final statuses; never wait long.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), &mut run).await;
            Err(WorkerError::Interrupted)
        }
    }
}

/// Resolves on SIGINT or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
