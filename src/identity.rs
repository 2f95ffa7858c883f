//! Who a call comes from. Admission works it out (certificate, `x-client-id` header or peer
//! address) and puts it into the request's extensions; the request layer, card-testing
//! detection and the call's log line read it. A leaf module, so that each of them can name the
//! type without importing the others.

use std::sync::Arc;

/// Who a call comes from: the mTLS certificate's common name (else subject), else the
/// `x-client-id` header, else the peer's IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub id: Arc<str>,
    /// The rate-limit class: a configured one, or `default`.
    pub class: Arc<str>,
}
