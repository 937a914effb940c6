//! Operations endpoints (spec §11.12): `GET /healthz` and `GET /metrics`.

use axum::extract::State;
use axum::http::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use coffer_core::api::ProblemKind;
use coffer_core::primitives::ct_eq;

use super::{ApiError, AppState};

/// `/healthz` and `/metrics`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// `200 ok` when the stores answer, `503` otherwise (and, from the framing middleware, while
/// load is being shed).
async fn healthz(State(state): State<AppState>) -> Response {
    let healthy =
        state.meta.health().await.is_ok() && state.blobs.blob_length("healthz").await.is_ok();
    let (status, text) = if healthy {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let mut resp = (status, text).into_response();
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Prometheus text, only with the operator's bearer token (`server.metrics-token`); without a
/// configured token the endpoint does not exist (`404`).
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(token) = state.config.file.server.metrics_token.as_deref() else {
        return Err(ApiError::not_found());
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t);
    let ok = presented.is_some_and(|t| {
        // Compare digests so that the comparison is constant-time whatever the lengths.
        ct_eq(
            &coffer_core::primitives::sha256(t.as_bytes()),
            &coffer_core::primitives::sha256(token.as_bytes()),
        )
    });
    if !ok {
        return Err(ApiError::new(
            ProblemKind::Unauthenticated,
            "the operator token is required",
        )
        .with_header(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"coffer-operator\""),
        ));
    }
    let mut resp = state.metrics.render().into_response();
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
