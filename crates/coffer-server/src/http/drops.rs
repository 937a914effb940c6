//! Data-plane handlers: drops (helper "data" fills this module; spec §11.8–§11.11).

use axum::Router;

use super::AppState;

/// This module's routes, with full `/v1/...` paths; mounted by [`super::data_routes`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
