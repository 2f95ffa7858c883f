//! Who makes a call, besides its message: what card-testing detection and the audit trail
//! need to know of it. The front ends fill it in (`grpc::observe`, for gRPC and HTTP alike).

use tonic::metadata::{Ascii, MetadataValue};

use crate::identity::ClientIdentity;
use crate::request_id::RequestId;

/// A call's caller and ids. `Call::default()` is a call from nobody in particular (the
/// command line, offline).
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// Who the call comes from (admission works it out); none offline.
    pub client: Option<ClientIdentity>,
    /// The call's request id: the caller's, or one the service made.
    pub request_id: Option<RequestId>,
    /// The `x-cardlookup-subject` metadata (the end user the call is about), as sent.
    pub subject: Option<MetadataValue<Ascii>>,
}
