//! The time limits of an Inspect stream: how long the server waits for the client's next
//! request (`--inspect-idle-timeout`) and how long the stream may live (`--inspect-max-life`).
//! Either ends the stream with its status, which tonic sends as the stream's last answer; the
//! stream's concurrency place is freed once that has gone out.
//!
//! The idle clock runs only while the server waits for a request: it starts when the server
//! asks for the next one, after the last answer was handed to HTTP/2, so a client slow to read
//! its answers is not idle. The life is checked before each request is read, so the answer in
//! progress always goes out first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::time::{Instant, Sleep};
use tonic::Status;

use crate::api::RequestError;

/// How long an Inspect stream may wait for a request, and live.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_life: Duration,
}

pin_project_lite::pin_project! {
    /// A client's requests, ended by the server when the client is idle too long or the stream
    /// has lived its life.
    pub(crate) struct Limited<S> {
        #[pin]
        requests: S,
        #[pin]
        idle: Sleep,
        #[pin]
        life: Sleep,
        limits: StreamLimits,
        // Whether the server is waiting for the next request (the idle clock is running).
        waiting: bool,
        // Whether a limit has ended the stream.
        ended: bool,
    }
}

impl<S> Limited<S> {
    /// `requests`, from now on within `limits`.
    pub(crate) fn new(requests: S, limits: StreamLimits) -> Self {
        let now = Instant::now();
        Self {
            requests,
            idle: tokio::time::sleep_until(now + limits.idle_timeout),
            life: tokio::time::sleep_until(now + limits.max_life),
            limits,
            waiting: true,
            ended: false,
        }
    }
}

impl<S, T> Stream for Limited<S>
where
    S: Stream<Item = Result<T, Status>>,
{
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        let limit = if this.life.as_mut().poll(cx).is_ready() {
            RequestError::InspectMaxLife {
                max_life: this.limits.max_life,
            }
        } else {
            if !*this.waiting {
                *this.waiting = true;
                let deadline = Instant::now() + this.limits.idle_timeout;
                this.idle.as_mut().reset(deadline);
            }
            if let Poll::Ready(request) = this.requests.poll_next(cx) {
                *this.waiting = false;
                return Poll::Ready(request);
            }
            std::task::ready!(this.idle.poll(cx));
            RequestError::InspectIdle {
                timeout: this.limits.idle_timeout,
            }
        };
        *this.ended = true;
        Poll::Ready(Some(Err(Status::from(limit))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tonic::Code;

    /// Short limits on the real clock; the tests assert what ends a stream, never how soon.
    fn limits(idle_ms: u64, life_ms: u64) -> StreamLimits {
        StreamLimits {
            idle_timeout: Duration::from_millis(idle_ms),
            max_life: Duration::from_millis(life_ms),
        }
    }

    /// The next item, within a bound that only keeps a broken stream from hanging the test.
    async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the stream answers")
    }

    #[tokio::test]
    async fn a_client_that_sends_nothing_is_ended_after_the_idle_timeout() {
        let requests = futures_util::stream::pending::<Result<(), Status>>();
        let mut limited = Box::pin(Limited::new(requests, limits(50, 60_000)));
        let status = next(&mut limited).await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(
            status.message(),
            "Inspect stream idle for 50ms; open a new stream when there is work"
        );
        assert!(
            next(&mut limited).await.is_none(),
            "the status is the last item"
        );
    }

    #[tokio::test]
    async fn waiting_for_the_client_to_read_is_not_idleness() {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<Result<u32, Status>>();
        let requests = tokio_stream::wrappers::UnboundedReceiverStream::new(receiver);
        let mut limited = Box::pin(Limited::new(requests, limits(50, 60_000)));
        sender.send(Ok(1)).unwrap();
        sender.send(Ok(2)).unwrap();
        assert_eq!(next(&mut limited).await.unwrap().unwrap(), 1);
        // The client reads the first answer for longer than the idle timeout, its next request
        // waiting meanwhile: the server is not waiting for it, so the stream goes on.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(next(&mut limited).await.unwrap().unwrap(), 2);
    }

    #[tokio::test]
    async fn a_busy_stream_is_ended_at_its_maximum_life() {
        let requests = futures_util::stream::iter(0..).then(|n| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, Status>(n)
        });
        let mut limited = Box::pin(Limited::new(requests, limits(60_000, 200)));
        let mut answered = 0;
        let status = loop {
            match next(&mut limited).await.unwrap() {
                Ok(_) => answered += 1,
                Err(status) => break status,
            }
            assert!(answered < 10_000, "the stream was not ended");
        };
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "Inspect stream reached its maximum life of 200ms; open a new stream and send the requests not yet answered"
        );
        assert!(next(&mut limited).await.is_none());
    }
}
