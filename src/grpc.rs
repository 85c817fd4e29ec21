//! The gRPC edge: the only module that sees protobuf types. [`router`] assembles
//! what the port serves; the services (the Topom RPCs grouped by area in
//! `topom/`) convert requests into coordinator calls ([`convert`]), the core's
//! error codes into statuses ([`status`]); layers guard mutating RPCs with the
//! admin token ([`auth`]) and bound request sizes ([`limits`]); `watch_route`
//! sends each WatchStats round's shared bytes to every subscriber;
//! `stats_encode` writes group servers' stats from a round without building
//! their field maps (RefreshRedisStats, WatchStats and GetStats answer with
//! bytes encoded once).

pub mod auth;
pub mod convert;
mod leader;
pub mod limits;
mod proxy;
mod router;
mod slots_cache;
pub mod stats;
mod stats_encode;
mod stats_snapshot;
pub mod status;
mod topom;
mod watch_route;

pub use proxy::ProxyControlService;
pub use router::{Edge, Layers, LogFilterFn, router};
pub use topom::{ServiceControl, TopomService};
