//! The writer's health: whether calls may be answered, for the request path (an atomic) and
//! the health service (a watch), and a watchdog for a write that does not return.
//!
//! A write that fails (a full disk, a read-only volume) returns an error, and the writer says
//! so itself. A disk that hangs (a stuck network mount, a frozen file system) returns nothing:
//! the writer thread waits in `write` or `fsync` without bound, the queue fills, and then each
//! call waits 250 ms for room before it is refused, while health would still say SERVING. The
//! watchdog, a thread of its own, sees a write that has not returned after the stall limit and
//! turns health NOT_SERVING with `--audit-overflow block`, so that load balancers send the
//! calls elsewhere; the write returning turns it back. Taking up the trail at start is watched
//! as a write is, so that a volume that hangs then is logged rather than waited on in silence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Overflow;
use super::metrics::AuditMetrics;

/// The writer's health, kept by the writer and its watchdog.
#[derive(Debug)]
pub(super) struct WriterHealth {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Whether calls may be answered: what the request path reads.
    answering: Arc<AtomicBool>,
    watch: watch::Sender<bool>,
    /// With `block` a failing or hung writer refuses calls; with `drop` it only says so.
    refuses_calls: bool,
    state: Mutex<State>,
    metrics: AuditMetrics,
}

#[derive(Debug, Default)]
struct State {
    /// The last write failed.
    failing: bool,
    /// When the write under way began, and how many events it holds (0: taking up the trail
    /// at start).
    write_under_way: Option<(Instant, usize)>,
    /// The write under way has taken longer than the limit.
    stalled: bool,
}

/// What the end of a write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// The first of a run of failures.
    Failed,
    /// A success after failures or a stall.
    Recovered,
    Unchanged,
}

impl WriterHealth {
    /// Healthy to begin with; also the flag the request path reads and the health service's
    /// watch.
    pub(super) fn new(
        overflow: Overflow,
        metrics: AuditMetrics,
    ) -> (Self, Arc<AtomicBool>, watch::Receiver<bool>) {
        let answering = Arc::new(AtomicBool::new(true));
        let (watch, receiver) = watch::channel(true);
        metrics.writer_failing.set(0.0);
        let shared = Arc::new(Shared {
            answering: Arc::clone(&answering),
            watch,
            refuses_calls: overflow == Overflow::Block,
            state: Mutex::new(State::default()),
            metrics,
        });
        (Self { shared }, answering, receiver)
    }

    /// Starts the watchdog: a thread that looks at the write under way `limit / 8` apart,
    /// and ends once this health is dropped (the writer has stopped).
    pub(super) fn watch_for_stalls(
        &self,
        limit: Duration,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let shared = Arc::downgrade(&self.shared);
        std::thread::Builder::new()
            .name("audit-watchdog".into())
            .spawn(move || watchdog(&shared, limit))
    }

    /// A write of `events` begins.
    pub(super) fn writing(&self, events: usize) {
        self.shared.state().write_under_way = Some((Instant::now(), events));
    }

    /// The write begun last has ended, and whether it succeeded.
    pub(super) fn written(&self, succeeded: bool) -> Turn {
        let mut state = self.shared.state();
        let turn = match (succeeded, state.failing, state.stalled) {
            (false, false, _) => Turn::Failed,
            (true, true, _) | (true, _, true) => Turn::Recovered,
            _ => Turn::Unchanged,
        };
        *state = State {
            failing: !succeeded,
            write_under_way: None,
            stalled: false,
        };
        self.shared.publish(&state);
        turn
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, state: &State) {
        let troubled = state.failing || state.stalled;
        let answering = !(self.refuses_calls && troubled);
        self.answering.store(answering, Ordering::Relaxed);
        self.watch.send_if_modified(|serving| {
            let changed = *serving != answering;
            *serving = answering;
            changed
        });
        self.metrics
            .writer_failing
            .set(if troubled { 1.0 } else { 0.0 });
    }
}

fn watchdog(shared: &Weak<Shared>, limit: Duration) {
    loop {
        std::thread::sleep(limit / 8);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut state = shared.state();
        let hung = state
            .write_under_way
            .filter(|(since, _)| since.elapsed() >= limit);
        if let Some((_, events)) = hung
            && !state.stalled
        {
            state.stalled = true;
            shared.metrics.stalls.increment(1);
            shared.publish(&state);
            tracing::error!(
                limit = ?limit,
                events_being_written = events,
                "the audit directory has not answered within the limit (a write, or taking up the trail at start): the disk may hang; with --audit-overflow block calls are refused (health NOT_SERVING) until it answers, and at start the replica serves nothing until then"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(40);

    fn health(overflow: Overflow) -> (WriterHealth, Arc<AtomicBool>, watch::Receiver<bool>) {
        WriterHealth::new(overflow, AuditMetrics::new())
    }

    /// A health whose watchdog has called the write under way stalled (waited for up to 5 s).
    fn stalled(overflow: Overflow) -> (WriterHealth, Arc<AtomicBool>, watch::Receiver<bool>) {
        let (health, answering, serving) = health(overflow);
        health.watch_for_stalls(LIMIT).unwrap();
        health.writing(1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !health.shared.state().stalled {
            assert!(Instant::now() < deadline, "no stall seen");
            std::thread::sleep(LIMIT / 4);
        }
        (health, answering, serving)
    }

    #[test]
    fn a_write_that_does_not_return_refuses_calls_until_it_does() {
        let (health, answering, serving) = stalled(Overflow::Block);
        assert!(!answering.load(Ordering::Relaxed));
        assert!(!*serving.borrow());
        assert_eq!(health.written(true), Turn::Recovered);
        assert!(answering.load(Ordering::Relaxed));
        assert!(*serving.borrow());
    }

    #[test]
    fn with_drop_a_hung_write_is_told_but_calls_are_answered() {
        let (health, answering, serving) = stalled(Overflow::Drop);
        assert!(answering.load(Ordering::Relaxed));
        assert!(*serving.borrow());
        assert_eq!(health.written(true), Turn::Recovered);
    }

    #[test]
    fn a_write_that_returns_in_time_is_no_stall() {
        let (health, answering, _serving) = health(Overflow::Block);
        let _watchdog = health.watch_for_stalls(LIMIT).unwrap();
        for _ in 0..4 {
            health.writing(1);
            std::thread::sleep(LIMIT / 4);
            assert_eq!(health.written(true), Turn::Unchanged);
        }
        std::thread::sleep(LIMIT * 2);
        assert!(!health.shared.state().stalled);
        assert!(answering.load(Ordering::Relaxed));
    }

    #[test]
    fn failures_are_told_once_and_so_is_the_recovery() {
        let (health, answering, serving) = health(Overflow::Block);
        health.writing(1);
        assert_eq!(health.written(false), Turn::Failed);
        assert!(!answering.load(Ordering::Relaxed));
        assert!(!*serving.borrow());
        health.writing(1);
        assert_eq!(health.written(false), Turn::Unchanged);
        health.writing(1);
        assert_eq!(health.written(true), Turn::Recovered);
        assert!(answering.load(Ordering::Relaxed));
        assert!(*serving.borrow());
    }

    #[test]
    fn the_watchdog_ends_with_the_writer() {
        let (health, _answering, _serving) = health(Overflow::Block);
        let watchdog = health.watch_for_stalls(LIMIT).unwrap();
        drop(health);
        watchdog.join().unwrap();
    }
}
