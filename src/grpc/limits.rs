//! Length limits on every string of every request, as a tower layer in front of
//! every service, so no RPC can forget them.
//!
//! A 3 MB datacenter label would otherwise be stored, copied into every slot
//! table and stats answer, and flood `group list`. The layer reads the request
//! message (unary and server-streaming RPCs carry exactly one), decodes it with
//! the API's own descriptors, and refuses a string longer than its field's limit,
//! or a list with too many entries, with INVALID_ARGUMENT naming the field and
//! the limit. Client-streaming RPCs (WatchSlots) check their messages in their
//! handler. The cost is one extra decode of a request of a few hundred bytes.

use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::BodyExt;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

/// The longest request message read whole (tonic's own decoding limit).
const MAX_REQUEST: usize = 4 << 20;

/// Strings not listed in [`limit_of`].
const DEFAULT_LIMIT: usize = 256;

/// The most entries a repeated field of a request may have (1024 slots fit).
const MAX_ENTRIES: usize = 4096;

/// The byte limit of a string field, by field name.
pub fn limit_of(field: &str) -> usize {
    match field {
        // host (≤ 253) + ':' + port, with room for brackets.
        f if f == "addr" || f.ends_with("_addr") || f == "addrs" => 262,
        "datacenter" | "product_name" | "proto_type" | "hostname" | "version" | "sys" => 128,
        "token" | "nonce" | "epoch" => 128,
        "pwd" => 1024,
        // A tracing filter (SetLogLevel) and a proxy's NACK reason are free text.
        "filter" | "reason" | "level" => 4096,
        _ => DEFAULT_LIMIT,
    }
}

/// Checks every string of `msg` (and of the messages inside it).
pub fn check(msg: &DynamicMessage) -> Result<(), Status> {
    check_at(msg, "")
}

fn check_at(msg: &DynamicMessage, prefix: &str) -> Result<(), Status> {
    for (field, value) in msg.fields() {
        let name = format!("{prefix}{}", field.name());
        let limit = limit_of(field.name());
        match value {
            Value::String(s) => check_len(&name, s, limit)?,
            Value::Message(m) => check_at(m, &format!("{name}."))?,
            Value::List(items) => {
                if items.len() > MAX_ENTRIES {
                    return Err(Status::invalid_argument(format!(
                        "field `{name}` has {} entries; at most {MAX_ENTRIES} are accepted",
                        items.len()
                    )));
                }
                for item in items {
                    match item {
                        Value::String(s) => check_len(&name, s, limit)?,
                        Value::Message(m) => check_at(m, &format!("{name}."))?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_len(name: &str, s: &str, limit: usize) -> Result<(), Status> {
    if s.len() > limit {
        return Err(Status::invalid_argument(format!(
            "field `{name}` is {} bytes long; the limit is {limit} bytes",
            s.len()
        )));
    }
    Ok(())
}

/// Checks a typed message the same way (for client-streaming RPCs).
pub fn check_typed<M: prost::Message>(msg: &M, full_name: &str) -> Result<(), Status> {
    let Some(desc) = pool().get_message_by_name(full_name) else {
        return Ok(());
    };
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
        .map_err(|e| Status::invalid_argument(format!("cannot decode {full_name}: {e}")))?;
    check(&dynamic)
}

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    // The descriptor set is compiled in by build.rs from the same protos as the
    // services: decoding it cannot fail unless the build is broken.
    POOL.get_or_init(|| DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap_or_default())
}

/// The input message of `path` (`/pkg.Service/Method`) when requests of that
/// method carry a single message.
fn single_input(path: &str) -> Option<MessageDescriptor> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    let method = pool()
        .get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)?;
    (!method.is_client_streaming()).then(|| method.input())
}

/// The layer; see the module doc.
#[derive(Clone, Copy, Debug, Default)]
pub struct LimitsLayer;

impl<S> Layer<S> for LimitsLayer {
    type Service = Limits<S>;

    fn layer(&self, inner: S) -> Limits<S> {
        Limits { inner }
    }
}

/// The service produced by [`LimitsLayer`].
#[derive(Clone, Debug)]
pub struct Limits<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for Limits<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let Some(input) = single_input(req.uri().path()) else {
            return Box::pin(self.inner.call(req));
        };
        // The clone is ready only after its own poll_ready; swap so the one that
        // was polled serves this call (tower's documented pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match http_body_util::Limited::new(body, MAX_REQUEST)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    return Ok(
                        Status::invalid_argument(format!("cannot read the request: {e}"))
                            .into_http(),
                    );
                }
            };
            if let Err(status) = check_frame(&input, bytes.clone()) {
                return Ok(status.into_http());
            }
            inner
                .call(Request::from_parts(
                    parts,
                    Body::new(http_body_util::Full::new(bytes)),
                ))
                .await
        })
    }
}

/// Checks the one gRPC frame (flag, 4-byte length, message) of a request. A
/// compressed or malformed frame is left to tonic, which reports it.
fn check_frame(input: &MessageDescriptor, mut frame: Bytes) -> Result<(), Status> {
    if frame.len() < 5 || frame[0] != 0 {
        return Ok(());
    }
    frame.advance(1);
    let len = frame.get_u32() as usize;
    if frame.len() < len {
        return Ok(());
    }
    match DynamicMessage::decode(input.clone(), &frame[..len]) {
        Ok(msg) => check(&msg),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(msg: &impl prost::Message) -> Bytes {
        let body = msg.encode_to_vec();
        let mut f = vec![0u8];
        f.extend_from_slice(&(body.len() as u32).to_be_bytes());
        f.extend_from_slice(&body);
        Bytes::from(f)
    }

    #[test]
    fn long_strings_are_refused_naming_the_field() {
        let input = single_input("/topom.v1.Topom/AddGroupServer").unwrap();
        let ok = crate::pb::AddGroupServerRequest {
            group_id: 1,
            addr: "127.0.0.1:6379".into(),
            datacenter: "dc1".into(),
            no_sync: false,
        };
        assert!(check_frame(&input, frame(&ok)).is_ok());
        let bad = crate::pb::AddGroupServerRequest {
            datacenter: "x".repeat(3 << 20),
            ..ok
        };
        let e = check_frame(&input, frame(&bad)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("`datacenter`"), "{}", e.message());
        assert!(e.message().contains("128 bytes"), "{}", e.message());
    }

    #[test]
    fn nested_messages_and_lists_are_checked() {
        let input = single_input("/topom.v1.ProxyControl/RegisterProxy").unwrap();
        let bad = crate::pb::RegisterProxyRequest {
            proxy: Some(crate::pb::Proxy {
                hostname: "h".repeat(129),
                ..Default::default()
            }),
        };
        let e = check_frame(&input, frame(&bad)).unwrap_err();
        assert!(e.message().contains("`proxy.hostname`"), "{}", e.message());

        let input = single_input("/topom.v1.Topom/WatchStats").unwrap();
        let bad = crate::pb::WatchStatsRequest {
            fields: vec!["f".repeat(300)],
            ..Default::default()
        };
        let e = check_frame(&input, frame(&bad)).unwrap_err();
        assert!(e.message().contains("`fields`"), "{}", e.message());
    }

    #[test]
    fn client_streaming_methods_are_not_buffered() {
        assert!(single_input("/topom.v1.ProxyControl/WatchSlots").is_none());
        assert!(single_input("/grpc.health.v1.Health/Check").is_none());
    }
}
