//! Card-testing windows pooled across replicas, in the shared store (Redis): a ring spreading
//! its attempts over every replica it can reach is judged on all of them together.
//!
//! Once a second ([`POOL_INTERVAL`]) each replica sends, for every client that called it since,
//! what it has not reported yet ([`Report`]), if only that the client called: one Lua script a
//! client, run atomically by Redis, all of
//! them concurrently on the one multiplexed connection. The script adds the BINs to a
//! HyperLogLog of the client's current slot, the cards' hashes to another (when the replicas
//! share the card key: `--fingerprint-key-file`) and the Luhn counts to the slot's counters
//! (the window is six slots of wall-clock time, as each replica's own), then judges the client
//! on the whole window of every replica: the distinct BINs and cards (HyperLogLog unions,
//! within about 1% of the true counts) and the share of Luhn failures, against the same
//! thresholds as the replica's own detection. A client over a threshold, or flagged by a
//! replica on its own calls, gets a flag key that lives for one window; every replica the
//! client calls while it lives learns of it in its next round and flags the client too, so it
//! is refused everywhere within about a second.
//!
//! Calls never wait on Redis: they only add to what the next round reports. A round that Redis
//! does not answer within [`POOL_BUDGET`] is dropped (and counted); each replica's own detection
//! goes on meanwhile.
//!
//! Keys: `cardlookup:ct:{<hex SHA-256 of the client identity>}:<what>[:<slot>]`. The braces
//! are a Redis Cluster hash tag (a client's keys in one slot, as a script needs); no client
//! identity is stored, and no card data but BINs (a HyperLogLog keeps only registers, not the
//! cards' keyed hashes it is given).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::describe_counter;
use redis::Script;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::{CardTestingDetector, Report, SLOTS, Suspicion};
use crate::shared_store::{SharedStore, hashed};

/// How often a replica reports to the pool: how long a client flagged on one replica may still
/// be served by another.
pub const POOL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a round may wait for Redis.
const POOL_BUDGET: Duration = Duration::from_millis(500);
const POOL_ERRORS: &str = "cardlookup_card_testing_pool_errors_total";

/// Adds a replica's report of one client to the window, then judges the client.
///
/// KEYS[1]: the flag; KEYS[2 .. 1+n]: the window's BIN sets (HyperLogLogs), oldest first, the
/// last the current slot's; KEYS[2+n .. 1+2n]: the window's Luhn counts (hashes: `v`
/// validations, `f` failures), likewise; KEYS[2+2n .. 1+3n]: the window's card sets, likewise.
/// ARGV: n, the keys' life (ms), the flag's life (ms), validations, failures, the distinct-BIN
/// limit (0: off), the failure share, the least number of validations the share is taken of,
/// the reason a replica flagged the client for (or ''), the distinct-card limit (0: not
/// pooled), the number of BINs, then the BINs, then the cards.
/// Answers `{reason, flag's remaining life in ms, 1 when this call's counts decided it}`, or
/// `{'', 0, 0}` when the client is not flagged.
const POOL: &str = r"
local n = tonumber(ARGV[1])
local life = tonumber(ARGV[2])
local bins_now, luhn_now, cards_now = KEYS[1 + n], KEYS[1 + 2 * n], KEYS[1 + 3 * n]
local function add(set, from, to)
  for i = from, to, 1000 do
    redis.call('PFADD', set, unpack(ARGV, i, math.min(i + 999, to)))
  end
  if to >= from then redis.call('PEXPIRE', set, life) end
