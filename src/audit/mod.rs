//! The audit trail of card-data access (`--audit-dir`): one event for every call that carries
//! card data (Validate, LookupBin, MaskCard, each Inspect item, over gRPC or HTTP), in JSON
//! lines, one file a replica a UTC day, hash-chained so that an edit, a removed line or a
//! removed file shows (`card-lookup audit verify`).
//!
//! - `event`: what an event says (the card masked, never more than the masking rules show).
//! - [`chain`]: the SHA-256 (or HMAC) chain over the lines.
//! - `file`: file names and the records besides events (closing, recovery).
//! - `writer`: the one writer thread: batches, `fsync`, rollover, failures.
//! - `health`: whether calls may be answered, and the watchdog for a disk that hangs.
//! - [`verify`]: checking a directory of files, as `audit verify` does.
//! - [`report`]: the monthly access report (`audit report`).
//! - `retention`: deleting old files, only verified ones (`--audit-retention`).
//! - `metrics`: the `cardlookup_audit_*` metrics.
//!
//! The request layer ([`crate::api::CardApi`]) records the events, below every front end; the
//! call pays for masking the number and a place in a bounded queue.

pub mod chain;
mod event;
mod file;
mod health;
mod metrics;
pub mod report;
mod retention;
pub mod verify;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

pub(crate) use self::event::{CardSeen, Event};
pub use self::file::TrailFile;
use self::health::WriterHealth;
use self::metrics::AuditMetrics;
use self::writer::{Message, Writer};
use crate::card::FingerprintKey;

/// Events the queue holds for the writer.
const QUEUE_EVENTS: usize = 65_536;
/// The longest a call waits for room in a full queue with `--audit-overflow block`, before it
/// is refused.
const BLOCK_LIMIT: Duration = Duration::from_millis(250);
/// How long a write may take before the disk is taken to hang (`health`'s watchdog): twice the
/// second within which the trail promises to have synced a call's event.
const STALL_LIMIT: Duration = Duration::from_secs(2);
/// The longest shutdown waits for the writer to write what is queued and close the file. A
/// volume that hangs would hold the shutdown without bound, and without a word.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);

/// What a full queue does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Overflow {
    /// The call waits briefly for room, then is refused (UNAVAILABLE): no call is answered
    /// unaudited. A failing writer also turns health NOT_SERVING.
    #[default]
    Block,
    /// The event is dropped and counted; the call is answered.
    Drop,
}

/// `--audit-*`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSettings {
    pub dir: PathBuf,
    /// In every file's name and every line.
    pub replica: String,
    /// Makes the chain an HMAC chain.
    pub hmac_key: Option<FingerprintKey>,
    pub overflow: Overflow,
    /// Files whose day ended longer ago are deleted, when their chain verifies.
    pub retention: Duration,
}

/// Why the trail cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("--audit-dir {0}: {1}")]
    Dir(PathBuf, String),
    /// Resuming would chain on from a line whose own hash does not hold.
    #[error(
        "--audit-dir: {0} ends in a line whose hash does not hold (edited, or another --audit-hmac-key-file); check it with `card-lookup audit verify`"
    )]
    Unsealed(PathBuf),
}

/// The request path's side of the trail: records events. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Auditor {
    queue: mpsc::Sender<Message>,
    overflow: Overflow,
    /// Whether the writer's writes succeed; with `block`, calls are refused at once while
    /// they fail. An atomic, read with a plain load: every call reads it.
    healthy: Arc<AtomicBool>,
    metrics: AuditMetrics,
}

/// The writer's side: its health, and closing it at shutdown.
#[derive(Debug)]
pub struct AuditWriter {
    queue: mpsc::Sender<Message>,
    thread: std::thread::JoinHandle<()>,
    healthy: watch::Receiver<bool>,
    closing: Arc<AtomicBool>,
}

/// The call could not be recorded, and with `--audit-overflow block` must not be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unrecorded;

impl Auditor {
    /// Starts the writer thread of `settings`, taking up the chain where the replica's
    /// newest file ends.
    pub fn start(settings: &AuditSettings) -> Result<(Self, AuditWriter), AuditError> {
        let metrics = AuditMetrics::new();
        let (health, answering, healthy) = WriterHealth::new(settings.overflow, metrics.clone());
        let no_thread = |e: std::io::Error| AuditError::Dir(settings.dir.clone(), e.to_string());
        health.watch_for_stalls(STALL_LIMIT).map_err(no_thread)?;
        let closing = Arc::new(AtomicBool::new(false));
        let writer = Writer::resume(settings, metrics.clone(), health, Arc::clone(&closing))?;
        let (queue, receiver) = mpsc::channel(QUEUE_EVENTS);
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(no_thread)?;
        let auditor = Self {
            queue: queue.clone(),
            overflow: settings.overflow,
            healthy: answering,
            metrics,
        };
        Ok((
            auditor,
            AuditWriter {
                queue,
                thread,
                healthy,
                closing,
            },
        ))
    }

