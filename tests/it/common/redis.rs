//! A real `redis-server` for the tests of what replicas share through Redis (quotas,
//! card-testing detection), started by each test on a free port.
//!
//! Without `redis-server` on PATH a test says loudly that it was skipped, unless
//! CARDLOOKUP_REQUIRE_REDIS=1 (as .ci/run sets), which makes a missing server a failure.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` of the test's own, without persistence, killed when dropped.
pub struct RedisServer {
    port: u16,
    /// Its `requirepass`, if any.
    password: Option<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port, or `None` (said loudly) when there is no `redis-server`.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with_password(test, None)
    }

    /// [`RedisServer::start`], with a password clients must give.
    pub fn start_with_password(test: &str, password: Option<&str>) -> Option<Self> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            assert!(
                std::env::var("CARDLOOKUP_REQUIRE_REDIS").as_deref() != Ok("1"),
                "redis-server not found, and CARDLOOKUP_REQUIRE_REDIS=1"
            );
            // Straight to stderr: the test harness keeps `eprintln!` of a passing test to itself.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: redis-server not found ({test}); install it to run the tests of what replicas share through Redis"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            port,
            password: password.map(str::to_owned),
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// Its URL, without the password.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its URL with the password, for the test's own commands.
    pub fn admin_url(&self) -> String {
        let password = self.password.as_deref().unwrap_or_default();
        format!("redis://:{password}@127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on its port and waits until it answers PING.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(
                self.password
                    .iter()
                    .flat_map(|password| ["--requirepass", password.as_str()]),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        redis::Client::open(self.admin_url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection))
            .is_ok()
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A connection of the test's own, as the server's administrator.
    fn admin(&self) -> redis::Connection {
        redis::Client::open(self.admin_url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Every key the server holds.
    pub fn keys(&self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg("*")
            .query(&mut self.admin())
            .unwrap()
    }

    /// How many scripts the server has run by their digest (`EVALSHA`: the quota checks),
    /// leaving out the runs that failed (the first of each script: Redis does not know it
    /// yet, and the client loads it and runs it again).
    pub fn scripts_run(&self) -> u64 {
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.admin())
            .unwrap();
        // cmdstat_evalsha:calls=12,usec=...,failed_calls=1
        let Some(evalsha) = stats
            .lines()
            .find_map(|line| line.strip_prefix("cmdstat_evalsha:"))
        else {
            return 0;
        };
        let count = |name: &str| -> u64 {
            evalsha
                .split(',')
                .find_map(|field| field.strip_prefix(name))
                .map_or(0, |value| value.parse().unwrap())
        };
        count("calls=").saturating_sub(count("failed_calls="))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
