//! The error every command returns; it decides the message printed and the exit
//! code. Below the client and the output modules, which both produce it.

use tonic::{Code, Status};

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// Bad input the argument parser could not catch alone (exit 2).
    Usage(String),
    /// topom could not be reached (exit 1).
    Connect {
        /// The address tried.
        addr: String,
        /// The innermost cause, e.g. "Connection refused (os error 111)".
        cause: String,
    },
    /// topom answered with an error status (exit 1).
    Status(Status),
    /// Several endpoints were tried and none served the call (exit 1); it
    /// prints as UNAVAILABLE, what each endpoint was.
    Exhausted {
        /// The RPC, e.g. `CreateGroup`.
        rpc: String,
        /// Each endpoint tried, in order, with why it failed.
        tried: Vec<(String, String)>,
    },
    /// A mutation was sent but its outcome is unknown, so it was not retried
    /// on another endpoint (exit 1).
    OutcomeUnknown {
        /// DEADLINE_EXCEEDED or UNAVAILABLE, as printed.
        code: Code,
        /// The RPC, e.g. `CreateGroup`.
        rpc: String,
        /// The endpoint it was sent to.
        addr: String,
        /// What happened, e.g. "no answer came within 10s".
        cause: String,
    },
    /// The answer could not be printed (exit 1).
    Output(String),
    /// stdout was closed by the reader (`| head`): stop quietly (exit 0).
    BrokenPipe,
}

impl CliError {
    /// Maps a write error to stdout.
    pub fn from_io(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Self::BrokenPipe
        } else {
            Self::Output(format!("writing to stdout: {e}"))
        }
    }

    /// The process exit code: 2 for usage errors, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::BrokenPipe => 0,
            Self::Connect { .. }
            | Self::Status(_)
            | Self::Exhausted { .. }
            | Self::OutcomeUnknown { .. }
            | Self::Output(_) => 1,
        }
    }

    /// The line printed to stderr (without the `error: ` prefix); `None` for
    /// errors that end quietly.
    pub fn message(&self) -> Option<String> {
        match self {
            Self::Usage(m) | Self::Output(m) => Some(m.clone()),
            Self::Connect { addr, cause } => {
                Some(format!("cannot connect to topom at {addr}: {cause}"))
            }
            Self::Status(status) => Some(match status.message() {
                "" => code_name(status.code()).to_string(),
                m => format!("{}: {m}", code_name(status.code())),
            }),
            Self::Exhausted { rpc, tried } => {
                let each: Vec<String> = tried
                    .iter()
                    .map(|(a, why)| format!("{a} ({why})"))
                    .collect();
                Some(format!(
                    "UNAVAILABLE: no topom endpoint could serve {rpc}; tried {}",
                    each.join(", ")
                ))
            }
            Self::OutcomeUnknown {
                code,
                rpc,
                addr,
                cause,
            } => Some(format!(
                "{}: {rpc} was sent to {addr}, then {cause}: it may have been applied, so it was \
                 not retried on another endpoint; check the state (e.g. `topom-admin \
                 overview`) before running it again",
                code_name(*code)
            )),
            Self::BrokenPipe => None,
        }
    }
}

/// The canonical gRPC name of a code, as in the API docs (`NOT_FOUND`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let err = CliError::Status(Status::not_found("group-[3] doesn't exist"));
        assert_eq!(
            err.message().as_deref(),
            Some("NOT_FOUND: group-[3] doesn't exist")
        );
        assert_eq!(err.exit_code(), 1);
        let err = CliError::Status(Status::new(Code::Unavailable, ""));
        assert_eq!(err.message().as_deref(), Some("UNAVAILABLE"));
        assert_eq!(code_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        let refused = CliError::Connect {
            addr: "http://127.0.0.1:1".into(),
            cause: "Connection refused (os error 111)".into(),
        };
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(
            refused.message().as_deref(),
            Some(
                "cannot connect to topom at http://127.0.0.1:1: Connection refused (os error 111)"
            )
        );
        let unknown = CliError::OutcomeUnknown {
            code: Code::DeadlineExceeded,
            rpc: "CreateGroup".into(),
            addr: "http://h:1".into(),
            cause: "no answer came within 1s".into(),
        };
        assert_eq!(unknown.exit_code(), 1);
        let m = unknown.message().unwrap();
        assert!(m.starts_with("DEADLINE_EXCEEDED: CreateGroup was sent to http://h:1, then no answer came within 1s: it may have been applied, so it was not retried"), "{m}");
        let all = CliError::Exhausted {
            rpc: "ListSlots".into(),
            tried: vec![
                ("http://a:1".into(), "cannot connect: refused".into()),
                ("http://b:1".into(), "UNAVAILABLE: standby".into()),
            ],
        };
        assert_eq!(all.exit_code(), 1);
        assert_eq!(
            all.message().as_deref(),
            Some(
                "UNAVAILABLE: no topom endpoint could serve ListSlots; tried http://a:1 (cannot connect: refused), http://b:1 (UNAVAILABLE: standby)"
            )
        );
        let pipe = CliError::from_io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(pipe.exit_code(), 0);
        assert!(pipe.message().is_none());
    }
}
