//! The one place where errors become a `tonic::Status`: the request layer's
//! [`RequestError`] and admission's [`Refusal`].

use tonic::Status;
use tonic::metadata::MetadataValue;
use tonic_types::{ErrorDetails, StatusExt};

use crate::admission::Refusal;
use crate::api::RequestError;

impl From<RequestError> for Status {
    fn from(error: RequestError) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        let Some(retry_after) = refusal.retry_after() else {
            return Self::new(refusal.code(), refusal.to_string());
        };
        // google.rpc.RetryInfo, the standard retry information of the status details.
        let mut status = Self::with_error_details(
            refusal.code(),
            refusal.to_string(),
            ErrorDetails::with_retry_info(Some(retry_after)),
        );
        // gRPC clients with a retry policy honour this pushback.
        if let Ok(value) = MetadataValue::try_from(retry_after.as_millis().to_string()) {
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", value);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::Pan;
    use tonic::Code;

    #[test]
    fn messages_name_the_problem_not_the_number() {
        for input in ["4111x111111111111", "41111111111111111111111", ""] {
            let status = Status::from(RequestError::from(Pan::parse(input).unwrap_err()));
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(
                status.message().starts_with("number: "),
                "{}",
                status.message()
            );
            assert!(!status.message().contains("111"), "{}", status.message());
        }
    }

    #[test]
    fn a_rate_limited_call_is_told_when_to_retry() {
        let status = Status::from(Refusal::RateLimited {
            class: "default".into(),
            rate: "20/s".parse().unwrap(),
            retry_after: std::time::Duration::from_millis(40),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.metadata().get("grpc-retry-pushback-ms").unwrap(),
            "40"
        );
        assert!(status.message().contains("retry after 40 ms"), "{status:?}");
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(
            retry.retry_delay,
            Some(std::time::Duration::from_millis(40))
        );
    }

    #[test]
    fn a_call_over_quota_is_told_the_quota_and_when_it_resets() {
        let status = Status::from(Refusal::QuotaExceeded {
            quota: "per-shopper".into(),
            rate: "20/h".parse().unwrap(),
            retry_after: std::time::Duration::from_millis(179_001),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "quota `per-shopper` (20/h) exceeded; resets in 180 s"
        );
        assert_eq!(
            status.metadata().get("grpc-retry-pushback-ms").unwrap(),
            "179001"
        );
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(
            retry.retry_delay,
            Some(std::time::Duration::from_millis(179_001))
        );
        let closed = Status::from(Refusal::QuotaStoreUnavailable);
        assert_eq!(closed.code(), Code::ResourceExhausted);
        assert!(closed.message().contains("quota store is unavailable"));
        assert!(closed.get_details_retry_info().is_none());
    }
}
