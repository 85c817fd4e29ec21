//! The connections to topom: endpoints, bearer token, per-call deadline, and
//! the loop that follows the leader (its rule is in `follow`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use super::error::CliError;
use super::follow::{self, Endpoints, Outcome};
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
    /// The endpoints as URLs, e.g. `http://127.0.0.1:18080`; at least one.
    pub addrs: Vec<String>,
    /// The admin token, if any.
    pub token: Option<String>,
    /// Deadline of a connection attempt and of each unary call.
    pub timeout: Duration,
}

/// One RPC as `Ctx::call` runs it.
#[derive(Debug, Clone, Copy)]
pub struct Rpc {
    /// The generated client method, e.g. `create_group`.
    pub method: &'static str,
    /// The client-side deadline (of opening, for a stream).
    pub deadline: Duration,
    /// A stream gets no `grpc-timeout`: it is meant to outlive any deadline.
    pub stream: bool,
}

/// The clients of this process plus what every command needs to call and print.
pub struct Ctx {
    endpoints: Mutex<Endpoints>,
    /// Connections made so far, by endpoint; made on first use, so that a
    /// dead endpoint early in the list costs only when it is reached.
    clients: Mutex<HashMap<String, Client>>,
    auth: BearerAuth,
    timeout: Duration,
    /// How to print results.
    pub out: Output,
}

impl Ctx {
    /// Checks the target; connections are made by the first call.
    pub fn new(target: &Target, out: Output) -> Result<Self, CliError> {
        let auth = match target.token.as_deref() {
            Some(token) => Some(MetadataValue::try_from(format!("Bearer {token}")).map_err(
                |_| CliError::Usage("invalid token: only visible ASCII is allowed".to_string()),
            )?),
            None => None,
        };
        if target.addrs.is_empty() {
            return Err(CliError::Usage(
                "no topom address given (--addr host:port[,host:port...])".to_string(),
            ));
        }
        for addr in &target.addrs {
            Endpoint::from_shared(addr.clone())
                .map_err(|e| CliError::Usage(format!("invalid address {addr}: {e}")))?;
        }
        Ok(Self {
            endpoints: Mutex::new(Endpoints::new(target.addrs.clone())),
            clients: Mutex::new(HashMap::new()),
            auth: BearerAuth(auth),
            timeout: target.timeout,
            out,
        })
    }

    /// The per-call deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The client of `addr`, connecting first (eagerly, so that a dead
    /// endpoint fails here, before anything is sent).
    async fn client(&self, addr: &str) -> Result<Client, CliError> {
        if let Some(c) = lock(&self.clients).get(addr) {
            return Ok(c.clone());
        }
        let connect_error = |cause: String| CliError::Connect {
            addr: addr.to_string(),
            cause,
        };
        let endpoint = Endpoint::from_shared(addr.to_string())
            .map_err(|e| connect_error(e.to_string()))?
            .connect_timeout(self.timeout);
        // connect_timeout bounds the TCP handshake only; this also bounds DNS
        // and the HTTP/2 handshake.
        let channel = tokio::time::timeout(self.timeout, endpoint.connect())
            .await
            .map_err(|_| {
                connect_error(format!(
                    "no connection within {}",
                    format_duration(self.timeout)
                ))
            })?
            .map_err(|e| connect_error(root_cause(&e)))?;
        let client = TopomClient::with_interceptor(channel, self.auth.clone());
        lock(&self.clients).insert(addr.to_string(), client.clone());
        Ok(client)
    }

