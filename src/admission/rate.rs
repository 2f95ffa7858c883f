//! A rate as operators write it: `N/s`, `N/m`, `N/h` or `N/d`, kept exact (90 a minute is 90 a
//! minute, not 2 a second) and turned into a token bucket that refills one call every
//! `unit / N` and holds at most N.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;

/// The unit of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Second,
    Minute,
    Hour,
    Day,
}

impl RateUnit {
    const fn seconds(self) -> u64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    const fn letter(self) -> &'static str {
        match self {
            Self::Second => "s",
            Self::Minute => "m",
            Self::Hour => "h",
            Self::Day => "d",
        }
    }
}

/// At most `count` calls a `unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub unit: RateUnit,
}

/// Text that is not `N/s`, `N/m`, `N/h` or `N/d` with N from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a rate is N/s, N/m, N/h or N/d with N a whole number from 1 (20/h)")]
pub struct RateError;

impl Rate {
    /// The length of the rate's unit.
    #[must_use]
    pub const fn unit_length(self) -> Duration {
        Duration::from_secs(self.unit.seconds())
    }

    /// The token bucket of the rate: a call back every `unit / count`, at most `count` held
    /// (a client that has been quiet may spend a whole unit's calls at once).
    ///
    /// # Panics
    /// Never: the interval is kept at a nanosecond at least, which governor accepts.
    #[must_use]
    pub fn bucket(self) -> Quota {
        let interval = self.unit_length() / self.count.get();
        Quota::with_period(interval.max(Duration::from_nanos(1)))
            .expect("the interval is at least a nanosecond")
            .allow_burst(self.count)
    }
}

impl std::str::FromStr for Rate {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (count, unit) = text.split_once('/').ok_or(RateError)?;
        let count = count.trim().parse::<u32>().map_err(|_| RateError)?;
        let unit = match unit.trim() {
            "s" => RateUnit::Second,
            "m" => RateUnit::Minute,
            "h" => RateUnit::Hour,
            "d" => RateUnit::Day,
            _ => return Err(RateError),
        };
        Ok(Self {
            count: NonZeroU32::new(count).ok_or(RateError)?,
            unit,
        })
    }
}

impl fmt::Display for Rate {
    /// `20/h`: the form [`Rate`] parses from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.unit.letter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        text.parse().unwrap()
    }

    #[test]
    fn every_unit_parses_and_prints_back() {
        for text in ["5000/s", "90/m", "20/h", "1/d"] {
            assert_eq!(rate(text).to_string(), text);
        }
        assert_eq!(rate(" 20 / h ").to_string(), "20/h");
        for bad in [
            "20",
            "0/h",
            "-1/s",
            "20/w",
            "20/hour",
            "x/s",
            "/s",
            "5000000000/s",
        ] {
            assert_eq!(bad.parse::<Rate>(), Err(RateError), "{bad}");
        }
    }

    #[test]
    fn a_bucket_refills_at_the_exact_rate() {
        // 90 a minute: one call every 666.7 ms, not 2 a second as rounding up would give.
        let quota = rate("90/m").bucket();
        assert_eq!(quota.burst_size().get(), 90);
        assert_eq!(quota.replenish_interval(), Duration::from_secs(60) / 90);
        // 20 an hour: one every three minutes, twenty held.
        let quota = rate("20/h").bucket();
        assert_eq!(quota.replenish_interval(), Duration::from_secs(180));
        assert_eq!(quota.burst_size().get(), 20);
    }

    #[test]
    fn a_bucket_holds_the_units_calls_and_no_more() {
        use governor::clock::FakeRelativeClock;
        let clock = FakeRelativeClock::default();
        let limiter = governor::RateLimiter::direct_with_clock(rate("3/h").bucket(), clock.clone());
        assert!((0..3).all(|_| limiter.check().is_ok()));
        assert!(limiter.check().is_err());
        clock.advance(Duration::from_secs(1_199));
        assert!(limiter.check().is_err());
        clock.advance(Duration::from_secs(1));
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
    }
}
