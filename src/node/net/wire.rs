//! The bytes of the sync protocol `/cairn/sync/1`: one request and one response per stream,
//! each a `u32` big-endian length followed by that many bytes of our codec
//! (`core::primitives::codec`). Owns the size limits and the libp2p `request_response::Codec`;
//! does not decide what a request means or how to answer it.
//!
//! ```text
//!   requester                                responder
//!     ── [len u32 BE][codec(SyncRequest)] ──►   len > MAX_REQUEST_BYTES: refused unread
//!     ◄── [len u32 BE][codec(SyncResponse)] ──   len > MAX_RESPONSE_BYTES: refused unread
//! ```
//!
//! A length over the limit is refused before anything is allocated, and bodies are read in
//! step with what actually arrives, so a peer cannot make us reserve memory it never sends.
//!
//! Requests and responses fail differently on purpose. libp2p's request-response behaviour
//! only logs a failed `read_request` (no event reaches the application), so a bad request is
//! read as [`WireRequest::Malformed`] and reported like any request; a bad response is an
//! `io::Error` of kind `InvalidData` whose message names the fault, which
//! [`malformed_kind`] recognises in the outbound failure.
use super::Malformed;
use crate::core::primitives::codec;
use crate::core::protocol::messages::{SyncRequest, SyncResponse};
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use std::io;

/// The sync protocol's name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/cairn/sync/1");

/// Largest request body accepted (64 KiB: a full locator is about 2 KiB).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Largest response body accepted (12 MiB). The caller keeps every response it sends below
/// this, e.g. by sending fewer blocks.
pub const MAX_RESPONSE_BYTES: usize = 12 * 1024 * 1024;

/// Size of the length prefix.
const PREFIX_BYTES: usize = 4;

/// How much of a body is reserved before its bytes arrive.
const INITIAL_CAPACITY: usize = 64 * 1024;

/// The word in an error message that marks a length over the limit.
const OVERSIZED: &str = "oversized";

/// The word in an error message that marks bytes that do not decode.
const UNDECODABLE: &str = "undecodable";

/// A request as the codec carries it.
#[derive(Debug)]
pub enum WireRequest {
    /// A well-formed request (sent, or received and decoded).
    Message(SyncRequest),
    /// Bytes sent as they are, length-prefixed, for tests of hostile peers; never received.
    Raw(Vec<u8>),
    /// A received request that broke the protocol; never sent.
    Malformed {
        /// What was wrong.
        kind: Malformed,
        /// A description for logs.
        detail: String,
    },
}

/// A response as the codec carries it.
#[derive(Debug)]
pub enum WireResponse {
    /// A well-formed response (sent, or received and decoded).
    Message(SyncResponse),
    /// Bytes sent as they are, length-prefixed, for tests of hostile peers; never received.
    Raw(Vec<u8>),
}

/// The `request_response::Codec` of `/cairn/sync/1`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncCodec;

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = WireRequest;
    type Response = WireResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let decoded = read_frame(io, MAX_REQUEST_BYTES)
            .await
            .and_then(|bytes| decode::<SyncRequest>(&bytes));
        match decoded {
            Ok(request) => Ok(WireRequest::Message(request)),
            Err(error) => match malformed_kind(&error) {
                Some(kind) => Ok(WireRequest::Malformed {
                    kind,
                    detail: error.to_string(),
                }),
                // The stream failed (reset, end of file): nothing to report about the peer.
                None => Err(error),
            },
        }
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, MAX_RESPONSE_BYTES).await?;
        decode::<SyncResponse>(&bytes).map(WireResponse::Message)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: WireRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = match request {
            WireRequest::Message(request) => encode(&request, MAX_REQUEST_BYTES)?,
            WireRequest::Raw(bytes) => bytes,
            WireRequest::Malformed { .. } => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a malformed request is never sent",
                ))
            }
        };
        write_frame(io, &bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: WireResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = match response {
            WireResponse::Message(response) => encode(&response, MAX_RESPONSE_BYTES)?,
            WireResponse::Raw(bytes) => bytes,
        };
        write_frame(io, &bytes).await
    }
}

/// Which protocol fault, if any, an error from this codec's reading reports. Errors of the
/// stream itself (reset, timeout, end of file) are not faults of the bytes.
pub fn malformed_kind(error: &io::Error) -> Option<Malformed> {
    if error.kind() != io::ErrorKind::InvalidData {
        return None;
    }
    let message = error.to_string();
    if message.contains(OVERSIZED) {
        Some(Malformed::Oversized)
    } else if message.contains(UNDECODABLE) {
        Some(Malformed::Undecodable)
    } else {
        None
    }
}

/// Reads one length-prefixed body of at most `limit` bytes, refusing a larger length before
/// reading or reserving anything for it.
async fn read_frame<T>(io: &mut T, limit: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let length = u32::from_be_bytes(prefix);
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    if length > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{OVERSIZED} message: {length} bytes announced, at most {limit} allowed"),
        ));
    }
    let mut body = Vec::with_capacity(length.min(INITIAL_CAPACITY));
    // `length <= limit`, which fits in u64 on every platform we build for.
    let read = io.take(length as u64).read_to_end(&mut body).await?;
    if read != length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("message cut short: {read} of {length} bytes"),
        ));
    }
    Ok(body)
}

