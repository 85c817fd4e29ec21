//! RPC metrics as a tower layer in front of every gRPC service (outside the auth
//! layer, so refused calls are counted too).
//!
//! A call is counted once, when it ends: when its response carries a
//! `grpc-status` in the headers (a trailers-only error), when the trailers go
//! out, or, if the client went away first, when the body is dropped (counted as
//! `Cancelled`, as gRPC itself would report it). The duration is the whole call,
//! request to last frame; for a stream that is the stream's lifetime.
//!
//! Labels are bounded: `service` and `method` come from the descriptor sets the
//! server registers (anything else is `unknown`), `code` from the 17 gRPC codes.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use prost::Message as _;
use tower::{Layer, Service};

/// `service`, `method`, `code` of a finished call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: &'static str,
    method: &'static str,
    code: &'static str,
}

/// `service`, `method` (the histogram has no code: it would multiply the series
/// by 17 for little use).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: &'static str,
    method: &'static str,
}

/// The RPC series, shared by every clone of the layer.
#[derive(Debug)]
pub struct RpcMetrics {
    calls: Family<CallLabels, Counter>,
    duration: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

/// 0.5 ms to ~16 s, doubling.
fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl RpcMetrics {
    /// Empty series.
    pub fn new() -> Arc<RpcMetrics> {
        Arc::new(RpcMetrics {
            calls: Family::default(),
            duration: Family::new_with_constructor(buckets),
        })
    }

    /// Registers the series.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "topom_rpc_requests",
            "gRPC calls finished, by service, method and status code",
            self.calls.clone(),
        );
        r.register_with_unit(
            "topom_rpc_duration",
            "gRPC call duration, request to last response frame (for streams, their lifetime)",
            Unit::Seconds,
            self.duration.clone(),
        );
    }

    fn record(&self, (service, method): (&'static str, &'static str), code: i32, took: f64) {
        self.calls
            .get_or_create(&CallLabels {
                service,
                method,
                code: code_name(code),
            })
            .inc();
        self.duration
            .get_or_create(&MethodLabels { service, method })
            .observe(took);
    }
}

/// The layer.
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer(Arc<RpcMetrics>);

impl RpcMetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<RpcMetrics>) -> RpcMetricsLayer {
        RpcMetricsLayer(metrics)
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The service produced by [`RpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct Recorded<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

impl<S, B, RB> Service<Request<B>> for Recorded<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Body + Unpin + Send + 'static,
{
    type Response = Response<RecordedBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let call = Call {
            name: method_of(req.uri().path()),
            started: Instant::now(),
            metrics: self.metrics.clone(),
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            // An error here is a transport failure, not a call: nothing is counted.
            let resp = fut.await?;
            let mut call = Some(call);
            if let Some(code) = status_of(resp.headers()) {
                // Trailers-only: the call is over (an error, or auth refused).
                if let Some(c) = call.take() {
                    c.finish(code);
                }
            }
            Ok(resp.map(|inner| RecordedBody { inner, call }))
        })
    }
}

/// One call in flight.
struct Call {
    name: (&'static str, &'static str),
    started: Instant,
    metrics: Arc<RpcMetrics>,
}

impl Call {
    fn finish(self, code: i32) {
        let took = self.started.elapsed().as_secs_f64();
        self.metrics.record(self.name, code, took);
    }
}

/// A response body that records its call when the trailers pass, or when it is
/// dropped before them.
pub struct RecordedBody<B> {
    inner: B,
    call: Option<Call>,
}

/// `grpc-status` when present and numeric.
fn status_of(h: &HeaderMap) -> Option<i32> {
    h.get("grpc-status")?.to_str().ok()?.parse().ok()
}

impl<B: Body + Unpin> Body for RecordedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of)
                    && let Some(c) = self.call.take()
                {
                    c.finish(code);
                }
            }
            // The body failed mid-stream: tonic turns that into an INTERNAL status.
            Poll::Ready(Some(Err(_))) => {
                if let Some(c) = self.call.take() {
                    c.finish(tonic::Code::Internal as i32);
                }
            }
            // Ended without trailers (not gRPC-shaped): counted as Unknown.
            Poll::Ready(None) => {
                if let Some(c) = self.call.take() {
                    c.finish(tonic::Code::Unknown as i32);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for RecordedBody<B> {
    fn drop(&mut self) {
        if let Some(c) = self.call.take() {
            c.finish(tonic::Code::Cancelled as i32);
        }
    }
}

/// The canonical code names (grpc-go's `codes.Code.String()`).
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "Canceled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => "Unknown",
    }
}

/// Every method the server registers, by path (`/pkg.Service/Method`).
fn known() -> &'static HashMap<String, (String, String)> {
    static KNOWN: OnceLock<HashMap<String, (String, String)>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let sets = [
            crate::pb::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut known = HashMap::new();
        for set in sets {
            // These sets are compiled in; one that does not decode only loses
            // its names (calls count as `unknown`).
            let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
                continue;
            };
            for file in set.file {
                let package = file.package();
                for svc in &file.service {
                    let service = match package {
                        "" => svc.name().to_owned(),
                        p => format!("{p}.{}", svc.name()),
                    };
                    for m in &svc.method {
                        known.insert(
                            format!("/{service}/{}", m.name()),
                            (service.clone(), m.name().to_owned()),
                        );
                    }
                }
            }
        }
        known
    })
}

/// `(service, method)` of a request path; `("unknown", "unknown")` for a path
/// no registered service has, so a client cannot add series.
fn method_of(path: &str) -> (&'static str, &'static str) {
    known()
        .get(path)
        .map_or(("unknown", "unknown"), |(s, m)| (s.as_str(), m.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_the_descriptors() {
        assert_eq!(
            method_of("/topom.v1.Topom/ListSlots"),
            ("topom.v1.Topom", "ListSlots")
        );
        assert_eq!(
            method_of("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        assert_eq!(
            method_of("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").1,
            "ServerReflectionInfo"
        );
        assert_eq!(
            method_of("/topom.v1.Topom/NoSuchMethod"),
            ("unknown", "unknown")
        );
        assert_eq!(code_name(16), "Unauthenticated");
        assert_eq!(code_name(99), "Unknown");
    }
}
