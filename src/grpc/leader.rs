//! The `topom-leader` response header: every answer of a standby names the
//! leader, so a client that reached a standby for a read learns where
//! mutations go without a failed call. (A standby's refusals also carry it in
//! their status metadata, see `status.rs`.)

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

use super::status::LEADER_METADATA;
use crate::coordinator::{Coordinator, Role};

/// Adds the header to responses while this instance stands by.
#[derive(Clone)]
pub struct LeaderHeaderLayer(pub Arc<Coordinator>);

impl<S> Layer<S> for LeaderHeaderLayer {
    type Service = LeaderHeader<S>;

    fn layer(&self, inner: S) -> LeaderHeader<S> {
        LeaderHeader {
            inner,
            coordinator: self.0.clone(),
        }
    }
}

/// The service produced by [`LeaderHeaderLayer`].
#[derive(Clone)]
pub struct LeaderHeader<S> {
    inner: S,
    coordinator: Arc<Coordinator>,
}

impl<S, B, RB> Service<Request<B>> for LeaderHeader<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Response<RB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let call = self.inner.call(req);
        let coordinator = self.coordinator.clone();
        Box::pin(async move {
            let mut resp = call.await?;
            if coordinator.role() == Role::Standby
                && let Some(value) = coordinator
                    .leader_addr()
                    .and_then(|l| HeaderValue::from_str(&l).ok())
            {
                resp.headers_mut().insert(LEADER_METADATA, value);
            }
            Ok(resp)
        })
    }
}
