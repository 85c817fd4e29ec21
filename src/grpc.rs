//! The gRPC edge: the only module that sees protobuf types. It converts requests
//! into coordinator calls ([`convert`]), coordinator errors into statuses
//! ([`status`]), and guards mutating RPCs with the admin token ([`auth`]).

pub mod auth;
pub mod convert;
pub mod encoded;
pub mod limits;
mod proxy;
pub mod stats;
pub mod status;
mod topom;

pub use proxy::ProxyControlService;
pub use topom::{ServiceControl, TopomService};
