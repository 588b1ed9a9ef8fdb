//! The request body timeout, with a timer only for a body that is late.
//!
//! tower-http's `RequestBodyTimeoutLayer` starts a tokio timer on every
//! read of every body, before looking whether the bytes are already there.
//! A timer due before the runtime's next wake-up makes tokio wake its
//! driver (an `eventfd` write and a context switch), so at 16 connections
//! that cost about two system calls and a switch per request. Almost every
//! body arrives with its headers: here the body is read first, and a timer
//! starts only when the read has to wait.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

/// The error a body gives when its next bytes are more than the timeout late.
#[derive(Debug)]
pub struct BodyTimedOut;

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl Error for BodyTimedOut {}

/// Whether `error` or one of its sources is a [`BodyTimedOut`].
pub fn is_body_timeout(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A body that fails with [`BodyTimedOut`] when a read waits longer than
/// `timeout` (each wait is timed afresh, as tower-http's does).
struct LazyTimeoutBody {
    inner: Body,
    timeout: Duration,
    /// Armed only while a read is waiting.
    late: Option<Pin<Box<Sleep>>>,
}

impl http_body::Body for LazyTimeoutBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.late = None;
            return Poll::Ready(frame);
        }
        let timeout = this.timeout;
        let late = this
            .late
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match late.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `body`, failing with [`BodyTimedOut`] when a read waits more than
/// `timeout` for its next bytes.
pub fn lazy(body: Body, timeout: Duration) -> Body {
    Body::new(LazyTimeoutBody {
        inner: body,
        timeout,
        late: None,
    })
}
