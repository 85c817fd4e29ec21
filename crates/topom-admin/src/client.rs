//! The connection to topom: endpoint, bearer token, per-call deadline.

use std::future::Future;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use super::error::CliError;
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
        $crate::client::call!(ctx, $method, $req, deadline)
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
