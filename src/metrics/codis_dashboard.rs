//! The two calls of a `codis-proxy --dashboard=ADDR` registering itself, so
//! existing start scripts keep working with ADDR = topom's `metrics_addr`:
//! `GET /api/topom/model` (the proxy checks the product name) and `PUT
//! /api/topom/proxy/online/XAUTH/ADMIN_ADDR` (XAUTH of the product name, as a
//! Codis dashboard's), answered as AddCodisProxy. Errors are Codis's: HTTP 800
//! with `{"Cause": ..., "Stack": null}`, which the proxy logs before retrying.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};

use crate::codis_proxy::xauth_of;
use crate::coordinator::{Coordinator, ErrorCode};

/// Codis's status for a refusal.
const REMOTE_ERROR: u16 = 800;

/// The routes, to merge into the metrics endpoint's router.
pub fn router(coordinator: Arc<Coordinator>) -> Router {
    Router::new()
        .route("/api/topom/model", get(model))
        .route("/api/topom/proxy/online/{xauth}/{addr}", put(online))
        .with_state(coordinator)
}

async fn model(State(c): State<Arc<Coordinator>>) -> Response {
    json(StatusCode::OK, &c.owner())
}

async fn online(
    State(c): State<Arc<Coordinator>>,
    Path((xauth, addr)): Path<(String, String)>,
) -> Response {
    if xauth != xauth_of(&[c.product()]) {
        return refuse("invalid xauth, please check product name & auth".into());
    }
    match c.add_codis_proxy(&addr).await {
        Ok(_) => json(StatusCode::OK, &"OK"),
        // A proxy restarted with the same addresses has the same token: its
        // driver sees it offline and sends it everything again.
        Err(e) if e.code() == ErrorCode::AlreadyExists => json(StatusCode::OK, &"OK"),
        Err(e) => refuse(e.to_string()),
    }
}

fn refuse(cause: String) -> Response {
    let status = StatusCode::from_u16(REMOTE_ERROR).unwrap_or(StatusCode::BAD_REQUEST);
    json(
        status,
        &serde_json::json!({ "Cause": cause, "Stack": null }),
    )
}

fn json<T: serde::Serialize + ?Sized>(status: StatusCode, v: &T) -> Response {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
