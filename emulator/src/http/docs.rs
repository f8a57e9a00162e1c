//! Handlers that serve the API's description: `GET /openapi.json` and `GET
//! /openapi/postman.json`.
//!
//! Why a module of its own: [`crate::openapi`] builds the document from the handler modules'
//! types (the control plane's among them), so the handlers that serve it cannot live in one of
//! those modules without the two importing each other.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /openapi.json`
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::document_text()).into_response()
}

/// `GET /openapi/postman.json`
pub async fn postman() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::POSTMAN_COLLECTION).into_response()
}