    /// Queues `event`. With `block`, a full queue is waited on for at most [`BLOCK_LIMIT`]
    /// (asynchronously: the worker thread goes on serving other calls), and a failing writer
    /// refuses at once: the error means the call must not be answered. With `drop`, an event
    /// that does not fit is dropped and counted.
    pub(crate) async fn record(&self, event: Event) -> Result<(), Unrecorded> {
        let block = self.overflow == Overflow::Block;
        if block && !self.healthy.load(Ordering::Relaxed) {
            self.metrics.dropped_call_refused.increment(1);
            return Err(Unrecorded);
        }
        let message = match self.queue.try_send(Message::Event(event)) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(message)) if block => message,
            Err(_) => {
                let dropped = if block {
                    &self.metrics.dropped_call_refused
                } else {
                    &self.metrics.dropped_queue_full
                };
                dropped.increment(1);
                return if block { Err(Unrecorded) } else { Ok(()) };
            }
        };
        // A full queue is the writer falling behind: the call waits for room, up to the limit.
        self.metrics.blocked.increment(1);
        // An error is the limit passing, or the queue closed (the writer stopped at shutdown).
        if let Ok(Ok(())) = tokio::time::timeout(BLOCK_LIMIT, self.queue.send(message)).await {
            return Ok(());
        }
        self.metrics.dropped_call_refused.increment(1);
        Err(Unrecorded)
    }
}

impl AuditWriter {
    /// Whether the writer's writes succeed: false while they fail.
    #[must_use]
    pub fn healthy(&self) -> watch::Receiver<bool> {
        self.healthy.clone()
    }

    /// Writes what is queued, closes the file (its closing record) and stops the thread. A
    /// write still failing is given up, and logged. A writer that has not finished within
    /// [`CLOSE_LIMIT`] (its volume hangs) is left, and logged with the events still queued
    /// (the watchdog has logged those of the write under way): the process then ends once the
    /// write returns (the kernel holds it until then), and the next start takes up the trail
    /// where the file ends.
    pub async fn close(self) {
        let Self {
            queue,
            thread,
            closing,
            ..
        } = self;
        closing.store(true, Ordering::Relaxed);
        // Counted as the close is queued, after the servers have stopped taking calls.
        let queued = queue.max_capacity() - queue.capacity();
        let closed = async move {
            if queue.send(Message::Close).await.is_ok() {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        };
        if tokio::time::timeout(CLOSE_LIMIT, closed).await.is_err() {
            tracing::error!(
                limit = ?CLOSE_LIMIT,
                queued_events = queued,
                "the audit writer has not finished within the limit: its volume may hang; the events still queued are lost, the write under way (the stall's events_being_written) lands only if the volume answers before the process ends, and the file is not closed (the next start takes up the trail where it ends)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use tonic::Code;

    use super::*;
    use crate::card::Pan;
    use crate::telemetry::Method;

    /// An auditor over a queue of `room` events that nothing drains, and the queue's far end.
    fn auditor(room: usize, overflow: Overflow) -> (Auditor, mpsc::Receiver<Message>) {
        let (queue, receiver) = mpsc::channel(room);
        let auditor = Auditor {
            queue,
            overflow,
            healthy: Arc::new(AtomicBool::new(true)),
            metrics: AuditMetrics::new(),
        };
        (auditor, receiver)
    }

    fn event() -> Event {
        Event {
            time: SystemTime::now(),
            request_id: None,
            client: None,
            subject: None,
            method: Method::Validate,
            card: CardSeen::of(Pan::parse("4111111111111111").ok().as_ref(), None, None),
            code: Code::Ok,
            valid: Some(true),
            dataset_version: "sha256:0".into(),
        }
    }

    // One worker thread: a call waiting for room must leave it free for the writer's side
    // (here a task draining the queue) and every other call.
    #[tokio::test(flavor = "current_thread")]
    async fn a_call_waits_for_room_without_holding_its_thread() {
        let (auditor, mut receiver) = auditor(1, Overflow::Block);
        auditor.record(event()).await.unwrap();
        let drain = tokio::spawn(async move {
            receiver.recv().await.unwrap();
            receiver.recv().await.unwrap();
        });
        auditor.record(event()).await.unwrap();
        drain.await.unwrap();
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn blocking_gives_up_after_the_limit() {
        let (auditor, _receiver) = auditor(1, Overflow::Block);
        auditor.record(event()).await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(auditor.record(event()).await, Err(Unrecorded));
        assert_eq!(started.elapsed(), BLOCK_LIMIT);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn dropping_answers_at_once() {
        let (auditor, _receiver) = auditor(1, Overflow::Drop);
        auditor.record(event()).await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(auditor.record(event()).await, Ok(()));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failing_writer_refuses_calls_at_once_when_blocking() {
        let (auditor, _receiver) = auditor(8, Overflow::Block);
        auditor.healthy.store(false, Ordering::Relaxed);
        assert_eq!(auditor.record(event()).await, Err(Unrecorded));
        auditor.healthy.store(true, Ordering::Relaxed);
        assert_eq!(auditor.record(event()).await, Ok(()));
    }
}
