//! One dispatch for the language bindings: an operation's name and JSON arguments in, the
//! server's answer (status, headers, body bytes) out. Feature `dispatch`.
//!
//! The Python and Node packages call every operation through [`call`]; neither keeps a list of
//! operations of its own. The list is [`operations`], generated from `openapi/openapi.json` by
//! `cargo xtask generate` (`operations.rs`), the same document the bindings' methods and types
//! are generated from, so a method a binding offers always has a row here.
//!
//! Why bytes, not typed values: a binding hands the body straight to its own JSON parser
//! (`json.loads`, `JSON.parse`), so an answer is parsed once, and a field or enum value newer
//! than this SDK reaches the caller unchanged instead of being dropped or failing the call (the
//! Rust types are strict; the bindings' results are views over the JSON).
//!
//! A call goes through the generated client's hooks like every typed method: one request id and
//! (for a POST) one idempotency key per call, re-sent on every retry ([`crate::retry`]), and an
//! error status becomes the [`Error`] of its kind. [`error_details`] is the one description of
//! an error both bindings turn into their exception classes, keyed by [`Error::kind`].
//!
//! Arguments (a JSON object, `null` meaning absent): each path and query parameter by its name
//! in the document, `idempotency_key`, `if_match` and `if_none_match` where the operation takes
//! that header. Any other name is refused, so a misspelt argument is an error rather than
//! ignored. The request body is passed apart, as the JSON bytes to send.

use bytes::Bytes;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use crate::etag::ETag;
use crate::idempotency::{IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_LEN_MAX, REQUEST_ID_HEADER};
use crate::{Client, Error, Result};

/// Whether an operation takes a header or a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Not taken: passing one is an error.
    No,
    /// Taken if given.
    Optional,
    /// Documented as required (the server answers its own error if it is missing).
    Required,
}

/// What a successful call answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// A JSON body.
    Json,
    /// A JSON body, or nothing when the caller's copy is current (304).
    JsonOrNotModified,
    /// A `text/csv` body.
    Csv,
    /// No body (204).
    Empty,
}

/// One SDK method as the dispatch sends it (a row of the generated table).
#[derive(Debug)]
pub struct Operation {
    /// The SDK method's name, snake_case.
    pub name: &'static str,
    /// The document's `operationId` (what the hooks are told).
    pub operation_id: &'static str,
    /// The HTTP method.
    pub method: reqwest::Method,
    /// The path template, parameters in braces.
    pub path: &'static str,
    /// Path parameters, in the template's order.
    pub path_params: &'static [&'static str],
    /// Query parameters.
    pub query: &'static [&'static str],
    /// Query parameters always sent, with their values (`format=csv` of a CSV form).
    pub fixed_query: &'static [(&'static str, &'static str)],
    /// `Idempotency-Key`.
    pub idempotency_key: Need,
    /// `If-Match`.
    pub if_match: Need,
    /// `If-None-Match`.
    pub if_none_match: Need,
    /// A JSON request body.
    pub body: Need,
    /// The answer.
    pub output: Output,
    /// The answer carries the resource's `ETag`.
    pub etag: bool,
}

// Generated, not formatted: `--check` compares it byte for byte.
#[rustfmt::skip]
#[path = "operations.rs"]
mod table;

pub mod rekey;

/// Every SDK method, sorted by name.
pub fn operations() -> &'static [Operation] {
    table::OPERATIONS
}

/// The SDK method called `name`.
pub fn operation(name: &str) -> Option<&'static Operation> {
    let ops = operations();
    ops.binary_search_by(|o| o.name.cmp(name)).ok().map(|i| &ops[i])
}

