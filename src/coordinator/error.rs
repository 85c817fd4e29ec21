//! The coordinator's errors. Each variant is a kind a client can act on; the gRPC
//! edge maps kinds to status codes in one place (`grpc::status`).

use crate::redis::RedisError;
use crate::store::StoreError;

/// Result alias for coordinator operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input: an id out of range, a bad address, an empty list.
    #[error("{0}")]
    InvalidArgument(String),
    /// An unknown group, server, slot action, proxy or sentinel.
    #[error("{0}")]
    NotFound(String),
    /// Creating what already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// Valid input that the current state forbids.
    #[error("{0}")]
    FailedPrecondition(String),
    /// This instance does not hold the ownership lock right now.
    #[error("topom is not serving writes: {0}")]
    NotOnline(String),
    /// A capability that is not built yet.
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    /// A Redis server could not be used.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Shorthands that keep validation code short.
pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

pub(crate) fn not_found(msg: impl Into<String>) -> Error {
    Error::NotFound(msg.into())
}

pub(crate) fn exists(msg: impl Into<String>) -> Error {
    Error::AlreadyExists(msg.into())
}

pub(crate) fn precondition(msg: impl Into<String>) -> Error {
    Error::FailedPrecondition(msg.into())
}
