//! topom: the coordinator ("dashboard") of a Codis-style sharded Redis cluster,
//! served over gRPC.
//!
//! # Layout
//!
//! The service crate. The API (generated code, the pre-encoded response type,
//! limits, units) is the `topom-proto` crate, re-exported as [`pb`]; the CLI is the
//! `topom-admin` crate, which links only `topom-proto`.
//!
//! | module          | holds                                                                  |
//! |-----------------|------------------------------------------------------------------------|
//! | [`config`]      | the TOML config (Codis key names): typed fields, defaults, validate()  |
//! | [`model`]       | pure data: slots, groups, proxies, sentinels, stats, `Addr`; Codis JSON|
//! | [`store`]       | `MetaStore` trait + backends (local, etcd, memory); typed Store; keys; |
//! |                 | the ownership lock, campaigning for it on etcd (leader/standby)        |
//! | [`redis`]       | every Redis/Sentinel conversation, on the `redis` crate: add-server    |
//! |                 | probe, INFO rounds, replication (SLAVEOF), Sentinel admin and          |
//! |                 | `+switch-master`, plain-Redis and codis migrators and the throttle     |
//! |                 | they share; one `Conn`, one `Dialer` (AUTH), a byte budget per reply,  |
//! |                 | one error classifier                                                   |
//! | [`coordinator`] | the core: validation, state machines, the slot table, barrier, leases, |
//! |                 | leadership (role, takeover, resign);                                   |
//! |                 | its errors carry an `ErrorCode` the transport maps                     |
//! | [`tasks`]       | background loops: stats refresh, sync engine, slot-action engine,      |
//! |                 | Sentinel watch                                                         |
//! | [`grpc`]        | the only place that sees protobuf types: `router` (services, health,   |
//! |                 | reflection, layers), the Topom RPCs by area (`topom/`), conversion,    |
//! |                 | auth, limits, status; WatchStats rounds sent as shared bytes past      |
//! |                 | tonic's codec (`watch_route`); stats encoded from the round            |
//! |                 | (`stats_encode`)                                                       |
//! | [`metrics`]     | `/metrics` + `/healthz` over HTTP; the RPC metrics tower layer         |
//! | [`server`]      | composition root: config → store → coordinator → gRPC; leader terms    |
//! |                 | (the leader-only tasks per term, a standby following the store)        |
//! | [`codis_store`] | offline `topom import`/`export`: a Codis store (fs, etcd, dump) ⇄ ours |
//! | [`codis_proxy`] | the HTTP admin API of unmodified codis-proxies (xauth, Codis JSON)     |
//! | [`pb`], [`units`] | re-exports of `topom-proto` and its duration/size parser             |
//!
//! Dependency rule (an arrow means "may use"):
//!
//! ```text
//! server ─► grpc ─► coordinator ─► store ─► model ─► topom_proto::limits
//!    │        │          ├───────► redis ─► model
//!    │        │          └───────► codis_proxy ─► model
//!    │        ├─► config (GetOverview's view, auth settings), metrics (RPC layer)
//!    │        └─► pb (topom-proto)
//!    ├─► config ─► coordinator (Settings::from(&Config)), units
//!    ├─► metrics ─► coordinator (its recorder and state; HTTP only), codis_proxy (xauth)
//!    ├─► tasks ─► coordinator
//!    └─► store::{local, etcd}, redis::{Connector, PooledProbe, PooledHa, *Migrator},
//!        codis_proxy::HttpCodisProxies
//!        (concrete backends are chosen only in server)
//! codis_store ─► server::open_store, store (+ local/etcd for Codis sources), model, config
//!        (an offline tool beside server; the coordinator is not involved)
//! topom-admin ─► topom-proto (generated client, limits, units)
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codis_proxy;
pub mod codis_store;
pub mod config;
pub mod coordinator;
pub mod grpc;
pub mod metrics;
pub mod model;
pub use topom_proto as pb;
pub mod redis;
pub mod server;
pub mod store;
pub mod tasks;
pub use topom_proto::units;
