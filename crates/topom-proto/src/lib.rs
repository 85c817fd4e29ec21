//! topom's public API, as every Rust side of it sees it: the messages and services
//! generated from `proto/topom/v1` (package `topom.v1`, at the crate root), the
//! pre-encoded response type of the service's fast paths ([`encoded`]), the limits
//! the API enforces ([`limits`]), and the one way durations and sizes are written
//! ([`units`]). The service (`topom`) and the CLI (`topom-admin`) both build on it;
//! the CLI links nothing else of the service.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod encoded;
pub mod limits;
pub mod units;

/// The generated code: spared the lints hand-written code gets.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod generated {
    tonic::include_proto!("topom.v1");
}
pub use generated::*;

/// The encoded descriptor set served by the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("topom_descriptor");

/// The Topom server whose ListSlots, GetStats and WatchStats answer with pre-encoded
/// messages ([`encoded::Encoded`]); every other type is from this module.
pub mod fast {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/fast/topom.v1.rs"));
}
