//! One HTTP/1.1 exchange per call on hyper's connection API: no pool, since a
//! proxy gets about one call a second and a fresh connection cannot carry a
//! stale half-read answer of a call that timed out.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::wire::{RemoteError, Slot, Stats};
use super::{CodisProxyApi, CodisProxyError, CodisProxyStats};
use crate::model::{Proxy, Sentinel, SlotView};

/// Codis's own dial timeout for proxy calls.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The largest answer read: a Stats or a model is a few KB; anything this big
/// is not a codis-proxy.
const MAX_BODY: usize = 1 << 20;
/// Codis answers with this non-standard status and a RemoteError body.
const REMOTE_ERROR: u16 = 800;

/// The real client: plain HTTP to each proxy's admin address.
#[derive(Debug, Clone)]
pub struct HttpCodisProxies {
    /// The longest a call (other than stats) may take, connect included.
    request_timeout: Duration,
}

impl Default for HttpCodisProxies {
    fn default() -> Self {
        HttpCodisProxies {
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl HttpCodisProxies {
    /// A client whose calls are bounded by `request_timeout`.
    pub fn new(request_timeout: Duration) -> HttpCodisProxies {
        HttpCodisProxies { request_timeout }
    }

    async fn call(
        &self,
        addr: &str,
        call: &'static str,
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Bytes, CodisProxyError> {
        let no_answer = |reason: String| CodisProxyError::NoAnswer {
            addr: addr.to_owned(),
            call,
            reason,
        };
        let exchange = exchange(addr, call, method, &path, body);
        let (status, bytes) = match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r?,
            Err(_) => return Err(no_answer(format!("no answer within {timeout:?}"))),
        };
        if status == StatusCode::OK {
            return Ok(bytes);
        }
        let not_codis = |detail: String| CodisProxyError::NotCodis {
            addr: addr.to_owned(),
            call,
            detail,
        };
        if status.as_u16() == REMOTE_ERROR {
            return match serde_json::from_slice::<RemoteError>(&bytes) {
                Ok(e) => Err(CodisProxyError::Remote {
                    addr: addr.to_owned(),
                    call,
                    cause: e.cause,
                }),
                Err(_) => Err(not_codis(format!("HTTP 800 with {}", preview(&bytes)))),
            };
        }
        Err(not_codis(format!("HTTP {status} {}", preview(&bytes))))
    }

    async fn put_json(
        &self,
        addr: &str,
        call: &'static str,
        path: String,
        body: Vec<u8>,
    ) -> Result<(), CodisProxyError> {
        self.call(
            addr,
            call,
            Method::PUT,
            path,
            Some(body),
            self.request_timeout,
        )
        .await
        .map(drop)
    }
}

async fn exchange(
    addr: &str,
    call: &'static str,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), CodisProxyError> {
    let unreachable = |reason: String| CodisProxyError::Unreachable {
        addr: addr.to_owned(),
        reason,
    };
    let no_answer = |reason: String| CodisProxyError::NoAnswer {
        addr: addr.to_owned(),
        call,
        reason,
    };
    let not_http = |detail: String| CodisProxyError::NotCodis {
        addr: addr.to_owned(),
        call,
        detail,
    };
    // An answer that is not HTTP, or a connection closed at once without one
    // (Redis does that to an HTTP request), is a wrong address, not a silent
    // proxy: a stopped process keeps the connection open instead.
    let failed = |e: hyper::Error| {
        if e.is_parse() || e.is_parse_status() {
            not_http(format!("something that is not HTTP ({e})"))
        } else if e.is_incomplete_message() {
            not_http("nothing: the connection was closed without an HTTP answer".to_owned())
        } else {
            no_answer(e.to_string())
        }
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => {
            return Err(unreachable(format!(
                "no connection within {CONNECT_TIMEOUT:?}"
            )));
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr);
    if body.is_some() {
        req = req.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| no_answer(format!("cannot build the request: {e}")))?;
    let work = async {
        let rsp = sender.send_request(req).await.map_err(failed)?;
        let status = rsp.status();
        let bytes = Limited::new(rsp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| no_answer(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, bytes))
    };
    // The connection future does the I/O; it is polled beside the request and
    // dropped (closing the socket) once the answer is read.
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = work => r,
        r = &mut conn => Err(match r {
            Ok(()) => not_http("nothing: the connection was closed without an HTTP answer".to_owned()),
            Err(e) => failed(e),
        }),
    }
}

/// The start of a body, for an error naming what answered.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]);
    format!("{:?}", text.trim())
}

fn encode<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Our own plain structs: serialization cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

#[async_trait]
impl CodisProxyApi for HttpCodisProxies {
    async fn model(&self, admin: &str) -> Result<Proxy, CodisProxyError> {
        let call = "GET model";
        let bytes = self
            .call(
                admin,
                call,
                Method::GET,
                "/api/proxy/model".into(),
                None,
                self.request_timeout,
            )
            .await?;
        let p: Proxy = serde_json::from_slice(&bytes).map_err(|e| CodisProxyError::NotCodis {
            addr: admin.to_owned(),
            call,
            detail: format!("{} ({e})", preview(&bytes)),
        })?;
        if p.token.is_empty() {
            return Err(CodisProxyError::NotCodis {
                addr: admin.to_owned(),
                call,
                detail: format!("a model without a token: {}", preview(&bytes)),
            });
        }
        Ok(p)
    }

    async fn xping(&self, admin: &str, xauth: &str) -> Result<(), CodisProxyError> {
        self.call(
            admin,
            "GET xping",
            Method::GET,
            format!("/api/proxy/xping/{xauth}"),
            None,
            self.request_timeout,
        )
        .await
        .map(drop)
    }

    async fn fillslots(
        &self,
        admin: &str,
        xauth: &str,
        slots: &[SlotView],
    ) -> Result<(), CodisProxyError> {
        let body: Vec<Slot<'_>> = slots.iter().map(Slot::from).collect();
        self.put_json(
            admin,
            "PUT fillslots",
            format!("/api/proxy/fillslots/{xauth}"),
            encode(&body),
        )
        .await
    }

    async fn start(&self, admin: &str, xauth: &str) -> Result<(), CodisProxyError> {
        self.put_json(
            admin,
            "PUT start",
            format!("/api/proxy/start/{xauth}"),
            Vec::new(),
        )
        .await
    }

    async fn sentinels(
        &self,
        admin: &str,
        xauth: &str,
        sentinel: &Sentinel,
    ) -> Result<(), CodisProxyError> {
        self.put_json(
            admin,
            "PUT sentinels",
            format!("/api/proxy/sentinels/{xauth}"),
            encode(sentinel),
        )
        .await
    }

    async fn stats(
        &self,
        admin: &str,
        xauth: &str,
        timeout: Duration,
    ) -> Result<CodisProxyStats, CodisProxyError> {
        let call = "GET stats";
        let bytes = self
            .call(
                admin,
                call,
                Method::GET,
                format!("/api/proxy/stats/{xauth}"),
                None,
                timeout,
            )
            .await?;
        let s: Stats = serde_json::from_slice(&bytes).map_err(|e| CodisProxyError::NotCodis {
            addr: admin.to_owned(),
            call,
            detail: format!("{} ({e})", preview(&bytes)),
        })?;
        Ok(s.into())
    }

    async fn shutdown(&self, admin: &str, xauth: &str) -> Result<(), CodisProxyError> {
        self.put_json(
            admin,
            "PUT shutdown",
            format!("/api/proxy/shutdown/{xauth}"),
            Vec::new(),
        )
        .await
    }
}
