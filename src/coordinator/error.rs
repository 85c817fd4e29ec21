//! The coordinator's errors. Each has an [`ErrorCode`] a client can act on, decided
//! here, beside the errors it classifies (including the Redis and store errors the
//! core passes on); the gRPC edge only translates codes to statuses.

use crate::codis_proxy::CodisProxyError;
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
    /// This instance is a standby; `leader` is the leader's address when known.
    #[error("{}", not_leader_message(.leader.as_deref()))]
    NotLeader {
        /// The leader's gRPC address, when one leads.
        leader: Option<String>,
    },
    /// This instance has just taken the lock and is still reloading the
    /// product; nothing was done, retry shortly.
    #[error("this topom is taking over as leader (reloading the product); retry shortly")]
    TakingOver,
    /// What was waited for did not happen in time.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A capability that is not built yet.
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    /// A Redis server could not be used.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A codis-proxy's admin API could not be used.
    #[error(transparent)]
    CodisProxy(#[from] CodisProxyError),
}

/// What a caller can do about an [`Error`]; the transport maps each to its own
/// status (gRPC: the code of the same name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Fix the request.
    InvalidArgument,
    /// The thing named does not exist.
    NotFound,
    /// It exists already.
    AlreadyExists,
    /// Change the state first (or wait for an action to finish).
    FailedPrecondition,
    /// Retry later, or elsewhere: a server, the store or this instance is not available.
    Unavailable,
    /// Not built.
    Unimplemented,
    /// It did not happen in time (it may still).
    DeadlineExceeded,
    /// The store holds a record that cannot be read.
    DataLoss,
}

impl Error {
    /// The kind of failure, for the transport's status.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Error::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            Error::NotOnline(_) | Error::NotLeader { .. } | Error::TakingOver => {
                ErrorCode::Unavailable
            }
            Error::Unimplemented(_) => ErrorCode::Unimplemented,
            Error::DeadlineExceeded(_) => ErrorCode::DeadlineExceeded,
            // A server that cannot be reached may come back; one that refuses
            // our password or is not Redis will not until someone acts.
            Error::Redis(r) => match r {
                RedisError::Connect { .. } | RedisError::Timeout { .. } => ErrorCode::Unavailable,
                RedisError::Auth { .. }
                | RedisError::Unsupported { .. }
                | RedisError::Reply { .. }
                | RedisError::NotRedis { .. } => ErrorCode::FailedPrecondition,
            },
            Error::CodisProxy(e) => {
                if e.is_unreachable() {
                    ErrorCode::Unavailable
                } else {
                    ErrorCode::FailedPrecondition
                }
            }
            Error::Store(s) => match s {
                StoreError::Unavailable(_) | StoreError::LockLost(_) | StoreError::Io { .. } => {
                    ErrorCode::Unavailable
                }
                StoreError::Locked { .. } => ErrorCode::FailedPrecondition,
                StoreError::Corrupt { .. } => ErrorCode::DataLoss,
            },
        }
    }
}

fn not_leader_message(leader: Option<&str>) -> String {
    match leader {
        Some(addr) => format!(
            "this topom is a standby; the leader is at {addr} (send mutations and watches there)"
        ),
        None => "this topom is a standby and no instance leads right now; retry shortly".into(),
    }
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
