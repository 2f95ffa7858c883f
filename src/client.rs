//! What a Rust (tonic) client of the service needs beyond the generated stub in [`crate::proto`]:
//! sending again a call that never left the client.
//!
//! A server closes every connection at its age (`--max-connection-age`) with GOAWAY, and the
//! client moves to a new one. gRPC's C-core (Python, C++), Go and Java clients resend a call
//! that had not been written to the connection when it closed ("transparent retry"). tonic
//! does not: a call handed to the connection in the instant it closes fails with CANCELLED,
//! "operation was canceled: connection closed", although the server never saw it. Under steady
//! traffic that is about one call in a connection's age. [`never_sent`] recognises that
//! failure from the error hyper gives (a request "dropped before ever being processed"), and
//! [`resend_unsent`] sends such a call again; the CLI's `--server` calls go through it.

use std::error::Error;

use tonic::Status;

/// How many times [`resend_unsent`] sends a call again. One is enough: the failure comes from
/// a connection that has closed, and the client dials a new one for the next call. The second
/// covers a new connection that closes as the call reaches it.
pub const RESENDS: usize = 2;

/// Whether `status` is a call that failed before any of it was written to a connection, so
/// that sending it again cannot make the server see it twice.
pub fn never_sent(status: &Status) -> bool {
    let mut next: Option<&(dyn Error + 'static)> = Error::source(status);
    while let Some(error) = next {
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// The answer of `call`, made again (at most [`RESENDS`] more times) while it fails without
/// having been sent ([`never_sent`]). Any other answer, OK or not, is returned as it is.
pub async fn resend_unsent<T, Call>(mut call: impl FnMut() -> Call) -> Result<T, Status>
where
    Call: Future<Output = Result<T, Status>>,
{
    let mut resends = 0;
    loop {
        match call().await {
            Err(status) if resends < RESENDS && never_sent(&status) => resends += 1,
            answer => return answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::Empty;
    use hyper::body::Bytes;
    use tonic::Code;

    use super::*;

    /// The error hyper gives a request that was queued on a connection that then ended: its
    /// HTTP/2 connection task is dropped before it ever polled the queue.
    async fn dropped_before_sent() -> hyper::Error {
        let (io, _peer) = tokio::io::duplex(1 << 16);
        let (mut send, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(io),
        )
        .await
        .unwrap();
        let request =
            hyper::Request::post("http://card-lookup/cardlookup.v1.CardLookupService/Validate")
                .body(Empty::<Bytes>::new())
                .unwrap();
        let answer = send.send_request(request);
        drop(connection);
        answer.await.unwrap_err()
    }

    /// A status as tonic's channel makes it from a transport error: the error as its source.
    fn from_transport(error: hyper::Error) -> Status {
        let mut status = Status::cancelled("operation was canceled");
        status.set_source(std::sync::Arc::new(error));
        status
    }

    #[tokio::test]
    async fn a_request_dropped_before_its_connection_took_it_was_never_sent() {
        let error = dropped_before_sent().await;
        assert!(error.is_canceled(), "{error}");
        assert!(never_sent(&from_transport(error)));
    }

    #[test]
    fn answers_from_a_server_were_sent() {
        for status in [
            Status::cancelled("the caller went away"),
            Status::unavailable("shutting down"),
            Status::resource_exhausted("over quota"),
            Status::new(Code::Unknown, "connection reset"),
        ] {
            assert!(!never_sent(&status), "{status:?}");
        }
    }

    #[tokio::test]
    async fn an_unsent_call_is_sent_again_and_others_are_not() {
        let unsent = from_transport(dropped_before_sent().await);
        let calls = AtomicUsize::new(0);
        let answer = resend_unsent(|| {
            let call = calls.fetch_add(1, Ordering::Relaxed);
            let unsent = unsent.clone();
            async move { if call == 0 { Err(unsent) } else { Ok(call) } }
        })
        .await;
        assert_eq!(answer.unwrap(), 1);

        calls.store(0, Ordering::Relaxed);
        let answer: Result<(), Status> = resend_unsent(|| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(Status::unavailable("down")) }
        })
        .await;
        assert_eq!(answer.unwrap_err().code(), Code::Unavailable);
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1,
            "a sent call is not sent again"
        );

        calls.store(0, Ordering::Relaxed);
        let answer: Result<(), Status> = resend_unsent(|| {
            calls.fetch_add(1, Ordering::Relaxed);
            let unsent = unsent.clone();
            async move { Err(unsent) }
        })
        .await;
        assert!(never_sent(&answer.unwrap_err()));
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1 + RESENDS,
            "resent at most RESENDS times"
        );
    }
}
