//! Reading a request body into one buffer, bounded in size, time and the
//! request memory budget.

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::budget::{OverBudget, RequestBudget, Reservation};

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum BodyError {
    #[error("request body too large: the limit is {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("timed out reading the request body")]
    TimedOut,
    #[error("failed to read the request body: {0}")]
    Read(String),
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

/// The declared `Content-Length`, if any and valid.
pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads the whole body, refusing it as soon as it is known to exceed
/// `limit` or not to fit in the request memory `budget` (from
/// `Content-Length` before reading anything, otherwise while counting
/// frames), and giving up at `deadline`.
///
/// A body that arrives in one frame is kept as it is; otherwise frames are
/// copied once into a single buffer. The returned `Bytes` hold the
/// body's reservation until their last clone is dropped.
pub(super) async fn read_limited<B>(
    body: B,
    declared: Option<u64>,
    limit: u64,
    deadline: Option<Instant>,
    budget: &Arc<RequestBudget>,
) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    if let Some(declared) = declared {
        budget.check_declared(declared)?;
    }
    let reading = collect(body, declared, limit, budget.reservation());
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, reading)
            .await
            .unwrap_or(Err(BodyError::TimedOut)),
        None => reading.await,
    }
}

/// Reserves before it buffers: the declared length (or the first frame)
/// when data starts to flow, then each growth of the joined buffer before
/// it is allocated, so the reservation covers the buffer's capacity.
async fn collect<B>(
    mut body: B,
    declared: Option<u64>,
    limit: u64,
    mut reservation: Reservation,
) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut first: Option<Bytes> = None;
    let mut buffer: Option<Vec<u8>> = None;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // request trailers carry nothing we use
        };
        if data.is_empty() {
            continue;
        }
        total = total.saturating_add(data.len() as u64);
        if total > limit {
            return Err(BodyError::TooLarge { limit });
        }
        match (&mut first, &mut buffer) {
            (None, None) => {
                reservation.grow_to(declared.unwrap_or(0).max(total))?;
                first = Some(data);
            }
            (Some(head), None) => {
                let capacity = join_capacity(declared, total);
                reservation.grow_to(capacity as u64)?;
                let mut joined = Vec::with_capacity(capacity);
                joined.extend_from_slice(head);
                joined.extend_from_slice(&data);
                first = None;
                buffer = Some(joined);
            }
            (_, Some(joined)) => {
                let needed = joined.len() + data.len();
                if needed > joined.capacity() {
                    // Doubling, as Vec would, but reserved first and never
                    // past the limit.
                    let cap_limit = usize::try_from(limit).unwrap_or(usize::MAX);
                    let target = needed
                        .max(joined.capacity().saturating_mul(2))
                        .min(cap_limit);
                    // realloc may hold the old and the new copy at once.
                    reservation.grow_to((joined.capacity() + target) as u64)?;
                    joined.reserve_exact(target - joined.len());
                    reservation.shrink_to(target as u64);
                }
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(match (first, buffer) {
        (Some(only), _) => reservation.seal(only),
        (None, Some(joined)) => reservation.seal(joined),
        (None, None) => Bytes::new(),
    })
}

/// Room for the joined body once a second frame arrives: the declared
/// length when there is one (already checked against the limit, and
/// hyper ends the body there), so the buffer is allocated once instead of
/// doubling its way up with a copy each time; otherwise what arrived so far.
///
/// Reserving the declared length only once data flows keeps a client that
/// declares a large body and sends nothing from pinning memory; one that
/// trickles its body could pin up to the limit anyway.
fn join_capacity(declared: Option<u64>, total: u64) -> usize {
    usize::try_from(declared.unwrap_or(0).max(total)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};
    use std::convert::Infallible;
    use std::time::Duration;

    fn budget() -> Arc<RequestBudget> {
        RequestBudget::new(1 << 30)
    }

    fn chunks(
        parts: &[&'static [u8]],
    ) -> StreamBody<
        impl futures_util::Stream<Item = Result<http_body::Frame<Bytes>, Infallible>> + Unpin,
    > {
        let frames: Vec<_> = parts
            .iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn one_frame_is_kept_and_many_are_joined() {
        let only = Bytes::from_static(b"abc");
        let read = read_limited(Full::new(only.clone()), Some(3), 10, None, &budget())
            .await
            .unwrap();
        assert_eq!(read.as_ptr(), only.as_ptr());
        let read = read_limited(
            chunks(&[b"ab", b"", b"cd", b"e"]),
            None,
            10,
            None,
            &budget(),
        )
        .await
        .unwrap();
        assert_eq!(&read[..], b"abcde");
    }

    #[tokio::test]
    async fn limits_are_enforced_up_front_and_while_streaming() {
        let err = read_limited(Full::new(Bytes::new()), Some(11), 10, None, &budget()).await;
        assert!(matches!(err, Err(BodyError::TooLarge { limit: 10 })));
        let err = read_limited(chunks(&[b"123456", b"78901"]), None, 10, None, &budget()).await;
        assert!(matches!(err, Err(BodyError::TooLarge { limit: 10 })));
        let ok = read_limited(chunks(&[b"12345", b"67890"]), None, 10, None, &budget()).await;
        assert_eq!(ok.unwrap().len(), 10);
    }

    #[test]
    fn the_declared_length_is_reserved_once() {
        assert_eq!(join_capacity(Some(4 << 20), 16_384), 4 << 20);
        assert_eq!(join_capacity(None, 16_384), 16_384);
        // A short declaration never shrinks below what already arrived.
        assert_eq!(join_capacity(Some(10), 20), 20);
    }

    #[tokio::test]
    async fn a_wrong_declared_length_does_not_lift_the_limit() {
        let err = read_limited(chunks(&[b"123456", b"78901"]), Some(5), 10, None, &budget()).await;
        assert!(matches!(err, Err(BodyError::TooLarge { limit: 10 })));
        let err = read_limited(chunks(&[b"12"]), Some(11), 10, None, &budget()).await;
        assert!(matches!(err, Err(BodyError::TooLarge { limit: 10 })));
        let ok = read_limited(chunks(&[b"12", b"345"]), Some(10), 10, None, &budget()).await;
        assert_eq!(&ok.unwrap()[..], b"12345");
    }

    #[tokio::test]
    async fn deadline_stops_a_stalled_body() {
        let stalled = StreamBody::new(futures_util::stream::pending::<
            Result<http_body::Frame<Bytes>, Infallible>,
        >());
        let deadline = Instant::now() + Duration::from_millis(20);
        let err = read_limited(stalled, None, 10, Some(deadline), &budget()).await;
        assert!(matches!(err, Err(BodyError::TimedOut)));
    }

    #[tokio::test]
    async fn the_budget_is_reserved_before_buffering_and_held_by_the_body() {
        let budget = RequestBudget::new(1000);
        // Declared and too large for the budget: refused before any frame.
        let err = read_limited(Full::new(Bytes::new()), Some(1001), 2000, None, &budget).await;
        assert!(matches!(err, Err(BodyError::OverBudget(_))));
        // Chunked: the joined buffer's capacity is reserved as it grows.
        let body = read_limited(chunks(&[b"ab", b"cd", b"e"]), None, 10, None, &budget)
            .await
            .unwrap();
        assert_eq!((&body[..], budget.in_use()), (&b"abcde"[..], 8));
        drop(body);
        assert_eq!(budget.in_use(), 0);
        // Declared: the whole length is reserved with the first bytes.
        let body = read_limited(chunks(&[b"12", b"345"]), Some(5), 10, None, &budget)
            .await
            .unwrap();
        assert_eq!(budget.in_use(), 5);
        let mut other = budget.reservation();
        assert!(other.grow_to(996).is_err());
        drop(body);
        other.grow_to(996).unwrap();
        // Nothing left: a chunked body is refused when it arrives.
        let err = read_limited(chunks(&[b"12345"]), None, 10, None, &budget).await;
        assert!(matches!(err, Err(BodyError::OverBudget(_))));
    }
}
