//! A bounded copy of the first bytes a server sends during the handshake.
//!
//! rustls reports a malformed handshake message as a bare `InvalidMessage` (e.g.
//! `MessageTooShort`) without saying which message. To tell "not TLS at all" from "TLS, but a
//! broken Certificate message" the handshake code parses the cleartext part of the server's
//! flight itself ([`super::legacy::parse_server_flight`]) — only on that failure path. The tap
//! keeps at most [`TAP_CAP`] bytes and stops copying once the handshake is over.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes kept: a Certificate message rustls accepts (64 KiB) plus the ServerHello and
/// record headers.
pub const TAP_CAP: usize = 80 * 1024;

#[derive(Debug, Default)]
struct Tapped {
    bytes: Vec<u8>,
    stopped: bool,
}

/// Shared handle on what the tap saw.
#[derive(Debug, Clone, Default)]
pub struct TapHandle(Arc<Mutex<Tapped>>);

impl TapHandle {
    /// Stop copying and free what was kept.
    pub fn stop(&self) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        t.stopped = true;
        t.bytes = Vec::new();
    }

    /// A copy of the bytes kept so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bytes
            .clone()
    }
}

/// An `AsyncRead + AsyncWrite` wrapper that copies what it reads into its [`TapHandle`].
#[derive(Debug)]
pub struct Tap<S> {
    inner: S,
    handle: TapHandle,
}

impl<S> Tap<S> {
    pub fn new(inner: S) -> (Self, TapHandle) {
        let handle = TapHandle::default();
        (
            Self {
                inner,
                handle: handle.clone(),
            },
            handle,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let fresh = &buf.filled()[before..];
            if !fresh.is_empty() {
                let mut t = this.handle.0.lock().unwrap_or_else(|p| p.into_inner());
                if !t.stopped {
                    let room = TAP_CAP.saturating_sub(t.bytes.len());
                    t.bytes.extend_from_slice(&fresh[..fresh.len().min(room)]);
                }
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
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

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn keeps_a_bounded_copy_until_stopped() {
        let (mut a, b) = tokio::io::duplex(256 * 1024);
        let (mut tap, handle) = Tap::new(b);
        let payload = vec![7u8; TAP_CAP + 1000];
        a.write_all(&payload).await.unwrap();
        let mut got = vec![0u8; payload.len()];
        tap.read_exact(&mut got).await.unwrap();
        assert_eq!(got, payload);
        assert_eq!(handle.bytes().len(), TAP_CAP);
        handle.stop();
        assert!(handle.bytes().is_empty());
        a.write_all(b"more").await.unwrap();
        let mut more = [0u8; 4];
        tap.read_exact(&mut more).await.unwrap();
        assert!(handle.bytes().is_empty());
    }
}
