//! The store every replica shares (`--redis-url`): one Redis endpoint, or a server that speaks
//! its protocol (Valkey, a managed Redis). `--quota` counts calls in it
//! (`admission::quota`), and card-testing detection pools its clients' windows in it
//! (`card_testing::fleet`), so that N replicas do not give a client N times its allowance.
//!
//! One multiplexed connection a process, made in the background with backoff and remade by the
//! connection manager when it is lost, so that no call waits on a Redis that is down: its users
//! bound each round trip with their own budget. Whether Redis answers is a gauge and a log line
//! when it changes, never a line a call.
//!
//! Nothing a caller sent is stored as it is: keys are SHA-256 hashes of what they count by
//! ([`hashed`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use metrics::{Gauge, describe_gauge};
use redis::IntoConnectionInfo;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};

use crate::log_throttle::{LOG_INTERVAL, LogThrottle};

const BACKEND_UP: &str = "cardlookup_quota_backend_up";
/// The longest wait between two attempts to connect.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);
/// The longest the connection manager waits for an answer. Callers give Redis less (a quota
/// check its `--quota-budget`); this only bounds what they stopped waiting for.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where Redis is. Its `Debug` leaves out the URL, which can hold a password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    url: String,
    password: Option<String>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisTarget(..)")
    }
}

impl RedisTarget {
    /// A `redis://` or `rediss://` URL, with the password of `--redis-password-file` when
    /// given (it wins over one in the URL). The error never repeats the URL.
    pub fn new(url: &str, password: Option<String>) -> Result<Self, &'static str> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err("must start with redis:// or rediss://");
        }
        let target = Self {
            url: url.to_owned(),
            password,
        };
        target
            .connection_info()
            .map_err(|_| "is not a Redis URL (redis://[user:password@]host[:port][/db])")?;
        Ok(target)
    }

    fn connection_info(&self) -> redis::RedisResult<redis::ConnectionInfo> {
        let mut info = self.url.as_str().into_connection_info()?;
        if let Some(password) = &self.password {
            info.redis.password = Some(password.clone());
        }
        Ok(info)
    }
}

/// The shared store's connection, and whether it answers.
pub struct SharedStore {
    /// None until the first connection is made.
    connection: ArcSwapOption<ConnectionManager>,
    /// True once the first connection is made.
    connected: tokio::sync::watch::Receiver<bool>,
    up: AtomicBool,
    gauge: Gauge,
    went: LogThrottle,
    came: LogThrottle,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("up", &self.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SharedStore {
    /// The store at `target`; the connection is made in the background (a task of the current
    /// runtime).
    #[must_use]
    pub fn connect(target: RedisTarget) -> Arc<Self> {
        describe_gauge!(
            BACKEND_UP,
            "1 when the shared store (Redis: --quota, card-testing detection across replicas) answered its last command, else 0."
        );
        let (made, connected) = tokio::sync::watch::channel(false);
        let store = Arc::new(Self {
            connection: ArcSwapOption::empty(),
            connected,
            up: AtomicBool::new(false),
            gauge: metrics::gauge!(BACKEND_UP),
            went: LogThrottle::new(LOG_INTERVAL),
            came: LogThrottle::new(LOG_INTERVAL),
        });
        store.gauge.set(0.0);
        tokio::spawn(connect(target, Arc::clone(&store), made));
        store
    }

    /// Waits, at most `within`, for the first connection; whether it was made.
    pub async fn ready(&self, within: Duration) -> bool {
        let mut connected = self.connected.clone();
        matches!(
            tokio::time::timeout(within, connected.wait_for(|made| *made)).await,
            Ok(Ok(_))
        )
    }

    /// The connection (a cheap handle on the one multiplexed connection), once made.
    pub(crate) fn connection(&self) -> Option<ConnectionManager> {
        self.connection.load().as_deref().cloned()
    }

    /// Redis answered a command.
    pub(crate) fn answered(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            self.gauge.set(1.0);
            if self.came.allow().is_some() {
                tracing::info!("the shared store (Redis) answers");
            }
        }
    }

    /// Redis did not answer a command, or answered with an error.
    pub(crate) fn failed(&self, reason: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            self.gauge.set(0.0);
            if self.went.allow().is_some() {
                tracing::warn!(reason, "the shared store (Redis) does not answer");
            }
        }
    }
}

/// The hex SHA-256 of `kind`, a NUL and `value`: what a key holds in place of a client's
/// identity or a subject, so that none is stored in Redis and equal values of different kinds
/// differ.
pub(crate) fn hashed(kind: &str, value: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(kind.as_bytes());
    hash.update([0]);
    hash.update(value);
    crate::hex::hex(&hash.finalize())
}

/// Connects to Redis, with backoff up to [`MAX_RECONNECT_DELAY`] until it answers; from then on
/// the connection manager reconnects by itself when the connection is lost.
async fn connect(
    target: RedisTarget,
    store: Arc<SharedStore>,
    made: tokio::sync::watch::Sender<bool>,
) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(MAX_RECONNECT_DELAY)
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_number_of_retries(3)
        .set_max_delay(u64::try_from(MAX_RECONNECT_DELAY.as_millis()).unwrap_or(u64::MAX));
    let mut delay = Duration::from_millis(50);
    loop {
        let attempt = match target.connection_info().and_then(redis::Client::open) {
            Ok(client) => ConnectionManager::new_with_config(client, config.clone()).await,
            Err(error) => Err(error),
        };
        match attempt {
            Ok(manager) => {
                store.connection.store(Some(Arc::new(manager)));
                store.answered();
                made.send_replace(true);
                return;
            }
            Err(error) => store.failed(&error.to_string()),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_a_redis_url_and_never_shows_it() {
        let target = RedisTarget::new("redis://:hunter2@127.0.0.1:6379/0", None).unwrap();
        assert!(!format!("{target:?}").contains("hunter2"));
        let info = RedisTarget::new("redis://127.0.0.1", Some("s3cret".into()))
            .unwrap()
            .connection_info()
            .unwrap();
        assert_eq!(info.redis.password.as_deref(), Some("s3cret"));
        assert!(RedisTarget::new("rediss://cache.internal:6380", None).is_ok());
        for bad in ["http://127.0.0.1", "127.0.0.1:6379", "redis://"] {
            assert!(RedisTarget::new(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashes_differ_by_kind_and_hide_the_value() {
        let subject = hashed("subject", b"shopper-42");
        assert_eq!(subject.len(), 64);
        assert!(subject.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(subject, hashed("client", b"shopper-42"));
        assert_eq!(subject, hashed("subject", b"shopper-42"));
    }
}
