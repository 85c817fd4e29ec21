//! The single mapping from the core's error codes to gRPC statuses.

use tonic::{Code, Status};

use crate::coordinator::{Error, ErrorCode};

/// The metadata key naming the leader, in a standby's answers.
pub const LEADER_METADATA: &str = "topom-leader";

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = match e.code() {
            ErrorCode::InvalidArgument => Code::InvalidArgument,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::FailedPrecondition => Code::FailedPrecondition,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::Unimplemented => Code::Unimplemented,
            ErrorCode::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorCode::DataLoss => Code::DataLoss,
        };
        let mut status = Status::new(code, e.to_string());
        // Clients follow this to the leader (see the API's error list).
        if let Some(leader) = e.leader().and_then(|l| l.parse().ok()) {
            status.metadata_mut().insert(LEADER_METADATA, leader);
        }
        status
    }
}
