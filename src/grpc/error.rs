//! The one place where errors become a `tonic::Status`: the request layer's
//! [`RequestError`] and admission's [`Refusal`].

use tonic::Status;
use tonic::metadata::MetadataValue;

use crate::admission::Refusal;
use crate::api::RequestError;

impl From<RequestError> for Status {
    fn from(error: RequestError) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        let mut status = Self::new(refusal.code(), refusal.to_string());
        if let Refusal::RateLimited { retry_after, .. } = refusal {
            // gRPC clients with a retry policy honour this pushback.
            if let Ok(value) = MetadataValue::try_from(retry_after.as_millis().to_string()) {
                status
                    .metadata_mut()
                    .insert("grpc-retry-pushback-ms", value);
            }
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
    }
}
