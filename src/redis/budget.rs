//! A byte budget under the `redis` crate's connections.
//!
//! Why this exists: the crate buffers a reply until it is complete, however
//! large it claims to be. A probed address may be anything (an operator's typo
//! for add-server, a hung or hostile server), and one that answers a 512 MB bulk
//! header and then streams, or an endless array, would make topom buffer all of
//! it. The crate takes any `AsyncRead + AsyncWrite` as its stream, so this
//! wrapper counts what the server sends per exchange and fails the read once the
//! budget is spent; the crate then reports an I/O error and the connection is
//! dropped. It also records that the peer closed the stream, which lets a pool
//! skip a dead idle connection without a round trip.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the stream saw, shared with the connection that owns the wrapper.
#[derive(Debug)]
pub(crate) struct StreamState {
    /// Bytes the server may still send in the current exchange.
    left: AtomicUsize,
    /// Bytes received since the budget was last reset.
    received: AtomicUsize,
    /// The budget ran out: the read failed on purpose.
    exceeded: AtomicBool,
    /// The peer closed the stream, or reading failed.
    closed: AtomicBool,
    /// The budget of one exchange.
    budget: usize,
}

impl StreamState {
    pub(crate) fn new(budget: usize) -> Arc<StreamState> {
        Arc::new(StreamState {
            left: AtomicUsize::new(budget),
            received: AtomicUsize::new(0),
            exceeded: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            budget,
        })
    }

    /// Starts an exchange: the server may send `budget` bytes again.
    pub(crate) fn reset(&self) {
        self.left.store(self.budget, Ordering::Relaxed);
        self.received.store(0, Ordering::Relaxed);
    }

    /// The budget of one exchange, in bytes.
    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// Whether a read failed because the budget ran out.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// Whether the peer closed the stream (or it failed).
    pub(crate) fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Whether any byte arrived since the last [`StreamState::reset`].
    pub(crate) fn received_any(&self) -> bool {
        self.received.load(Ordering::Relaxed) > 0
    }
}

/// `inner` with reads bounded by a [`StreamState`]'s budget.
#[derive(Debug)]
pub(crate) struct Budgeted<S> {
    inner: S,
    state: Arc<StreamState>,
}

impl<S> Budgeted<S> {
    pub(crate) fn new(inner: S, state: Arc<StreamState>) -> Budgeted<S> {
        Budgeted { inner, state }
    }

    /// The wrapped stream (to ask an idle socket whether the peer left).
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Budgeted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let state = &this.state;
        if state.exceeded() {
            return Poll::Ready(Err(too_large(state.budget)));
        }
        let before = buf.filled().len();
        let asked = buf.remaining();
        let r = ready!(Pin::new(&mut this.inner).poll_read(cx, buf));
        if r.is_err() {
            state.closed.store(true, Ordering::Relaxed);
            return Poll::Ready(r);
        }
        let n = buf.filled().len() - before;
        if n == 0 && asked > 0 {
            state.closed.store(true, Ordering::Relaxed);
            return Poll::Ready(Ok(()));
        }
        state.received.fetch_add(n, Ordering::Relaxed);
        let left = state.left.load(Ordering::Relaxed);
        if n > left {
            // Hand nothing of this read to the parser: it is past the limit.
            buf.set_filled(before);
            state.exceeded.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(too_large(state.budget)));
        }
        state.left.store(left - n, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budgeted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

fn too_large(budget: usize) -> io::Error {
    io::Error::other(format!("reply exceeds the limit of {budget} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_within_the_budget_and_fails_past_it() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let state = StreamState::new(10);
        let mut r = Budgeted::new(rx, state.clone());
        tx.write_all(b"0123456789").await.unwrap();
        let mut buf = [0u8; 10];
        r.read_exact(&mut buf).await.unwrap();
        assert!(state.received_any());
        tx.write_all(b"x").await.unwrap();
        let e = r.read(&mut buf).await.unwrap_err();
        assert!(e.to_string().contains("exceeds the limit of 10"), "{e}");
        assert!(state.exceeded());
    }

    #[tokio::test]
    async fn a_reset_renews_the_budget_and_eof_is_seen() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let state = StreamState::new(4);
        let mut r = Budgeted::new(rx, state.clone());
        let mut buf = [0u8; 4];
        for _ in 0..3 {
            tx.write_all(b"abcd").await.unwrap();
            r.read_exact(&mut buf).await.unwrap();
            state.reset();
        }
        assert!(!state.closed());
        drop(tx);
        assert_eq!(r.read(&mut buf).await.unwrap(), 0);
        assert!(state.closed());
    }
}
