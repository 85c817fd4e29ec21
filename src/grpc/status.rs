//! The single mapping from the core's error codes to gRPC statuses.

use tonic::{Code, Status};

use crate::coordinator::{Error, ErrorCode};

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = match e.code() {
            ErrorCode::InvalidArgument => Code::InvalidArgument,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::FailedPrecondition => Code::FailedPrecondition,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::Unimplemented => Code::Unimplemented,
            ErrorCode::DataLoss => Code::DataLoss,
        };
        Status::new(code, e.to_string())
    }
}
