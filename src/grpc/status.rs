//! The single mapping from the core's error codes to gRPC statuses.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::coordinator::{Error, ErrorCode};
use crate::store::StoreError;

/// The metadata key naming the leader, in a standby's answers.
pub const LEADER_METADATA: &str = "topom-leader";
/// The metadata key `standby` marks a standby's refusals with.
pub const ROLE_METADATA: &str = "topom-role";

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
        if let Error::TakingOver | Error::Store(StoreError::LockLost(_)) = &e {
            // Refused before doing anything, like a standby's refusal: a leader
            // deposed mid-call (a Resign, a lost lease) had its write fenced.
            status
                .metadata_mut()
                .insert(ROLE_METADATA, MetadataValue::from_static("standby"));
        }
        if let Error::NotLeader { leader } = &e {
            // Clients follow this to the leader (see the API's error list); the
            // role tells a standby's refusal (nothing done, safe to retry
            // elsewhere) from a connection cut mid-call even while nobody leads.
            let md = status.metadata_mut();
            md.insert(ROLE_METADATA, MetadataValue::from_static("standby"));
            if let Some(leader) = leader.as_deref().and_then(|l| l.parse().ok()) {
                md.insert(LEADER_METADATA, leader);
            }
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(status: &Status) -> Option<&str> {
        status
            .metadata()
            .get(ROLE_METADATA)
            .and_then(|v| v.to_str().ok())
    }

    #[test]
    fn a_fenced_write_is_marked_safe_to_send_to_the_next_leader() {
        let lost = Error::Store(StoreError::LockLost("the lock moved".into()));
        let status = Status::from(lost);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(role(&status), Some("standby"));
    }

    #[test]
    fn an_unavailable_store_is_not_marked_safe_to_resend() {
        // The write may have landed: clients must not send it again.
        let gone = Error::Store(StoreError::Unavailable("etcd timed out".into()));
        let status = Status::from(gone);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(role(&status), None);
    }
}
