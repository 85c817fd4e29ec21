//! Admin-token check for gRPC requests, as a tower layer in front of every service.
//!
//! Mutating RPCs need `authorization: Bearer <admin_token>` when a token is
//! configured; reads stay open unless `auth_reads` is set. Health and reflection
//! are always open so that probes and grpcurl work.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::Status;
use tower::{Layer, Service};

/// Topom RPCs that change nothing (open unless `auth_reads`).
const READS: &[&str] = &[
    "GetOverview",
    "GetModel",
    "GetServerInfo",
    "GetSentinelInfo",
    "ListEvents",
    "GetStats",
    "WatchStats",
    "RefreshRedisStats",
    "ListSlots",
    "ListGroups",
    "GetGroup",
    "ListSentinels",
    "ListProxies",
];

/// The policy: which token, and whether reads need it.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    token: Option<Arc<str>>,
    auth_reads: bool,
}

impl AuthLayer {
    /// `token` empty disables the check.
    pub fn new(token: &str, auth_reads: bool) -> AuthLayer {
        AuthLayer {
            token: (!token.is_empty()).then(|| Arc::from(token)),
            auth_reads,
        }
    }

    /// Whether a request for `path` with `header` (the `authorization` value) may pass.
    pub fn check(&self, path: &str, header: Option<&[u8]>) -> Result<(), Status> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        if path.starts_with("/grpc.") {
            return Ok(());
        }
        let method = path.rsplit('/').next().unwrap_or("");
        let is_read = path.starts_with("/topom.v1.Topom/") && READS.contains(&method);
        if is_read && !self.auth_reads {
            return Ok(());
        }
        let Some(header) = header else {
            return Err(Status::unauthenticated(format!(
                "{method} needs the admin token: send metadata `authorization: Bearer <token>` (topom-admin --token)"
            )));
        };
        let presented = header.strip_prefix(b"Bearer ").unwrap_or(b"");
        if constant_time_eq(presented, token.as_bytes()) {
            Ok(())
        } else {
            Err(Status::unauthenticated(format!(
                "{method}: the admin token is wrong"
            )))
        }
    }
}

/// Compares without an early exit, so timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            policy: self.clone(),
        }
    }
}

/// The service produced by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    policy: AuthLayer,
}

impl<S, B, RB> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future =
        futures::future::Either<S::Future, std::future::Ready<Result<Response<RB>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        match self.policy.check(req.uri().path(), header) {
            Ok(()) => futures::future::Either::Left(self.inner.call(req)),
            Err(status) => {
                futures::future::Either::Right(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let open = AuthLayer::new("", false);
        assert!(open.check("/topom.v1.Topom/CreateGroup", None).is_ok());

        let p = AuthLayer::new("s3cret", false);
        assert!(p.check("/topom.v1.Topom/ListSlots", None).is_ok());
        assert!(p.check("/grpc.health.v1.Health/Check", None).is_ok());
        let missing = p.check("/topom.v1.Topom/CreateGroup", None).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("Bearer"));
        let wrong = p
            .check("/topom.v1.Topom/CreateGroup", Some(b"Bearer nope"))
            .unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert!(
            p.check("/topom.v1.Topom/CreateGroup", Some(b"Bearer s3cret"))
                .is_ok()
        );
        assert!(
            p.check("/topom.v1.ProxyControl/RegisterProxy", None)
                .is_err()
        );

        let strict = AuthLayer::new("s3cret", true);
        assert!(strict.check("/topom.v1.Topom/ListSlots", None).is_err());
    }
}
