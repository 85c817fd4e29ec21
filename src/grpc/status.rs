//! The single mapping from coordinator errors to gRPC statuses.

use tonic::{Code, Status};

use crate::coordinator::Error;
use crate::redis::RedisError;
use crate::store::StoreError;

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = match &e {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::NotOnline(_) => Code::Unavailable,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::Redis(r) => match r {
                RedisError::Connect { .. } | RedisError::Timeout { .. } => Code::Unavailable,
                RedisError::Auth { .. } | RedisError::Unsupported { .. } => {
                    Code::FailedPrecondition
                }
                RedisError::Reply { .. } | RedisError::NotRedis { .. } => Code::FailedPrecondition,
            },
            Error::Store(s) => match s {
                StoreError::Unavailable(_) | StoreError::LockLost(_) | StoreError::Io { .. } => {
                    Code::Unavailable
                }
                StoreError::Locked { .. } => Code::FailedPrecondition,
                StoreError::Corrupt { .. } => Code::DataLoss,
            },
        };
        Status::new(code, e.to_string())
    }
}