end
local last_bin = 11 + tonumber(ARGV[11])
add(bins_now, 12, last_bin)
add(cards_now, last_bin + 1, #ARGV)
local validations, failures = tonumber(ARGV[4]), tonumber(ARGV[5])
if validations > 0 then
  redis.call('HINCRBY', luhn_now, 'v', validations)
  if failures > 0 then redis.call('HINCRBY', luhn_now, 'f', failures) end
  redis.call('PEXPIRE', luhn_now, life)
end
local flag = redis.call('GET', KEYS[1])
if flag then return {flag, redis.call('PTTL', KEYS[1]), 0} end
local reason, decided = ARGV[9], 0
if reason == '' then
  decided = 1
  local max_bins = tonumber(ARGV[6])
  local max_cards = tonumber(ARGV[10])
  if max_bins > 0 and redis.call('PFCOUNT', unpack(KEYS, 2, 1 + n)) > max_bins then
    reason = 'bin_walk'
  elseif max_cards > 0 and redis.call('PFCOUNT', unpack(KEYS, 2 + 2 * n, 1 + 3 * n)) > max_cards then
    reason = 'card_walk'
  else
    local v, f = 0, 0
    for i = 2 + n, 1 + 2 * n do
      local counts = redis.call('HMGET', KEYS[i], 'v', 'f')
      v = v + (tonumber(counts[1]) or 0)
      f = f + (tonumber(counts[2]) or 0)
    end
    if f > tonumber(ARGV[7]) * math.max(v, tonumber(ARGV[8])) then reason = 'luhn_failures' end
  end
end
if reason == '' then return {'', 0, 0} end
redis.call('SET', KEYS[1], reason, 'PX', ARGV[3])
return {reason, tonumber(ARGV[3]), decided}
";

/// Reports `detector`'s clients to the pool in `store` every [`POOL_INTERVAL`] until `stop`.
pub async fn pool(
    detector: Arc<CardTestingDetector>,
    store: Arc<SharedStore>,
    stop: CancellationToken,
) {
    describe_counter!(
        POOL_ERRORS,
        "Rounds of card-testing reports to the shared store (Redis) dropped: reason=timeout when it did not answer within 500 ms, reason=error when it failed or was not connected. Each replica's own detection went on."
    );
    let timeouts = metrics::counter!(POOL_ERRORS, "reason" => "timeout");
    let errors = metrics::counter!(POOL_ERRORS, "reason" => "error");
    let script = Script::new(POOL);
    let mut interval = tokio::time::interval(POOL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.run_until_cancelled(interval.tick()).await.is_some() {
        let reports = detector.take_unreported();
        if reports.is_empty() {
            continue;
        }
        let Some(connection) = store.connection() else {
            errors.increment(1);
            continue;
        };
        let round = report_all(&detector, &script, &connection, &reports);
        match tokio::time::timeout(POOL_BUDGET, round).await {
            Ok(Ok(())) => store.answered(),
            Ok(Err(error)) => {
                errors.increment(1);
                store.failed(&error.to_string());
            }
            Err(_elapsed) => {
                timeouts.increment(1);
                store.failed("timeout");
            }
        }
    }
}

/// Sends every report, and flags the clients the pool answers are flagged.
async fn report_all(
    detector: &CardTestingDetector,
    script: &Script,
    connection: &ConnectionManager,
    reports: &[Report],
) -> redis::RedisResult<()> {
    let config = detector.config;
    let slot = slot_length(config.window);
    let current = current_slot(slot);
    let key_life = config.window + slot;
    // Cards are judged in the pool only when every replica hashes them alike.
    let max_pooled_cards = if detector.card_key_shared {
        config.max_distinct_cards
    } else {
        0
    };
    let sends = reports.iter().map(|report| {
        let mut connection = connection.clone();
        let prefix = format!(
            "cardlookup:ct:{{{}}}",
            hashed("client", report.client.as_bytes())
        );
        let mut invocation = script.key(format!("{prefix}:flag"));
        let window = (current.saturating_sub(SLOTS as u64 - 1))..=current;
        for slot in window.clone() {
            invocation.key(format!("{prefix}:bins:{slot}"));
        }
        for slot in window.clone() {
            invocation.key(format!("{prefix}:luhn:{slot}"));
        }
        for slot in window {
            invocation.key(format!("{prefix}:cards:{slot}"));
        }
        invocation
            .arg(SLOTS)
            .arg(millis(key_life))
            .arg(millis(config.window))
            .arg(report.validations)
            .arg(report.luhn_failures)
            .arg(config.max_distinct_bins)
            .arg(config.max_luhn_failure_ratio)
            .arg(config.min_validations)
            .arg(report.flagged.map_or("", Suspicion::label))
            .arg(max_pooled_cards)
            .arg(report.bins.len())
            .arg(&report.bins)
            .arg(&report.cards);
        async move {
            let (reason, remaining, decided) = invocation
                .invoke_async::<(String, u64, u8)>(&mut connection)
                .await?;
            if !reason.is_empty() {
                detector.flagged_by_pool(
                    report,
                    &reason,
                    Duration::from_millis(remaining),
                    decided == 1,
                );
            }
            Ok(())
        }
    });
    futures_util::future::try_join_all(sends).await.map(drop)
}

/// A slot of the window, at least a millisecond.
fn slot_length(window: Duration) -> Duration {
    (window / SLOTS as u32).max(Duration::from_millis(1))
}

/// The number of the wall-clock slot now: the same on every replica whose clock is right.
fn current_slot(slot: Duration) -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis() / slot.as_millis().max(1)).unwrap_or(u64::MAX)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
