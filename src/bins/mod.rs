//! BIN data: records, the file formats they come in, and the in-memory index that answers
//! LookupBin by longest prefix.

pub mod bin_list_data;
pub mod index;
pub mod record;
pub mod source;

pub use index::{BinIndex, BinMatch, IndexBuilder};
pub use record::{BinRecord, CardType, Country, Issuer};
pub use source::{DataSource, LoadError, load_index};
