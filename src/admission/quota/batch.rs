//! The quota checks of concurrent calls, batched: one script run in Redis for every call that
//! arrived while earlier batches were on their way, rather than one a call and quota.
//!
//! Calls hand their checks to a task over a bounded queue. The task takes every check waiting
//! (up to [`MAX_BATCH`] calls) into one `EVALSHA`, with up to [`BATCHES_IN_FLIGHT`] batches on
//! the multiplexed connection at once: an idle service sends each call alone, a busy one as
//! many calls a round trip as arrive during one. Redis runs a script atomically and in order,
//! so the GCRA stays exact to the call: a key checked twice in one batch is checked twice, in
//! turn. Most of a check's cost, in Redis and in the client, is a command's, not a key's.
//!
//! A call never waits on the task longer than its budget (the caller's timeout); a call that
//! gave up before its batch left is not sent, so it is not counted.

use std::sync::Arc;

use redis::Script;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::shared_store::SharedStore;

/// The most calls in one script run.
const MAX_BATCH: usize = 256;
/// Batches on their way to Redis at once.
const BATCHES_IN_FLIGHT: usize = 4;
/// Calls waiting for a batch; a call that finds the queue full is not checked.
const QUEUE: usize = 8192;

/// GCRA over every key of a batch, in order. KEYS[i]: a key; ARGV[3i-2]: microseconds between
/// calls at its quota's rate; ARGV[3i-1]: the calls a unit (the burst); ARGV[3i]: the calls
/// asked for (1, or a lease: `lease`). Answers, for key i, the calls granted (at most those
/// asked for, as many as the rate allows now) and 0, or `0, microseconds until one is`. The
/// k-th call is allowed while the key's arrival time plus k - 1 intervals is within the burst
/// of now. A key that comes back in the batch (a busy client's, a busy shopper's) is read once
/// and written once: Redis's own commands are most of a check's cost.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tats, changed, answers = {}, {}, {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = interval * (tonumber(ARGV[3 * i - 1]) - 1)
  local tat = tats[key]
  if tat == nil then tat = tonumber(redis.call('GET', key)) or now end
  if tat < now then tat = now end
  local granted = math.min(tonumber(ARGV[3 * i]), math.floor((now + tolerance - tat) / interval) + 1)
  if granted < 1 then
    answers[2 * i - 1] = 0
    answers[2 * i] = math.ceil(tat - tolerance - now)
  else
    tat = tat + granted * interval
    changed[key] = true
    answers[2 * i - 1] = granted
    answers[2 * i] = 0
  end
  tats[key] = tat
end
for key in pairs(changed) do
  local tat = tats[key]
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return answers
";

/// One key of a call to check against its quota's rate.
#[derive(Debug)]
pub(super) struct Check {
    pub(super) key: String,
    /// Microseconds between two calls at the rate.
    pub(super) interval_micros: f64,
    /// The calls a unit of the rate.
    pub(super) burst: u32,
    /// The calls asked for: the call's own, or a lease.
    pub(super) want: u32,
}

/// Per check: the calls granted, and when none the microseconds until one is.
pub(super) type Answer = (u32, u64);

/// Why checks got no answer (the call then gets `--quota-failure-mode`).
#[derive(Debug, thiserror::Error)]
pub(super) enum BatchError {
    #[error("the quota checks' queue is full")]
    QueueFull,
    #[error("not connected to Redis")]
    NotConnected,
    #[error("{0}")]
    Redis(String),
}

/// A call's checks, waiting for their batch.
struct Waiting {
    checks: Vec<Check>,
    answer: oneshot::Sender<Result<Vec<Answer>, BatchError>>,
}

/// The calls' side of the batching task.
#[derive(Debug)]
pub(super) struct Batcher {
    queue: mpsc::Sender<Waiting>,
}

impl Batcher {
    /// Starts the batching task (on the current runtime), sending to `store`.
    pub(super) fn start(store: Arc<SharedStore>) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(send_batches(waiting, store, Arc::new(Script::new(GCRA))));
        Self { queue }
    }

    /// Checks and counts `checks` in the next batch. Unbounded in time: the caller bounds it.
    pub(super) async fn check(&self, checks: Vec<Check>) -> Result<Vec<Answer>, BatchError> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .try_send(Waiting { checks, answer })
            .map_err(|_| BatchError::QueueFull)?;
        // The task answers every call it takes; a closed channel means it has stopped.
        answered.await.unwrap_or(Err(BatchError::NotConnected))
    }
}

/// Takes the calls waiting into batches, each sent by a task of its own, at most
/// [`BATCHES_IN_FLIGHT`] at once; returns when every [`Batcher`] is gone.
async fn send_batches(
    mut waiting: mpsc::Receiver<Waiting>,
    store: Arc<SharedStore>,
    script: Arc<Script>,
) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        if waiting.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        // Calls past their budget were answered already, by the failure mode: not counted.
        batch.retain(|call: &Waiting| !call.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let calls = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let (store, script) = (Arc::clone(&store), Arc::clone(&script));
        tokio::spawn(async move {
            send(calls, &store, &script).await;
            drop(permit);
        });
    }
}

/// Sends one batch and answers its calls.
async fn send(calls: Vec<Waiting>, store: &SharedStore, script: &Script) {
    let Some(mut connection) = store.connection() else {
        for call in calls {
            let _ = call.answer.send(Err(BatchError::NotConnected));
        }
        return;
    };
    let mut invocation = script.prepare_invoke();
    for check in calls.iter().flat_map(|call| &call.checks) {
        invocation
            .key(&check.key)
            .arg(check.interval_micros)
            .arg(check.burst)
            .arg(check.want);
    }
    match invocation.invoke_async::<Vec<u64>>(&mut connection).await {
        Ok(answers) => {
            store.answered();
            let mut answers = answers
                .chunks_exact(2)
                .map(|pair| (u32::try_from(pair[0]).unwrap_or(0), pair[1]));
            for call in calls {
                let call_answers: Vec<_> = answers.by_ref().take(call.checks.len()).collect();
                let answer = if call_answers.len() == call.checks.len() {
                    Ok(call_answers)
                } else {
                    Err(BatchError::Redis("the script answered too few keys".into()))
                };
                let _ = call.answer.send(answer);
            }
        }
        Err(error) => {
            let reason = error.to_string();
            store.failed(&reason);
            for call in calls {
                let _ = call.answer.send(Err(BatchError::Redis(reason.clone())));
            }
        }
    }
}