/// A successful answer, as the server sent it.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status (304 for a conditional read whose copy is current).
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body: JSON, CSV text, or empty.
    pub body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `ETag` header (with its quotes), if any.
    pub fn etag(&self) -> Option<&str> {
        self.header("etag")
    }

    /// The request id the server answered with.
    pub fn request_id(&self) -> Option<&str> {
        self.header(REQUEST_ID_HEADER)
    }

    /// The answer replays an earlier one of the same idempotency key.
    pub fn idempotent_replayed(&self) -> bool {
        crate::response::idempotent_replayed(&self.headers)
    }

    /// The answer's metadata (status, headers, request id, rate limit).
    pub fn response(&self) -> crate::ResponseMeta {
        crate::ResponseMeta::new(self.status, self.headers.clone())
    }

    /// The headers as text, one `name: value` line each (`\n`-terminated; values that are not
    /// visible ASCII are left out): how the bindings receive them, one string to split only if
    /// the caller asks for the metadata.
    pub fn headers_text(&self) -> String {
        headers_text(&self.headers)
    }

    /// A conditional read found the caller's copy current: no body.
    pub fn not_modified(&self) -> bool {
        self.status == 304
    }
}

fn invalid(op: &Operation, message: impl std::fmt::Display) -> Error {
    Error::InvalidRequest(format!("{}: {message}", op.name))
}

/// An argument as the text it is sent as; `None` when absent or `null`.
fn text<'a>(op: &Operation, args: &'a Map<String, Value>, name: &str) -> Result<Option<std::borrow::Cow<'a, str>>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str().into())),
        Some(Value::Number(n)) => Ok(Some(n.to_string().into())),
        Some(Value::Bool(b)) => Ok(Some(if *b { "true" } else { "false" }.into())),
        Some(other) => Err(invalid(op, format!("{name} must be a string, a number or a boolean, not {other}"))),
    }
}

fn header_value(op: &Operation, name: &str, value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|_| invalid(op, format!("{name} is not a valid header value")))
}

/// The request of one call, before the hooks add the request id and idempotency key.
fn request(
    client: &Client,
    op: &Operation,
    args: &Map<String, Value>,
    body: Option<Bytes>,
) -> Result<reqwest::Request> {
    for name in args.keys() {
        let known = op.path_params.contains(&name.as_str())
            || op.query.contains(&name.as_str())
            || (name == "idempotency_key" && op.idempotency_key != Need::No)
            || (name == "if_match" && op.if_match != Need::No)
            || (name == "if_none_match" && op.if_none_match != Need::No);
        if !known {
            return Err(invalid(op, format!("unknown argument {name:?}")));
        }
    }
    // The path goes on a copy of the client's parsed base URL (whose own path, if any, is a
    // prefix): only the path is parsed, not the whole URL again.
    let prefix = client.base.path().trim_end_matches('/');
    let mut path = String::with_capacity(prefix.len() + op.path.len() + 32);
    path.push_str(prefix);
    let mut rest = op.path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map_or(rest.len(), |i| open + i);
        path.push_str(&rest[..open]);
        let name = &rest[open + 1..close];
        let value = text(op, args, name)?.ok_or_else(|| invalid(op, format!("{name} is required")))?;
        if value.is_empty() {
            return Err(invalid(op, format!("{name} must not be empty")));
        }
        path.push_str(&progenitor_client::encode_path(&value));
        rest = rest.get(close + 1..).unwrap_or_default();
    }
    path.push_str(rest);
    let mut url = client.base.clone();
    url.set_path(&path);
    let mut query: Vec<(&str, std::borrow::Cow<'_, str>)> =
        op.fixed_query.iter().map(|(k, v)| (*k, std::borrow::Cow::Borrowed(*v))).collect();
    for name in op.query {
        if let Some(v) = text(op, args, name)? {
            query.push((*name, v));
        }
    }
    let accept = if op.output == Output::Csv { "text/csv" } else { "application/json" };
    let mut builder = client
        .raw
        .client()
        .request(op.method.clone(), url)
        .header(header::ACCEPT, HeaderValue::from_static(accept))
        .header(crate::client::API_VERSION, crate::client::api_version());
    if !query.is_empty() {
        builder = builder.query(&query);
    }
    if let Some(key) = text(op, args, "idempotency_key")? {
        if key.is_empty() || key.len() > IDEMPOTENCY_KEY_LEN_MAX || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(invalid(
                op,
                format!("idempotency_key must be 1..={IDEMPOTENCY_KEY_LEN_MAX} printable ASCII characters"),
            ));
        }
        builder = builder.header(IDEMPOTENCY_KEY, header_value(op, "idempotency_key", &key)?);
    }
    for (name, header) in [("if_match", header::IF_MATCH), ("if_none_match", header::IF_NONE_MATCH)] {
        if let Some(tag) = text(op, args, name)? {
            if ETag::new(tag.as_ref()).is_none() {
                return Err(invalid(op, format!("{name} is not an ETag: {tag:?}")));
            }
            builder = builder.header(header, header_value(op, name, &tag)?);
        }
    }
    match (body, op.body) {
        (Some(_), Need::No) => return Err(invalid(op, "takes no body")),
        (Some(bytes), _) => {
            builder = builder.header(header::CONTENT_TYPE, HeaderValue::from_static("application/json")).body(bytes);
        }
        (None, _) => {}
    }
    builder.build().map_err(|e| invalid(op, e))
}

