//! Interchange-fee regulation regimes as a BIN record holds them: the regimes, a set of them
//! (the data's `regulated` column) and the regulations that apply with their reasons. What
//! decides them from a record's facts is [`super::regulation`]; this module is a leaf, so that
//! records can hold its types.

use std::fmt;

/// A regulation regime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Regime {
    EuIfr,
    UkIfr,
    UsDurbin,
}

impl Regime {
    pub const ALL: [Self; 3] = [Self::EuIfr, Self::UkIfr, Self::UsDurbin];

    /// The name used in data files: `eu-ifr`, `uk-ifr`, `us-durbin`.
    #[must_use]
    pub const fn slug(self) -> &'static str {
        match self {
            Self::EuIfr => "eu-ifr",
            Self::UkIfr => "uk-ifr",
            Self::UsDurbin => "us-durbin",
        }
    }

    /// The name reasons start with.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::EuIfr => "EU IFR",
            Self::UkIfr => "UK IFR",
            Self::UsDurbin => "US Durbin",
        }
    }

    /// The reason given when the data's `regulated` column names the regime.
    pub(super) const fn named_by_data(self) -> &'static str {
        match self {
            Self::EuIfr => {
                "EU IFR: named by the BIN data (consumer debit and prepaid interchange capped at \
                 0.2%, credit at 0.3%)"
            }
            Self::UkIfr => {
                "UK IFR: named by the BIN data (consumer debit and prepaid interchange capped at \
                 0.2%, credit at 0.3%)"
            }
            Self::UsDurbin => {
                "US Durbin: named by the BIN data (debit interchange capped by Regulation II for \
                 issuers with $10 billion or more in assets)"
            }
        }
    }
}

/// A set of regimes: what the data's `regulated` column says (`eu-ifr;us-durbin`, or `none`
/// for the empty set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RegimeSet(u8);

/// A `regulated` value that is not `none` or a `;`-separated list of regimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("regulated must be `none` or regimes separated by `;`: eu-ifr, uk-ifr, us-durbin")]
pub struct RegimeSetError;

impl RegimeSet {
    pub fn insert(&mut self, regime: Regime) {
        self.0 |= 1 << regime as u8;
    }

    #[must_use]
    pub const fn contains(self, regime: Regime) -> bool {
        self.0 & (1 << regime as u8) != 0
    }

    /// The regimes, in [`Regime::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Regime> {
        Regime::ALL
            .into_iter()
            .filter(move |&regime| self.contains(regime))
    }

    /// Parses `none`, or regimes by their slugs separated by `;` (any case).
    ///
    /// # Errors
    /// [`RegimeSetError`] for anything else.
    pub fn parse(text: &str) -> Result<Self, RegimeSetError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("none") {
            return Ok(Self::default());
        }
        let mut set = Self::default();
        for part in text.split(';').map(str::trim) {
            let regime = Regime::ALL
                .into_iter()
                .find(|regime| regime.slug().eq_ignore_ascii_case(part))
                .ok_or(RegimeSetError)?;
            set.insert(regime);
        }
        Ok(set)
    }
}

impl fmt::Display for RegimeSet {
    /// The form [`RegimeSet::parse`] reads: `eu-ifr;us-durbin`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let slugs: Vec<&str> = self.iter().map(Regime::slug).collect();
        f.write_str(&slugs.join(";"))
    }
}

/// One regime that applies, with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Regulation {
    pub regime: Regime,
    pub reason: &'static str,
}

/// The regimes that apply to a record's cards, in [`Regime::ALL`]'s order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Regulations(pub(super) [Option<Regulation>; 3]);

impl Regulations {
    pub fn iter(&self) -> impl Iterator<Item = Regulation> + '_ {
        self.0.iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regime_sets_parse_and_print() {
        let set = RegimeSet::parse(" US-Durbin ; eu-ifr").unwrap();
        assert_eq!(set.to_string(), "eu-ifr;us-durbin");
        assert_eq!(RegimeSet::parse("NONE").unwrap().to_string(), "none");
        for bad in ["", "ifr", "eu-ifr;", "eu-ifr,us-durbin"] {
            assert_eq!(RegimeSet::parse(bad), Err(RegimeSetError), "{bad:?}");
        }
    }
}
