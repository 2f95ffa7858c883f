//! BIN data: records, the table formats they are read from, the in-memory index that answers
//! LookupBin by longest prefix, loading tables into it, and what the index and the IIN ranges
//! together say about one number.

pub mod facts;
pub mod format;
pub mod index;
pub mod load;
pub mod record;
pub mod store;

pub use facts::{CardFacts, validate_number};
pub use format::Format;
pub use index::{BinIndex, BinMatch, IndexBuilder, Prefix};
pub use load::{DataSource, LoadError, LoadOptions, Loaded, SourceReport, fingerprint, load};
pub use record::{BinRecord, CardType, Country, Issuer};
pub use store::{BinStore, ReloadOutcome, ReloadTrigger};
