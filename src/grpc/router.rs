//! Everything served on the gRPC port, assembled in one place: the two topom
//! services (WatchStats answered by `watch_route`, past tonic's codec), health, reflection (v1 and v1alpha, for grpcurl of any age), and the
//! layers every call passes (metrics outermost so refused calls are counted, then
//! auth, then the request limits).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity, Stack};

use super::auth::AuthLayer;
use super::leader::LeaderHeaderLayer;
use super::limits::LimitsLayer;
use super::watch_route::WatchStatsRoute;
use super::{ProxyControlService, ServiceControl, TopomService, convert};
use crate::config::Config;
use crate::coordinator::Coordinator;
use crate::metrics::{RpcMetrics, RpcMetricsLayer};
use crate::pb;

/// Applies a log filter (`RUST_LOG` syntax) at run time (the SetLogLevel RPC).
pub type LogFilterFn = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The layers around every service, innermost first in the type.
pub type Layers = Stack<
    LimitsLayer,
    Stack<AuthLayer, Stack<LeaderHeaderLayer, Stack<RpcMetricsLayer, Identity>>>,
>;

/// What the gRPC edge is built from.
pub struct Edge<'a> {
    /// The core.
    pub coordinator: Arc<Coordinator>,
    /// The validated configuration (auth, and what GetOverview reports).
    pub config: &'a Config,
    /// The bound gRPC address (reported by GetOverview).
    pub addr: SocketAddr,
    /// Cancelled by the Shutdown RPC; also ends the proxies' streams.
    pub shutdown: CancellationToken,
    /// Applies SetLogLevel.
    pub set_log_filter: LogFilterFn,
    /// Where call counts and latencies go.
    pub rpc_metrics: Arc<RpcMetrics>,
    /// Tracks the proxies' stream tasks, so shutdown joins them.
    pub tasks: TaskTracker,
}

/// The router to serve, and the health reporter its owner keeps current.
pub fn router(
    edge: Edge<'_>,
) -> Result<(Router<Layers>, HealthReporter), tonic_reflection::server::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let descriptors = [
        pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ];
    let mut v1 = tonic_reflection::server::Builder::configure();
    let mut v1alpha = tonic_reflection::server::Builder::configure();
    for set in descriptors {
        v1 = v1.register_encoded_file_descriptor_set(set);
        v1alpha = v1alpha.register_encoded_file_descriptor_set(set);
    }
    let topom = Arc::new(TopomService::new(
        edge.coordinator.clone(),
        ServiceControl {
            shutdown: edge.shutdown.clone(),
            set_log_filter: edge.set_log_filter,
            config: convert::config_view(edge.config, edge.addr),
        },
    ));
    let router = Server::builder()
        .layer(RpcMetricsLayer::new(edge.rpc_metrics))
        .layer(LeaderHeaderLayer(edge.coordinator.clone()))
        .layer(AuthLayer::new(
            &edge.config.admin_token,
            edge.config.auth_reads,
        ))
        .layer(LimitsLayer)
        .add_service(health_service)
        .add_service(v1.build_v1()?)
        .add_service(v1alpha.build_v1alpha()?)
        .add_service(WatchStatsRoute::new(
            topom.clone(),
            pb::fast::topom_server::TopomServer::from_arc(topom),
        ))
        .add_service(pb::proxy_control_server::ProxyControlServer::new(
            ProxyControlService::new(edge.coordinator, edge.shutdown, edge.tasks),
        ));
    Ok((router, health))
}