    /// Runs `rpc` with `req`, following the leader a standby names and moving
    /// past endpoints that cannot serve it (the rule is in [`follow`]).
    pub async fn call<Req, Resp, F, Fut>(
        &self,
        rpc: Rpc,
        req: Req,
        send: F,
    ) -> Result<Resp, CliError>
    where
        Req: Clone,
        F: Fn(Client, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let read = follow::is_read(rpc.method);
        let name = rpc_name(rpc.method);
        let mut walk = lock(&self.endpoints).pass();
        let mut last = None;
        while let Some(addr) = walk.next_endpoint() {
            let client = match self.client(&addr).await {
                Ok(c) => c,
                Err(e) => {
                    walk.failed(addr, short(&e), None);
                    last = Some(e);
                    continue;
                }
            };
            let mut request = Request::new(req.clone());
            if !rpc.stream {
                // Tells the server the deadline so it can stop work the
                // client no longer waits for.
                request.set_timeout(rpc.deadline);
            }
            let status = match tokio::time::timeout(rpc.deadline, send(client, request)).await {
                Ok(Ok(resp)) => {
                    lock(&self.endpoints).settle(&addr);
                    return Ok(resp.into_inner());
                }
                Ok(Err(status)) => status,
                Err(_) => return Err(no_answer(read, name, addr, rpc.deadline)),
            };
            let leader = match follow::classify(rpc.method, &status) {
                Outcome::Final => return Err(CliError::Status(status)),
                Outcome::Deadline => return Err(no_answer(read, name, addr, rpc.deadline)),
                Outcome::Broken if !read => {
                    return Err(CliError::OutcomeUnknown {
                        code: Code::Unavailable,
                        rpc: name,
                        addr,
                        cause: format!("the connection broke ({})", transport_cause(&status)),
                    });
                }
                Outcome::Redirect(leader) => Some(leader),
                Outcome::NotSent | Outcome::Unavailable | Outcome::Broken => None,
            };
            if let Some(leader) = &leader {
                lock(&self.endpoints).learn(leader);
            }
            let why = match &leader {
                Some(l) => format!("{}; leader {l}", status_line(&status)),
                None if std::error::Error::source(&status).is_some() => transport_cause(&status),
                None => status_line(&status),
            };
            walk.failed(addr, why, leader.as_deref());
            last = Some(CliError::Status(status));
        }
        match (walk.tried().len(), last) {
            (1, Some(only)) => Err(only),
            _ => Err(CliError::Exhausted {
                rpc: name,
                tried: walk.tried().to_vec(),
            }),
        }
    }
}

/// No answer came within `deadline`: for a mutation, its outcome is unknown.
fn no_answer(read: bool, rpc: String, addr: String, deadline: Duration) -> CliError {
    let within = format_duration(deadline);
    if read {
        return CliError::Status(Status::deadline_exceeded(format!(
            "no answer to {rpc} from {addr} within {within} (raise --timeout)"
        )));
    }
    CliError::OutcomeUnknown {
        code: Code::DeadlineExceeded,
        rpc,
        addr,
        cause: format!("no answer came within {within} (raise --timeout)"),
    }
}

/// A std mutex never held across an await; a panic elsewhere cannot poison
/// plain bookkeeping.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `create_group` -> `CreateGroup`, as the API names the RPC.
fn rpc_name(method: &str) -> String {
    method
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `CODE: message`, as errors print.
fn status_line(status: &Status) -> String {
    CliError::Status(status.clone())
        .message()
        .unwrap_or_default()
}

/// The transport error under a client-made status.
fn transport_cause(status: &Status) -> String {
    std::error::Error::source(status).map_or_else(|| status.message().to_string(), root_cause)
}

/// One endpoint's failure, for the list of endpoints tried.
fn short(e: &CliError) -> String {
    match e {
        CliError::Connect { cause, .. } => format!("cannot connect: {cause}"),
        other => other.message().unwrap_or_default(),
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
        let rpc = $crate::client::Rpc {
            method: stringify!($method),
            deadline: $deadline,
            stream: false,
        };
        $ctx.call(rpc, $req, |mut client, req| async move {
            client.$method(req).await
        })
        .await
    }};
}
pub(crate) use call;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_names() {
        assert_eq!(
            rpc_name("create_slot_action_range"),
            "CreateSlotActionRange"
        );
        assert_eq!(rpc_name("resign"), "Resign");
    }

    #[tokio::test]
    async fn connection_refused_names_the_address() {
        // Bind then drop a listener to get a local port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let addr = format!("http://127.0.0.1:{port}");
        let target = Target {
            addrs: vec![addr.clone()],
            token: None,
            timeout: Duration::from_secs(2),
        };
        let ctx = Ctx::new(&target, Output { json: false }).unwrap();
        let err = match call!(ctx, list_slots, crate::pb::ListSlotsRequest {}) {
            Ok(_) => panic!("connected to a closed port"),
            Err(e) => e,
        };
        let message = err.message().unwrap();
        assert!(message.contains(&addr), "{message}");
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }
}
