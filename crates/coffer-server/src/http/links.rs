//! Control-plane handlers: links.

use axum::Router;

use super::AppState;

/// This module's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
