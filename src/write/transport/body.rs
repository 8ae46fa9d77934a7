//! The body of an outgoing request: bytes in memory (pushes, `/ingest`,
//! unary calls, token requests) or a stream (debug-info uploads). One type
//! for both, so that one pool of connections serves every request.

use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::pipeline::UploadBody;

type BoxError = Box<dyn StdError + Send + Sync>;

pub(crate) enum RequestBody {
    /// Sent whole; `None` once sent.
    Bytes(Option<Bytes>),
    Stream(UploadBody),
}

impl RequestBody {
    pub fn bytes(bytes: Bytes) -> Self {
        Self::Bytes(Some(bytes).filter(|b| !b.is_empty()))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Bytes(bytes) => bytes.is_none(),
            Self::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Self::Stream(stream) => stream.size_hint(),
        }
    }
}