/// Calls the SDK method `name` with `args` (see the module docs) and `body` (JSON bytes).
pub async fn call(client: &Client, name: &str, args: &Map<String, Value>, body: Option<Bytes>) -> Result<Answer> {
    let op = operation(name).ok_or_else(|| Error::InvalidRequest(format!("unknown operation {name:?}")))?;
    let mut request = request(client, op, args, body)?;
    let (attempts, sent) = crate::retry::counted(async move {
        crate::idempotency::prepare(&mut request);
        client.raw.exec(request, &OperationInfo { operation_id: op.operation_id }).await
    });
    let mut response = match sent.await {
        Ok(r) => r,
        Err(e) => return Err(Error::transport(e, attempts.get())),
    };
    let status = response.status().as_u16();
    if status == 304 && op.output == Output::JsonOrNotModified {
        return Ok(Answer { status, headers: std::mem::take(response.headers_mut()), body: Bytes::new() });
    }
    if !response.status().is_success() {
        return Err(Error::from_answer(crate::error::api_error_from_response(response, attempts.get()).await));
    }
    let headers = std::mem::take(response.headers_mut());
    let body = response.bytes().await.map_err(|e| Error::transport(e, attempts.get()))?;
    let answer = Answer { status, headers, body };
    if op.etag && answer.etag().is_none() {
        return Err(Error::UnexpectedResponse {
            status: Some(status),
            message: format!("{}: the answer has no ETag", op.name),
            attempts: attempts.get(),
        });
    }
    Ok(answer)
}

/// Headers as `name: value` lines.
pub fn headers_text(headers: &HeaderMap) -> String {
    let mut text = String::new();
    push_headers_text(&mut text, headers);
    text
}

/// Appends the headers to `text` as [`headers_text`] writes them, growing `text` once.
pub fn push_headers_text(text: &mut String, headers: &HeaderMap) {
    text.reserve(headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 3).sum());
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            text.push_str(name.as_str());
            text.push_str(": ");
            text.push_str(v);
            text.push('\n');
        }
    }
}

