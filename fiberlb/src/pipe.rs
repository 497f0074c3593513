//! Two-way byte copying between a client and a backend: half-close passed on, bytes counted as
//! they flow, and the pair closed after a stretch with no traffic either way.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::balancer::now_ms;

/// Per direction: large enough that bulk transfers take few system calls (tokio's default is
/// 8 KiB).
const COPY_BUFFER_BYTES: usize = 64 * 1024;

/// How a pipe ended.
#[derive(Debug)]
pub enum PipeEnd {
    /// Both sides closed.
    Closed,
    /// No traffic for the idle timeout.
    Idle,
    Failed(io::Error),
}

/// Copies until both directions are closed, one fails, or nothing moves for `idle`. Bytes
/// read from `client` count on `bytes_in`, from `backend` on `bytes_out`.
pub async fn pipe<C, B>(
    client: C,
    backend: B,
    idle: Duration,
    bytes_in: Counter,
    bytes_out: Counter,
) -> PipeEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Arc::new(AtomicU64::new(now_ms()));
    let mut client = Metered {
        inner: client,
        activity: activity.clone(),
        read: bytes_in,
    };
    let mut backend = Metered {
        inner: backend,
        activity: activity.clone(),
        read: bytes_out,
    };
    let copy = tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut backend,
        COPY_BUFFER_BYTES,
        COPY_BUFFER_BYTES,
    );
    tokio::pin!(copy);
    let idle_ms = idle.as_millis() as u64;
    loop {
        let quiet_for = now_ms().saturating_sub(activity.load(Ordering::Relaxed));
        if quiet_for >= idle_ms {
            return PipeEnd::Idle;
        }
        tokio::select! {
            copied = &mut copy => return match copied {
                Ok(_) => PipeEnd::Closed,
                Err(err) => PipeEnd::Failed(err),
            },
            () = tokio::time::sleep(Duration::from_millis(idle_ms - quiet_for)) => {}
        }
    }
}

/// A stream that counts what is read from it and notes when anything moved.
struct Metered<S> {
    inner: S,
    activity: Arc<AtomicU64>,
    read: Counter,
}

impl<S> Metered<S> {
    fn touch(&self) {
        self.activity.store(now_ms(), Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.read.inc_by(read as u64);
            self.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
