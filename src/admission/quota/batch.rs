//! The quota checks of concurrent calls, batched: one script run in Redis for every call that
//! arrived while earlier batches were on their way, rather than one a call and quota.
//!
//! Calls hand their checks to a task over a bounded queue. The task takes every check waiting
//! (up to [`MAX_BATCH`] calls) into one `EVALSHA`, with up to [`BATCHES_IN_FLIGHT`] batches on
//! the multiplexed connection at once: an idle service sends each call alone, a busy one as
//! many calls a round trip as arrive during one. A key that comes back in a batch (a busy
//! client's, a busy shopper's) is sent once, asking for the calls of all its checks together;
//! the calls granted are handed out in the order the checks arrived, as Redis would have
//! granted them one by one, so the GCRA stays exact to the call. Most of a check's cost, in
//! Redis and in the client, is a command's and a key's, not a call's.
//!
//! A call never waits on the task longer than its budget (the caller's timeout); a call that
//! gave up before its batch left is not sent, so it is not counted.

use std::collections::HashMap;
use std::sync::Arc;

use redis::Script;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::shared_store::SharedStore;

/// The most calls in one script run.
const MAX_BATCH: usize = 256;
/// Batches on their way to Redis at once. Two rather than more: at saturation on loopback,
/// the same throughput with larger batches (less of Redis's CPU a call); against a distant
/// Redis, a call waits at most about half a round trip for a batch to leave.
const BATCHES_IN_FLIGHT: usize = 2;
/// Calls waiting for a batch; a call that finds the queue full is not checked.
const QUEUE: usize = 8192;

/// GCRA over every key of a batch (each key once). KEYS[i]: a key; ARGV[3i-2]: microseconds
/// between calls at its quota's rate; ARGV[3i-1]: the calls a unit (the burst); ARGV[3i]: the
/// calls asked for. The k-th call is allowed while the key's arrival time plus k - 1 intervals
/// is within the burst of now. Answers, for key i, the calls granted (as many of those asked
/// for as the rate allows now), then, when fewer than asked, the microseconds until the next
/// is allowed (else 0).
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local answers = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = interval * (tonumber(ARGV[3 * i - 1]) - 1)
  local want = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local granted = math.max(0, math.min(want, math.floor((now + tolerance - tat) / interval) + 1))
  if granted > 0 then
    tat = tat + granted * interval
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
  answers[2 * i - 1] = granted
  if granted < want then
    answers[2 * i] = math.max(1, math.ceil(tat - tolerance - now))
  else
    answers[2 * i] = 0
  end
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
    // Each key once, asking for the calls of all its checks.
    let mut keys: HashMap<&str, usize> = HashMap::new();
    let mut asked: Vec<(&Check, u32)> = Vec::new();
    for check in calls.iter().flat_map(|call| &call.checks) {
        let index = *keys.entry(&check.key).or_insert_with(|| {
            asked.push((check, 0));
            asked.len() - 1
        });
        asked[index].1 += check.want;
    }
    let mut invocation = script.prepare_invoke();
    for (check, want) in &asked {
        invocation
            .key(&check.key)
            .arg(check.interval_micros)
            .arg(check.burst)
            .arg(*want);
    }
    match invocation.invoke_async::<Vec<u64>>(&mut connection).await {
        Ok(answers) if answers.len() == 2 * asked.len() => {
            store.answered();
            // Per key: the calls granted and not yet handed out, and the wait past them.
            let mut granted: Vec<(u64, u64)> = answers
                .chunks_exact(2)
                .map(|pair| (pair[0], pair[1]))
                .collect();
            let answers: Vec<Vec<Answer>> = calls
                .iter()
                .map(|call| {
                    call.checks
                        .iter()
                        .map(|check| {
                            let (left, wait) = &mut granted[keys[check.key.as_str()]];
                            let given = u64::from(check.want).min(*left);
                            *left -= given;
                            // At most `check.want`, a u32.
                            let given = u32::try_from(given).unwrap_or(0);
                            (given, if given == 0 { *wait } else { 0 })
                        })
                        .collect()
                })
                .collect();
            for (call, answer) in calls.into_iter().zip(answers) {
                let _ = call.answer.send(Ok(answer));
            }
        }
        Ok(_) => {
            let reason = "the quota script answered another number of keys";
            store.failed(reason);
            for call in calls {
                let _ = call.answer.send(Err(BatchError::Redis(reason.into())));
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
