//! Support code shared by the benches: each bench includes it with `mod support;`
//! (Cargo does not take `benches/support/mod.rs` for a bench target of its own).
//!
//! - [`args`]: the `--name value` and `--flag` command line.
//! - [`figures`]: sorting samples and reading percentiles from them.
//! - [`procfs`]: RSS, CPU ticks and limits from `/proc`; [`cpu_meter`] turns
//!   samples of those into CPU per unit of work.
//! - [`raw_grpc`]: a codec that sends a prost request and keeps the response as bytes.
//! - [`fake_redis`]: INFO texts and fake RESP responders on loopback ports.
//! - [`topom`]: the release `topom` on a pre-filled store; [`cluster`]: the
//!   group and slot set-up the live benches share.
//! - [`common`]: the integration tests' fixtures (real redis-server, sentinel,
//!   the topom launcher), included once here so the benches reuse them.

// Each bench uses a different subset of these helpers.
#![allow(dead_code)]

pub mod args;
pub mod cluster;
#[path = "../../tests/common/mod.rs"]
pub mod common;
pub mod cpu_meter;
pub mod fake_redis;
pub mod figures;
pub mod procfs;
pub mod raw_grpc;
pub mod topom;
