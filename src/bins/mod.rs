//! BIN data: records, the table formats they are read from, the in-memory index that answers
//! LookupBin by longest prefix, and loading tables into it.

pub mod format;
pub mod index;
pub mod load;
pub mod record;
pub mod store;

pub use format::Format;
pub use index::{BinIndex, BinMatch, IndexBuilder, Prefix};
pub use load::{DataSource, LoadError, LoadOptions, Loaded, SourceReport, fingerprint, load};
pub use record::{BinRecord, CardType, Country, Issuer};
pub use store::{BinStore, ReloadOutcome, ReloadTrigger};
