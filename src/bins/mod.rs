//! BIN data: records, the table formats they are read from, the in-memory index that answers
//! LookupBin by longest prefix, loading tables into it, and what the index and the IIN ranges
//! together say about one number.

pub mod facts;
pub mod format;
pub mod index;
pub mod load;
pub mod manifest;
mod metrics;
pub mod read;
pub mod record;
pub mod regime;
pub mod regulation;
pub mod store;

pub use self::metrics::{record_loaded, record_watching};
pub use facts::{CardFacts, Examined, examine, validate_number};
pub use format::Format;
pub use index::{BinIndex, BinMatch, IndexBuilder, Prefix};
pub use load::{DataSource, LoadError, LoadOptions, Loaded, SourceReport, fingerprint, load};
pub use read::FileProblem;
pub use record::{BinRecord, CardType, Country, Issuer};
pub use regime::{Regime, RegimeSet, Regulation, Regulations};
pub use store::{BinStore, ReloadError, ReloadOutcome, ReloadTrigger};

/// `value` in decimal, zero-padded on the left to `width` digits (BINs and country codes keep
/// their leading zeros). Written digit by digit: `format!` with a width was a visible part of
/// building a LookupBin answer.
fn zero_padded(mut value: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    String::from_utf8(digits).unwrap_or_default()
}
