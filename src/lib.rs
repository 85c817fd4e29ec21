//! topom: the coordinator ("dashboard") of a Codis-style sharded Redis cluster,
//! served over gRPC.
//!
//! # Layout
//!
//! | module          | holds                                                           |
//! |-----------------|-----------------------------------------------------------------|
//! | [`model`]       | pure data: slots, groups, proxies, sentinels; Codis JSON names  |
//! | [`store`]       | `MetaStore` trait + backends (local, etcd, memory); typed Store |
//! | [`redis`]       | talking to Redis servers: probes, INFO                           |
//! | [`coordinator`] | the core: validation, state machines, the slot table            |
//! | [`grpc`]        | the only place that sees protobuf types: services, auth, status |
//! | [`tasks`]       | background loops (stats refresh), joined on shutdown            |
//! | [`metrics`]     | `/metrics` + `/healthz` over HTTP; the RPC metrics tower layer   |
//! | [`server`]      | composition root: config → store → coordinator → gRPC           |
//! | [`cli`]         | the admin CLI (talks gRPC only)                                 |
//!
//! Dependency rule (an arrow means "may use"):
//!
//! ```text
//! server ─► grpc ─► coordinator ─► store ─► model
//!    ├─► metrics ───────┘ (reads the core's recorder and state; HTTP only)
//!    │                   └───────► redis ─► model
//!    └─► store::{local, etcd}  (concrete backends are chosen only in server)
//! cli ─► pb (generated client)
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod coordinator;
pub mod grpc;
pub mod metrics;
pub mod model;
pub mod pb;
pub mod redis;
pub mod server;
pub mod store;
pub mod tasks;
