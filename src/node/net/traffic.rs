//! Bytes on the wire: a TCP stream wrapper that counts what it reads and writes into two
//! counters shared by every connection (exported as `cairn_p2p_{received,sent}_bytes_total`).
//!
//! It wraps the raw TCP stream, under noise and yamux, so the counts are what crosses the
//! network, framing and encryption included. (libp2p's own bandwidth metrics register into
//! another version of `prometheus-client` than the node's registry uses.)
use libp2p::futures::{AsyncRead, AsyncWrite};
use prometheus_client::metrics::counter::Counter;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The node's traffic counters.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    /// Bytes read from peers.
    pub received: Counter,
    /// Bytes written to peers.
    pub sent: Counter,
}

/// A stream that adds every byte it moves to [`Traffic`].
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    traffic: Traffic,
}

impl<S> Counted<S> {
    /// Counts `inner`'s bytes into `traffic`.
    pub fn new(inner: S, traffic: Traffic) -> Counted<S> {
        Counted { inner, traffic }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(read)) = poll {
            self.traffic.received.inc_by(read as u64);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = poll {
            self.traffic.sent.inc_by(written as u64);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::futures::io::Cursor;
    use libp2p::futures::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn reads_and_writes_are_counted() {
        let traffic = Traffic::default();
        let mut stream = Counted::new(Cursor::new(vec![0u8; 10]), traffic.clone());
        libp2p::futures::executor::block_on(async {
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&[1, 2, 3]).await.unwrap();
        });
        assert_eq!(traffic.received.get(), 4);
        assert_eq!(traffic.sent.get(), 3);
    }
}
