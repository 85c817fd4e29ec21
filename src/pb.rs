//! Code generated from `proto/topom/v1` (package `topom.v1`).

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("topom.v1");

/// The encoded descriptor set served by the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("topom_descriptor");

pub mod encoded;

/// The Topom server whose ListSlots and WatchStats answer with pre-encoded
/// messages ([`encoded::Encoded`]); every other type is from this module.
pub mod fast {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/fast/topom.v1.rs"));
}
