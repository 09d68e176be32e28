//! The success path, side by side with `recloser` and `failsafe`:
//! breaker admit + record on one thread and on two threads sharing a breaker,
//! and the whole Guard success path against the bare operation.
//!
//! `cargo bench --bench resilience -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use voxguard::resilience::{
    AttemptCtx, CallError, CallResult, CircuitBreaker, Clock, Deadline, Guard, GuardConfig,
    Retryability,
};

const FAST: Duration = Duration::from_micros(800);

fn ours() -> CircuitBreaker {
    CircuitBreaker::new(
        "bench",
        GuardConfig::for_service("bench").breaker,
        Clock::monotonic(),
    )
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(20)
        .half_open_len(2)
        .open_wait(Duration::from_secs(5))
        .build()
}

fn failsafe() -> impl failsafe::CircuitBreaker + Sync {
    failsafe::Config::new().build()
}

fn breaker_one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_success_1_thread");
    let breaker = ours();
    group.bench_function("voxguard", |b| {
        b.iter(|| {
            breaker
                .try_acquire()
                .expect("closed")
                .record(CallResult::Success, black_box(FAST))
        })
    });
    let recloser = recloser();
    group.bench_function("recloser", |b| {
        b.iter(|| recloser.call(|| black_box(Ok::<(), ()>(()))))
    });
    let failsafe = failsafe();
    group.bench_function("failsafe", |b| {
        b.iter(|| failsafe.call(|| black_box(Ok::<(), ()>(()))))
    });
    group.finish();
}

/// Two threads hammer one breaker; the time reported is per call pair
/// (each thread makes `iters` calls concurrently).
fn on_two_threads(iters: u64, call: impl Fn() + Sync) -> Duration {
    let start_line = Barrier::new(2);
    std::thread::scope(|s| {
        let run = || {
            start_line.wait();
            let start = Instant::now();
            for _ in 0..iters {
                call();
            }
            start.elapsed()
        };
        let a = s.spawn(run);
        let b = s.spawn(run);
        a.join().unwrap().max(b.join().unwrap())
    })
}

fn breaker_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_success_2_threads");
    let breaker = ours();
    group.bench_function("voxguard", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, || {
                breaker
                    .try_acquire()
                    .expect("closed")
                    .record(CallResult::Success, black_box(FAST))
            })
        })
    });
    let recloser = recloser();
    group.bench_function("recloser", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, || {
                let _ = recloser.call(|| black_box(Ok::<(), ()>(())));
            })
        })
    });
    let failsafe = failsafe();
    group.bench_function("failsafe", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, || {
                let _ = failsafe.call(|| black_box(Ok::<(), ()>(())));
            })
        })
    });
    group.finish();
}

async fn ready_op(ctx: AttemptCtx) -> Result<u32, CallError> {
    Ok(black_box(ctx.attempt))
}

fn guard_success_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("guard_success_path");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let guard = runtime.block_on(async { Guard::with_seed(GuardConfig::for_service("bench"), 1) });
    let deadline = runtime.block_on(async { Deadline::after(Duration::from_secs(3600)) });
    group.bench_function("bare_op", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let ctx = AttemptCtx {
                        attempt: 1,
                        timeout: Duration::from_secs(1),
                        deadline,
                    };
                    black_box(ready_op(black_box(ctx)).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("guarded_op", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let outcome = guard
                        .call(deadline, Retryability::Transient, ready_op)
                        .await;
                    black_box(outcome.result.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    breaker_one_thread,
    breaker_two_threads,
    guard_success_path
);
criterion_main!(benches);
