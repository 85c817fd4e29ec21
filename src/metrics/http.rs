//! The HTTP endpoint on `metrics_addr`: `/metrics` and `/healthz`, on the axum
//! that tonic already brings (HTTP/1.1, which is what Prometheus scrapes with).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Exporter, RpcMetrics};
use crate::coordinator::Coordinator;

/// The OpenMetrics text format, as Prometheus negotiates it.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Shared {
    exporter: Arc<Exporter>,
    coordinator: Arc<Coordinator>,
    shutdown: CancellationToken,
}

/// Serves until `shutdown` is cancelled, then lets the requests in flight finish
/// (scrapes are short) and returns.
pub async fn serve(
    listener: TcpListener,
    coordinator: Arc<Coordinator>,
    rpc: Arc<RpcMetrics>,
    shutdown: CancellationToken,
) {
    let shared = Shared {
        exporter: Arc::new(Exporter::new(coordinator.clone(), &rpc)),
        coordinator,
        shutdown: shutdown.clone(),
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(shared.clone())
        .merge(super::codis_dashboard::router(shared.coordinator.clone()));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the metrics endpoint failed");
    }
}

async fn metrics(State(s): State<Shared>) -> Response {
    match s.exporter.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}\n"),
        )
            .into_response(),
    }
}

/// Mirrors the gRPC health service: SERVING exactly when it reports SERVING
/// (the ownership lock is held and no shutdown has begun), else 503.
async fn healthz(State(s): State<Shared>) -> Response {
    if s.coordinator.is_online() && !s.shutdown.is_cancelled() {
        (StatusCode::OK, "SERVING\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING\n").into_response()
    }
}