/// An error as both bindings receive it: `kind` (see [`crate::error::ErrorKind::as_str`]),
/// `message` (the problem's `detail`, [`Error::message`]), `display` (the full description,
/// [`Error`]'s `Display`), `status`, `code`, `request_id`, `errors` (`[{field, message}]`),
/// `retry_after` (seconds), `attempts`, `current_etag`, and `headers` (the answer's, as
/// [`headers_text`]; `null` when there was no answer).
pub fn error_details(e: &Error) -> Value {
    let api = e.api_error();
    let errors: Vec<Value> = e.errors().iter().map(|f| json!({ "field": f.field, "message": f.message })).collect();
    json!({
        "kind": e.kind().as_str(),
        "message": e.message(),
        "display": e.to_string(),
        "headers": api.map(|a| headers_text(&a.headers)),
        "status": e.status(),
        "code": e.code(),
        "request_id": e.request_id(),
        "errors": errors,
        "retry_after": e.retry_after().map(|d| d.as_secs_f64()),
        "attempts": e.attempts(),
        "current_etag": api.and_then(|a| a.current_etag.as_ref()).map(|t| t.as_str().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_every_path_parameter_is_in_its_template() {
        let ops = operations();
        assert!(ops.windows(2).all(|w| w[0].name < w[1].name), "sorted by name, no duplicates");
        for op in ops {
            for p in op.path_params {
                assert!(op.path.contains(&format!("{{{p}}}")), "{}: {p}", op.name);
            }
            assert_eq!(op.path.matches('{').count(), op.path_params.len(), "{}", op.name);
        }
        assert_eq!(operation("create_movement").map(|o| o.operation_id), Some("create_stock_movement"));
        assert!(operation("no_such_thing").is_none());
    }

    #[test]
    fn arguments_are_checked_before_anything_is_sent() {
        let client = Client::builder().api_key("sk_test_x").base_url("http://127.0.0.1:9").build().expect("client");
        let op = operation("get_item").expect("get_item");
        let args = |v: Value| v.as_object().cloned().expect("object");
        let r = request(&client, op, &args(json!({"id": "itm 1/2"})), None).expect("request");
        assert_eq!(r.url().path(), "/v1/items/itm%201%2F2");
        let e = request(&client, op, &args(json!({"id": "x", "sku": "y"})), None).expect_err("unknown argument");
        assert!(e.to_string().contains("unknown argument \"sku\""), "{e}");
        let e = request(&client, op, &args(json!({})), None).expect_err("missing id");
        assert!(e.to_string().contains("id is required"), "{e}");
        let e = request(&client, op, &args(json!({"id": "x"})), Some(Bytes::from_static(b"{}"))).expect_err("body");
        assert!(e.to_string().contains("takes no body"), "{e}");
        let list = operation("list_items").expect("list_items");
        let r = request(&client, list, &args(json!({"limit": 5, "status": "active", "q": null})), None).expect("list");
        assert_eq!(r.url().query(), Some("status=active&limit=5"));
        let update = operation("update_item").expect("update_item");
        let e = request(&client, update, &args(json!({"id": "x", "if_match": "two words"})), None).expect_err("etag");
        assert!(e.to_string().contains("not an ETag"), "{e}");
        let csv = operation("get_invoice_csv").expect("csv");
        let r = request(&client, csv, &args(json!({"id": "inv_1"})), None).expect("csv");
        assert_eq!(r.headers()[header::ACCEPT], "text/csv");
    }

    #[test]
    fn the_path_goes_under_the_base_urls_own_path() {
        let object = |v: Value| v.as_object().cloned().expect("object");
        for (base, url) in [
            ("http://127.0.0.1:9", "http://127.0.0.1:9/v1/items/itm_1"),
            ("https://example.com/twh/", "https://example.com/twh/v1/items/itm_1"),
            ("http://[::1]:4010/a/b", "http://[::1]:4010/a/b/v1/items/itm_1"),
        ] {
            let client = Client::builder().api_key("sk_test_x").base_url(base).build().expect("client");
            let r = request(&client, operation("get_item").expect("op"), &object(json!({"id": "itm_1"})), None)
                .expect("request");
            assert_eq!(r.url().as_str(), url, "{base}");
            let page = request(&client, operation("list_items").expect("op"), &object(json!({"limit": 2})), None)
                .expect("request");
            assert_eq!(page.url().as_str(), format!("{}?limit=2", url.trim_end_matches("/itm_1")), "{base}");
        }
    }
}
