//! WatchStats served past tonic's codec, so every subscriber of a round sends
//! the same bytes.
//!
//! tonic encodes each stream item into that stream's own buffer. A full round
//! (≈ 1 MB at 256 targets) then exists once per subscriber until HTTP/2 flow
//! control has drained it: with 1,000 subscribers that measured ≈ 3 MB each.
//! Here the response body hands hyper the round's shared `Bytes` as a DATA frame
//! after its 5-byte gRPC prefix; h2 writes from that buffer without copying it,
//! so N subscribers hold one copy of a round, not N.
//!
//! The per-stream queue stays bounded without a queue of our own: hyper polls a
//! body only when the stream has send capacity, and the body reads the latest
//! round from a watch channel. A slow subscriber holds at most the round in
//! flight and the next one; rounds published meanwhile replace each other, which
//! is the gap in `round` the proto documents as skipping.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;
use tonic::codec::{Codec, Streaming};
use tonic::server::NamedService;
use tower::Service;

use super::stats::WatchStream;
use super::topom::TopomService;
use crate::pb;
use crate::pb::encoded::Encoded;

/// The method this route serves; every other path goes to the inner service.
const PATH: &str = "/topom.v1.Topom/WatchStats";

/// The gRPC message prefix: a compressed flag and a big-endian length.
const PREFIX_LEN: usize = 5;

/// The Topom service with WatchStats answered here (see the module note).
#[derive(Clone)]
pub struct WatchStatsRoute<S> {
    topom: Arc<TopomService>,
    inner: S,
}

impl<S> WatchStatsRoute<S> {
    /// Serves WatchStats from `topom` and everything else through `inner`.
    pub fn new(topom: Arc<TopomService>, inner: S) -> Self {
        WatchStatsRoute { topom, inner }
    }
}

impl<S: NamedService> NamedService for WatchStatsRoute<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for WatchStatsRoute<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if req.uri().path() != PATH {
            return Box::pin(self.inner.call(req));
        }
        let topom = self.topom.clone();
        Box::pin(async move {
            let opened = match request(req).await {
                Ok(r) => topom.open_watch(r),
                Err(status) => Err(status),
            };
            Ok(match opened {
                Ok(rounds) => response(rounds),
                Err(status) => status.into_http(),
            })
        })
    }
}

/// The request message, decoded as tonic would (the size was bounded already by
/// the limits layer).
async fn request(req: http::Request<Body>) -> Result<pb::WatchStatsRequest, Status> {
    let (parts, body) = req.into_parts();
    if let Some(enc) = parts.headers.get("grpc-encoding")
        && enc != "identity"
    {
        return Err(Status::unimplemented(format!(
            "WatchStats takes uncompressed requests; grpc-encoding {enc:?} is not supported"
        )));
    }
    let decoder =
        tonic_prost::ProstCodec::<pb::WatchStatsResponse, pb::WatchStatsRequest>::default()
            .decoder();
    let mut messages = Streaming::new_request(decoder, body, None, None);
    messages
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("the WatchStats request carries no message"))
}

fn response(rounds: WatchStream) -> http::Response<Body> {
    let mut r = http::Response::new(Body::new(SharedRounds {
        rounds,
        next: None,
        ended: false,
    }));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    r
}

/// The response body: per round its prefix, then the round's shared bytes; at
/// the end the status as trailers.
struct SharedRounds {
    rounds: WatchStream,
    /// The round whose prefix was just yielded.
    next: Option<Bytes>,
    ended: bool,
}

impl http_body::Body for SharedRounds {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if let Some(round) = this.next.take() {
            return Poll::Ready(Some(Ok(Frame::data(round))));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        let status = match ready!(this.rounds.as_mut().poll_next(cx)) {
            Some(Ok(Encoded(round))) => match prefix(round.len()) {
                Ok(p) => {
                    this.next = Some(round);
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                Err(status) => status,
            },
            Some(Err(status)) => status,
            None => Status::ok(""),
        };
        this.ended = true;
        Poll::Ready(Some(Ok(Frame::trailers(trailers(&status)))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.next.is_none()
    }
}

fn prefix(len: usize) -> Result<Bytes, Status> {
    let len = u32::try_from(len).map_err(|_| {
        Status::resource_exhausted(format!(
            "a stats round of {len} bytes exceeds gRPC's 4 GiB message limit; filter by group, address or field"
        ))
    })?;
    let mut p = BytesMut::with_capacity(PREFIX_LEN);
    p.put_u8(0);
    p.put_u32(len);
    Ok(p.freeze())
}

fn trailers(status: &Status) -> HeaderMap {
    let mut map = HeaderMap::new();
    if let Err(unsendable) = status.add_header(&mut map) {
        // A message that is no valid header value: send the code, and say why
        // the text is missing.
        map.clear();
        let _ = Status::new(status.code(), "").add_header(&mut map);
        tracing::debug!(error = %unsendable, "a WatchStats status message was not sendable");
    }
    map
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt;

    use super::*;
    use crate::coordinator::testing::{harness, settings};
    use crate::grpc::stats::{Filter, RoundCache, watch};

    fn body(rounds: WatchStream) -> SharedRounds {
        SharedRounds {
            rounds,
            next: None,
            ended: false,
        }
    }

    /// The next data frame.
    async fn data(b: &mut SharedRounds) -> Bytes {
        let frame = b.frame().await.expect("a frame").expect("no error");
        frame.into_data().expect("a data frame")
    }

    #[tokio::test]
    async fn subscribers_of_a_round_send_one_buffer() {
        let h = harness(settings()).await;
        h.group(1, &["a:1"]).await;
        h.coordinator
            .refresh_stats(Duration::from_secs(1))
            .await
            .unwrap();
        let cache = Arc::new(RoundCache::default());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let open = || {
            body(watch(
                &h.coordinator,
                Filter::default(),
                cache.clone(),
                shutdown.clone(),
            ))
        };
        let (mut one, mut two) = (open(), open());
        let (p1, r1) = (data(&mut one).await, data(&mut one).await);
        let (p2, r2) = (data(&mut two).await, data(&mut two).await);
        assert_eq!(p1, p2);
        assert_eq!(
            &p1[1..],
            &(r1.len() as u32).to_be_bytes(),
            "the length prefix"
        );
        assert_eq!(p1[0], 0, "not compressed");
        assert_eq!(r1.as_ptr(), r2.as_ptr(), "the same buffer, not a copy");
        assert!(!r1.is_empty());

        shutdown.cancel();
        let end = one.frame().await.expect("trailers").unwrap();
        let t = end.into_trailers().expect("trailers after the last round");
        assert_eq!(t.get("grpc-status").unwrap(), "0");
        assert!(one.frame().await.is_none());
        assert!(http_body::Body::is_end_stream(&one));
    }

    #[tokio::test]
    async fn an_error_ends_the_body_with_its_status() {
        let rounds: WatchStream = Box::pin(futures::stream::iter([Err(Status::unavailable(
            "not the leader",
        ))]));
        let mut b = body(rounds);
        let t = b.frame().await.unwrap().unwrap().into_trailers().unwrap();
        assert_eq!(t.get("grpc-status").unwrap(), "14");
        assert_eq!(t.get("grpc-message").unwrap(), "not%20the%20leader");
    }
}
