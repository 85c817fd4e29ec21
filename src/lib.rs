//! topom: the coordinator ("dashboard") of a Codis-style sharded Redis cluster,
//! served over gRPC.
//!
//! # Layout
//!
//! | module          | holds                                                                  |
//! |-----------------|------------------------------------------------------------------------|
//! | [`config`]      | the TOML config (Codis key names), defaults, validation                |
//! | [`model`]       | pure data: slots, groups, proxies, sentinels, stats, `Addr`; Codis JSON|
//! | [`store`]       | `MetaStore` trait + backends (local, etcd, memory); typed Store; keys  |
//! | [`redis`]       | every Redis/Sentinel conversation, on the `redis` crate: add-server    |
//! |                 | probe, INFO rounds, replication (SLAVEOF), Sentinel admin and          |
//! |                 | `+switch-master`, plain-Redis and codis migrators; one `Conn`, one     |
//! |                 | `Dialer` (AUTH), a byte budget per reply, one error classifier         |
//! | [`coordinator`] | the core: validation, state machines, the slot table, barrier, leases  |
//! | [`tasks`]       | background loops (stats refresh, sync, slot actions, Sentinel watch)   |
//! | [`grpc`]        | the only place that sees protobuf types: services, auth, limits, status|
//! | [`pb`]          | the generated messages and services (plus the pre-encoded fast server) |
//! | [`metrics`]     | `/metrics` + `/healthz` over HTTP; the RPC metrics tower layer         |
//! | [`server`]      | composition root: config → store → coordinator → tasks → gRPC          |
//! | [`cli`]         | the admin CLI (talks gRPC only)                                        |
//!
//! Dependency rule (an arrow means "may use"):
//!
//! ```text
//! server ─► grpc ─► coordinator ─► store ─► model
//!    │        │          └───────► redis ─► model
//!    ├─► metrics ─► coordinator (its recorder and state; HTTP only)
//!    ├─► tasks ─► coordinator
//!    └─► store::{local, etcd}, redis::{Connector, PooledProbe, PooledHa, *Migrator}
//!        (concrete backends are chosen only in server)
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