/// Writes `body` with its length prefix and flushes.
async fn write_frame<T>(io: &mut T, body: &[u8]) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let length = u32::try_from(body.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a body of {} bytes does not fit a length prefix",
                body.len()
            ),
        )
    })?;
    io.write_all(&length.to_be_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await
}

/// Encodes a message we send, refusing one over `limit` (our own mistake, so not
/// `InvalidData`, which would blame the peer).
fn encode<T: serde::Serialize>(message: &T, limit: usize) -> io::Result<Vec<u8>> {
    let bytes = codec::encode(message)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    if bytes.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing to send {} bytes, over the limit of {limit}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Decodes a received body.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    codec::decode(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{UNDECODABLE} message: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::BlockHash;
    use crate::core::protocol::messages::Status;
    use libp2p::futures::executor::block_on;
    use libp2p::futures::io::Cursor;
    use libp2p::request_response::Codec;

    fn request() -> SyncRequest {
        SyncRequest::GetHeaders {
            locator: vec![BlockHash([3; 32]); 4],
            max: 10,
        }
    }

    fn framed(length: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    fn read_request(bytes: Vec<u8>) -> io::Result<WireRequest> {
        block_on(SyncCodec.read_request(&SYNC_PROTOCOL, &mut Cursor::new(bytes)))
    }

    fn read_response(bytes: Vec<u8>) -> io::Result<WireResponse> {
        block_on(SyncCodec.read_response(&SYNC_PROTOCOL, &mut Cursor::new(bytes)))
    }

    #[test]
    fn messages_round_trip_with_a_big_endian_length_prefix() {
        let mut written = Cursor::new(Vec::new());
        block_on(SyncCodec.write_request(
            &SYNC_PROTOCOL,
            &mut written,
            WireRequest::Message(request()),
        ))
        .unwrap();
        let bytes = written.into_inner();
        let body = codec::encode(&request()).unwrap();
        assert_eq!(bytes, framed(body.len() as u32, &body));
        assert!(matches!(read_request(bytes), Ok(WireRequest::Message(r)) if r == request()));

        let response = SyncResponse::Status(Status {
            genesis: BlockHash([1; 32]),
            tip: BlockHash([2; 32]),
            height: 7,
            chain_work: crate::core::consensus::target::Work::ZERO,
        });
        let mut written = Cursor::new(Vec::new());
        block_on(SyncCodec.write_response(
            &SYNC_PROTOCOL,
            &mut written,
            WireResponse::Message(response.clone()),
        ))
        .unwrap();
        assert!(
            matches!(read_response(written.into_inner()), Ok(WireResponse::Message(r)) if r == response)
        );
    }

    #[test]
    fn an_oversized_length_is_refused_before_the_body_is_read() {
        // Announces 4 GiB and sends nothing more: refused at once, nothing reserved.
        let request = read_request(framed(u32::MAX, &[])).unwrap();
        assert!(matches!(
            request,
            WireRequest::Malformed {
                kind: Malformed::Oversized,
                ..
            }
        ));
        let limit = MAX_REQUEST_BYTES as u32;
        assert!(matches!(
            read_request(framed(limit + 1, &[])).unwrap(),
            WireRequest::Malformed {
                kind: Malformed::Oversized,
                ..
            }
        ));
        let error = read_response(framed(MAX_RESPONSE_BYTES as u32 + 1, &[])).unwrap_err();
        assert_eq!(malformed_kind(&error), Some(Malformed::Oversized));
    }

    #[test]
    fn undecodable_bodies_are_named_and_cut_streams_are_not() {
        let request = read_request(framed(3, &[0xff; 3])).unwrap();
        assert!(matches!(
            request,
            WireRequest::Malformed {
                kind: Malformed::Undecodable,
                ..
            }
        ));
        let error = read_response(framed(3, &[0xff; 3])).unwrap_err();
        assert_eq!(malformed_kind(&error), Some(Malformed::Undecodable));

        // A body shorter than announced is a broken stream, not a protocol fault.
        let cut = read_request(framed(100, &[0; 10])).unwrap_err();
        assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(malformed_kind(&cut), None);
        assert!(read_request(vec![0, 0]).is_err());
    }

    #[test]
    fn our_own_oversized_message_is_not_blamed_on_the_peer() {
        let huge = SyncRequest::GetBlocks {
            hashes: vec![BlockHash::ZERO; MAX_REQUEST_BYTES / 32 + 1],
        };
        let mut written = Cursor::new(Vec::new());
        let error = block_on(SyncCodec.write_request(
            &SYNC_PROTOCOL,
            &mut written,
            WireRequest::Message(huge),
        ))
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(malformed_kind(&error), None);
        assert!(written.into_inner().is_empty());
    }
}
