//! Calls whose response is kept as bytes: a bench that measures the server
//! should not spend its (shared) CPU decoding megabytes it does not look at.
//! The request is still a generated prost message.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http::uri::PathAndQuery;
use prost::Message;
use tonic::Status;
use tonic::client::Grpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// Encodes a request with prost, takes the response body as bytes.
pub struct RawCodec<Req>(PhantomData<fn(Req)>);

impl<Req> Default for RawCodec<Req> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

pub struct ReqEncoder<Req>(PhantomData<fn(Req)>);
pub struct BytesDecoder;

impl<Req: Message + 'static> Codec for RawCodec<Req> {
    type Encode = Req;
    type Decode = Bytes;
    type Encoder = ReqEncoder<Req>;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> ReqEncoder<Req> {
        ReqEncoder(PhantomData)
    }

    fn decoder(&mut self) -> BytesDecoder {
        BytesDecoder
    }
}

impl<Req: Message> Encoder for ReqEncoder<Req> {
    type Item = Req;
    type Error = Status;

    fn encode(&mut self, item: Req, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

/// One unary call of `path` (`/topom.v1.Topom/ListSlots`); the response body and
/// the time of the call itself (after the channel is ready). Panics naming the
/// path when the call fails: a bench cannot go on without its answer.
pub async fn unary<Req: Message + 'static>(
    grpc: &mut Grpc<Channel>,
    path: &'static str,
    req: Req,
) -> (Bytes, Duration) {
    grpc.ready().await.expect("channel ready");
    let t0 = Instant::now();
    let r = grpc
        .unary(
            tonic::Request::new(req),
            PathAndQuery::from_static(path),
            RawCodec::<Req>::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    (r.into_inner(), t0.elapsed())
}
