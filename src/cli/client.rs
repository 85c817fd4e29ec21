//! The connection to topom: endpoint, bearer token, per-call deadline, and the
//! error every command returns (which decides the message and exit code).

use std::future::Future;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use super::output::Output;
use crate::pb::topom_client::TopomClient;
use crate::units::format_duration;

/// The generated client, with the bearer token attached to every call.
pub type Client = TopomClient<InterceptedService<Channel, BearerAuth>>;

/// Adds `authorization: Bearer <token>` to every request when a token is set.
#[derive(Debug, Clone)]
pub struct BearerAuth(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            req.metadata_mut().insert("authorization", value.clone());
        }
        Ok(req)
    }
}

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
            Self::Connect { .. } | Self::Status(_) | Self::Output(_) => 1,
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

/// The innermost error of a chain: transport errors wrap the useful part
/// ("Connection refused") under several generic layers.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// How to reach topom.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL, e.g. `http://127.0.0.1:18080`.
    pub addr: String,
    /// The admin token, if any.
    pub token: Option<String>,
    /// Deadline of a connection attempt and of each unary call.
    pub timeout: Duration,
}

/// A connected client plus what every command needs to call and print.
pub struct Ctx {
    client: Client,
    addr: String,
    timeout: Duration,
    /// How to print results.
    pub out: Output,
}

impl Ctx {
    /// Connects to topom (eagerly, so a wrong address fails with a clear message).
    pub async fn connect(target: &Target, out: Output) -> Result<Self, CliError> {
        let auth = match target.token.as_deref() {
            Some(token) => Some(MetadataValue::try_from(format!("Bearer {token}")).map_err(
                |_| CliError::Usage("invalid token: only visible ASCII is allowed".to_string()),
            )?),
            None => None,
        };
        let endpoint = Endpoint::from_shared(target.addr.clone())
            .map_err(|e| CliError::Usage(format!("invalid address {}: {e}", target.addr)))?
            .connect_timeout(target.timeout);
        let connect_error = |cause: String| CliError::Connect {
            addr: target.addr.clone(),
            cause,
        };
        // connect_timeout bounds the TCP handshake only; this also bounds DNS
        // and the HTTP/2 handshake.
        let channel = tokio::time::timeout(target.timeout, endpoint.connect())
            .await
            .map_err(|_| {
                connect_error(format!(
                    "no connection within {}",
                    format_duration(target.timeout)
                ))
            })?
            .map_err(|e| connect_error(root_cause(&e)))?;
        Ok(Self {
            client: TopomClient::with_interceptor(channel, BearerAuth(auth)),
            addr: target.addr.clone(),
            timeout: target.timeout,
            out,
        })
    }

    /// A handle for one call (clones share the connection).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The per-call deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Wraps a request message, telling the server the deadline (`grpc-timeout`)
    /// so it can stop work the client no longer waits for.
    pub fn request<T>(&self, msg: T, deadline: Duration) -> Request<T> {
        let mut req = Request::new(msg);
        req.set_timeout(deadline);
        req
    }

    /// Awaits a call with the client-side deadline; tonic enforces none itself.
    pub async fn finish<T>(
        &self,
        deadline: Duration,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, CliError> {
        match tokio::time::timeout(deadline, call).await {
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(status)) => Err(CliError::Status(status)),
            Err(_) => Err(CliError::Status(Status::deadline_exceeded(format!(
                "no answer from {} within {} (raise --timeout)",
                self.addr,
                format_duration(deadline)
            )))),
        }
    }
}

/// Calls a unary RPC with the default deadline and returns the response
/// message: `call!(ctx, list_slots, pb::ListSlotsRequest {})`. Add a fourth
/// argument to use another deadline.
macro_rules! call {
    ($ctx:expr, $method:ident, $req:expr) => {{
        let ctx = &$ctx;
        let deadline = ctx.timeout();
        $crate::cli::client::call!(ctx, $method, $req, deadline)
    }};
    ($ctx:expr, $method:ident, $req:expr, $deadline:expr) => {{
        let ctx = &$ctx;
        let deadline: ::std::time::Duration = $deadline;
        let mut client = ctx.client();
        ctx.finish(deadline, client.$method(ctx.request($req, deadline)))
            .await
    }};
}
pub(crate) use call;

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
        let pipe = CliError::from_io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(pipe.exit_code(), 0);
        assert!(pipe.message().is_none());
    }

    #[tokio::test]
    async fn connection_refused_names_the_address() {
        // Bind then drop a listener to get a local port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let target = Target {
            addr: format!("http://127.0.0.1:{port}"),
            token: None,
            timeout: Duration::from_secs(2),
        };
        let err = match Ctx::connect(&target, Output { json: false }).await {
            Ok(_) => panic!("connected to a closed port"),
            Err(e) => e,
        };
        let message = err.message().unwrap();
        assert!(message.contains(&target.addr), "{message}");
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }
}
