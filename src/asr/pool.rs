//! The recognition pool: a fixed set of OS threads (one per core by default) that run
//! decoding jobs, fed through a bounded queue. Recognition is CPU-bound for hundreds of
//! milliseconds, so it never runs on tokio's worker threads; an async driver awaits the
//! [`Pending`] handle instead. When every worker is busy and the queue is full, a
//! submission waits at most `max_wait` and then fails with [`AsrError::Saturated`]: the
//! listen degrades to keypad input and the metric `voicenav_asr_saturated_total` counts it.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{AsrError, Transcript};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Metric counting listens that fell back to keypad because the pool was saturated.
pub const SATURATED_METRIC: &str = "voicenav_asr_saturated_total";

/// A bounded pool of recognition threads. Cheap to clone (shared).
#[derive(Clone)]
pub struct AsrPool {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Mutex<Option<SyncSender<Job>>>,
    workers: usize,
    max_wait: Duration,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for AsrPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsrPool")
            .field("workers", &self.inner.workers)
            .finish()
    }
}

impl AsrPool {
    /// `workers` threads (0 = one per core), a queue of `workers` waiting jobs, and
    /// `max_wait` for a submission when full.
    pub fn new(workers: usize, max_wait: Duration) -> AsrPool {
        let workers = if workers == 0 {
            num_cpus::get().max(1)
        } else {
            workers
        };
        let (tx, rx) = sync_channel::<Job>(workers);
        let rx = Arc::new(Mutex::new(rx));
        let handles = (0..workers)
            .map(|i| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("asr-{i}"))
                    .spawn(move || worker(rx))
                    .expect("spawning a recognition thread at start-up")
            })
            .collect();
        AsrPool {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                workers,
                max_wait,
                handles: Mutex::new(handles),
            }),
        }
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Runs `job` on the pool; waits up to `max_wait` for room, then gives up with
    /// [`AsrError::Saturated`] (counted in [`SATURATED_METRIC`]). Never blocks longer.
    pub fn submit<F>(&self, job: F) -> Pending
    where
        F: FnOnce() -> Result<Transcript, AsrError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let mut boxed: Job = Box::new(move || {
            let _ = reply.send(job());
        });
        let deadline = Instant::now() + self.inner.max_wait;
        loop {
            let sender = match self.inner.tx.lock() {
                Ok(g) => g.clone(),
                Err(_) => None,
            };
            let Some(sender) = sender else {
                return Pending::ready(Err(AsrError::Lost));
            };
            match sender.try_send(boxed) {
                Ok(()) => {
                    return Pending {
                        rx: Some(rx),
                        ready: None,
                    }
                }
                Err(TrySendError::Disconnected(_)) => return Pending::ready(Err(AsrError::Lost)),
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        metrics::counter!(SATURATED_METRIC).increment(1);
                        return Pending::ready(Err(AsrError::Saturated));
                    }
                    boxed = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// Stops accepting jobs and joins the workers after the queue drains.
    pub fn shutdown(&self) {
        if let Ok(mut g) = self.inner.tx.lock() {
            g.take();
        }
        if let Ok(mut h) = self.inner.handles.lock() {
            for j in h.drain(..) {
                let _ = j.join();
            }
        }
    }
}

fn worker(rx: Arc<Mutex<Receiver<Job>>>) {
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking backend must not take the worker down with it.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

/// A result being computed on the pool: `.await` it from async code, or [`Pending::wait`]
/// from a plain thread (never from inside a tokio runtime).
#[derive(Debug)]
pub struct Pending {
    rx: Option<oneshot::Receiver<Result<Transcript, AsrError>>>,
    ready: Option<Result<Transcript, AsrError>>,
}

impl Pending {
    /// An already known result.
    pub fn ready(r: Result<Transcript, AsrError>) -> Pending {
        Pending {
            rx: None,
            ready: Some(r),
        }
    }

    /// Blocks the current (non-async) thread until the result is there.
    pub fn wait(mut self) -> Result<Transcript, AsrError> {
        if let Some(r) = self.ready.take() {
            return r;
        }
        match self.rx.take() {
            Some(rx) => rx.blocking_recv().unwrap_or(Err(AsrError::Lost)),
            None => Err(AsrError::Lost),
        }
    }

    /// The result if it is already there, else `self` back.
    pub fn try_take(mut self) -> Result<Result<Transcript, AsrError>, Pending> {
        if let Some(r) = self.ready.take() {
            return Ok(r);
        }
        match self.rx.as_mut().map(|rx| rx.try_recv()) {
            Some(Ok(r)) => Ok(r),
            Some(Err(oneshot::error::TryRecvError::Empty)) => Err(self),
            _ => Ok(Err(AsrError::Lost)),
        }
    }
}

impl std::future::Future for Pending {
    type Output = Result<Transcript, AsrError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if let Some(r) = self.ready.take() {
            return std::task::Poll::Ready(r);
        }
        match self.rx.as_mut() {
            Some(rx) => std::pin::Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(AsrError::Lost))),
            None => std::task::Poll::Ready(Err(AsrError::Lost)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn jobs_run_on_pool_threads_and_results_come_back() {
        let pool = AsrPool::new(2, Duration::from_millis(100));
        let r = pool
            .submit(|| {
                let name = std::thread::current().name().unwrap_or("").to_string();
                assert!(name.starts_with("asr-"));
                Ok(Transcript::none(super::super::NoResult::Silence))
            })
            .wait()
            .expect("job result");
        assert_eq!(r.reason, Some(super::super::NoResult::Silence));
        pool.shutdown();
    }

    #[test]
    fn a_saturated_pool_refuses_after_the_wait_instead_of_queueing_forever() {
        let pool = AsrPool::new(1, Duration::from_millis(30));
        let gate = Arc::new(Mutex::new(()));
        let hold = gate.lock().expect("gate");
        let started = Arc::new(AtomicUsize::new(0));
        let mut pending = Vec::new();
        // 1 running + 1 queued fill the pool; the third must be refused.
        for _ in 0..2 {
            let (g, s) = (Arc::clone(&gate), Arc::clone(&started));
            pending.push(pool.submit(move || {
                s.fetch_add(1, Ordering::SeqCst);
                let _g = g.lock();
                Ok(Transcript::default())
            }));
        }
        while started.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let refused = pool.submit(|| Ok(Transcript::default())).wait();
        assert!(matches!(refused, Err(AsrError::Saturated)), "{refused:?}");
        drop(hold);
        for p in pending {
            p.wait().expect("queued jobs still complete");
        }
        pool.shutdown();
    }

    #[tokio::test]
    async fn pending_can_be_awaited() {
        let pool = AsrPool::new(1, Duration::from_millis(10));
        let r = pool.submit(|| Ok(Transcript::default())).await;
        assert!(r.is_ok());
    }
}
