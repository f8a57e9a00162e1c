//! Request parsing: authentication, JSON bodies, query strings, idempotency keys, preconditions
//! and cursors (read with [`decode_cursor`]). Each turns bad input into a precise problem
//! (400/401/403/422) before a handler runs, so handlers only see well-formed values.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::AppState;
use super::admission::{Admission, bearer};
use super::error::ApiError;
use crate::domain::IfMatch;
use crate::domain::billing::RowRef;
use crate::domain::idempotency::{Digest128, fingerprint, key_digest};
use crate::domain::model::FieldError;
use crate::domain::paging::{Window, decode_cursor};
use crate::domain::registry::{KeyGrant, KeyKind, Tenant};

/// Longest idempotency key, in characters.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;
/// Default page size.
pub const LIMIT_DEFAULT: usize = 20;
/// Largest page size.
pub const LIMIT_MAX: usize = 100;

/// The caller: a working key and its tenant, as admitted by the metering layer (which counted
/// the request). Restricted keys are refused on writes here.
pub struct Auth {
    /// The key's grant.
    pub grant: Arc<KeyGrant>,
    /// The tenant.
    pub tenant: Arc<Tenant>,
    /// The request's usage row (a write adds its ledger lines to it).
    pub row: Option<RowRef>,
}

impl Auth {
    /// Refuses a restricted key (403 `forbidden`) on a read that only secret keys may make.
    pub fn require_secret_key(&self) -> Result<(), ApiError> {
        if self.grant.kind == KeyKind::Restricted {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Only a secret key may read this."));
        }
        Ok(())
    }
}

fn unauthenticated(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
        .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"twh\"")
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let auth = match parts.extensions.remove::<Admission>() {
            Some(a) => Auth { grant: a.grant, tenant: a.tenant, row: Some(a.row) },
            None => {
                let token = bearer(&parts.headers)
                    .ok_or_else(|| unauthenticated("Send your API key as `Authorization: Bearer <key>`."))?;
                let grant =
                    state.world.authenticate(token).ok_or_else(|| unauthenticated("Unknown or expired API key."))?;
                let tenant = state
                    .world
                    .tenant(&grant.tenant_id)
                    .ok_or_else(|| unauthenticated("Unknown or expired API key."))?;
                Auth { grant, tenant, row: None }
            }
        };
        if auth.grant.kind == KeyKind::Restricted && !matches!(parts.method, Method::GET | Method::HEAD) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "A restricted key may only read."));
        }
        Ok(auth)
    }
}

/// Guard of the admin endpoints (`POST /v1/sandboxes`, `/_emulator/*`): open unless an admin
/// token is configured.
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        match &state.config.admin_token {
            None => Ok(Admin),
            Some(expected)
                if super::origin::token_matches(
                    bearer(&parts.headers).unwrap_or_default().as_bytes(),
                    expected.as_bytes(),
                ) =>
            {
                Ok(Admin)
            }
            Some(_) => Err(unauthenticated("This emulator requires its admin token.")),
        }
    }
}

/// A JSON body: parsed, typed, and fingerprinted for idempotency.
pub struct Json<T> {
    /// The typed value.
    pub value: T,
    /// Fingerprint of method, path and canonical body.
    pub fingerprint: Digest128,
}

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let limit = if req.uri().path() == "/_emulator/state" {
            state.config.state_body_limit_bytes
        } else {
            state.config.body_limit_bytes
        };
        let method = req.method().clone();
        // A clone of the URI shares its bytes.
        let uri = req.uri().clone();
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let essence = ct.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().as_bytes();
            // `application/json` or `application/<anything>+json`, in any case.
            let (prefix, suffix) = (b"application/".as_slice(), b"+json".as_slice());
            let structured = essence.len() > prefix.len()
                && essence[..prefix.len()].eq_ignore_ascii_case(prefix)
                && essence[essence.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
            if !(essence.eq_ignore_ascii_case(b"application/json") || structured) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send a JSON body with `Content-Type: application/json`.",
                ));
            }
        }
        // A share of the body budget for as long as the body is held (read and parsed).
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(limit, |n| n.min(limit));
        let kib = u32::try_from(declared.div_ceil(1024).clamp(1, crate::http::BODY_BYTES_IN_FLIGHT_MAX >> 10))
            .unwrap_or(u32::MAX);
        let _budget = state.body_budget.acquire_many(kib).await.ok();
        // A journaled request's body is noted as it is read.
        let journaled = super::journal::current();
        let body = http_body_util::Limited::new(req.into_body(), limit);
        let bytes = read_body(body, journaled.as_deref()).await.map_err(|_| {
            // The rest of the body is left unread, so the connection cannot carry another
            // request: say so, or a client may reuse it and see it closed mid-answer.
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The body is larger than {limit} bytes."),
            )
            .with_header(header::CONNECTION, "close")
        })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        // The common case, a well-formed body that fits its type, takes two passes over the
        // bytes and builds no tree: one into the type, one that writes the canonical form.
        // Anything else goes the slow way, which names the problem exactly as before.
        let not_json = |e: serde_json::Error| ApiError::invalid_json(format!("The body is not valid JSON: {e}."));
        // Every body is an object. serde also reads a struct from an array of its fields in
        // order (`["SKU-1", "Mug"]` would make an item), which the API does not accept.
        if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            let mut de = serde_json::Deserializer::from_slice(text);
            <serde::de::IgnoredAny as serde::Deserialize>::deserialize(&mut de)
                .and_then(|_| de.end())
                .map_err(not_json)?;
            return Err(ApiError::field("body", "invalid type: array, expected an object".to_owned()));
        }
        let value = match serde_json::from_slice::<T>(text) {
            Ok(value) => value,
            // Not of the type: first whether it is JSON at all (that answer comes first), by a
            // pass that keeps nothing; then read again with path tracking, to name the field.
            // Straight from the bytes, never through a `Value` tree (a tree of a 4 MB
            // `[0,0,…]` takes some hundred megabytes), and no canonical form (writing that of a
            // body that fails cost most of a bad body's CPU): anyone may send bodies that fail.
            Err(_) => {
                let mut de = serde_json::Deserializer::from_slice(text);
                <serde::de::IgnoredAny as serde::Deserialize>::deserialize(&mut de)
                    .and_then(|_| de.end())
                    .map_err(not_json)?;
                let mut de = serde_json::Deserializer::from_slice(text);
                return Err(match serde_path_to_error::deserialize::<_, T>(&mut de) {
                    Err(e) => field_error(e),
                    // It fits after all (it cannot, having failed above): say so plainly.
                    Ok(_) => ApiError::invalid_json("The body does not fit its type.".to_owned()),
                });
            }
        };
        let mut canonical = Vec::with_capacity(text.len());
        write_canonical_from(text, &mut canonical).map_err(not_json)?;
        let path = uri.path_and_query().map_or_else(|| uri.path(), |p| p.as_str());
        let fingerprint = fingerprint(method.as_str(), path, &canonical);
        Ok(Json { value, fingerprint })
    }
}

/// The idempotency fingerprint of a request without a body (`DELETE`): its method and path, with
/// the canonical form of an empty body, so a retried DELETE with the same key replays and the
/// same key on another resource is `idempotency_key_reused`.
pub fn bodiless_fingerprint(method: &http::Method, uri: &http::Uri) -> Digest128 {
    let path = uri.path_and_query().map_or_else(|| uri.path(), |p| p.as_str());
    fingerprint(method.as_str(), path, b"{}")
}

/// A whole body. One that came in one frame (the usual case) is that frame's bytes, not copied;
/// `BodyExt::collect` would queue the frames in a list first, an allocation per request. Each
/// frame is noted in `journaled`'s entry as it is read.
async fn read_body<B>(body: B, journaled: Option<&super::journal::Record>) -> Result<bytes::Bytes, B::Error>
where
    B: axum::body::HttpBody<Data = bytes::Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut first: Option<bytes::Bytes> = None;
    let mut joined: Option<bytes::BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        if let Some(record) = journaled {
            super::journal::note_body(record, &data);
        }
        match (&mut joined, first.take()) {
            (Some(all), _) => all.extend_from_slice(&data),
            (None, Some(head)) => {
                let mut all = bytes::BytesMut::with_capacity(head.len() + data.len());
                all.extend_from_slice(&head);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
            (None, None) => first = Some(data),
        }
    }
    Ok(joined.map_or_else(|| first.unwrap_or_default(), bytes::BytesMut::freeze))
}

/// The body of a POST that takes no fields (`{}` or nothing): any field is a 422 naming it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

/// Deserialises a JSON value, naming the field that failed. The common case (it fits) takes
/// the plain deserialiser; only a failure is parsed again with path tracking for its message.
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if let Ok(v) = T::deserialize(&value) {
        return Ok(v);
    }
    serde_path_to_error::deserialize(&value).map_err(field_error)
}

/// A deserialisation error as a 422 naming its field.
fn field_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let message = e.inner().to_string();
    let named = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned);
    let leaf = named("unknown field `").or_else(|| named("missing field `"));
    let field = match (path.as_str(), leaf) {
        (".", Some(leaf)) => leaf,
        (".", None) => "body".to_owned(),
        (p, Some(leaf)) if p.ends_with(leaf.as_str()) => p.to_owned(),
        (p, Some(leaf)) => format!("{p}.{leaf}"),
        (p, None) => p.to_owned(),
    };
    ApiError::field(&field, message.split(" at line ").next().unwrap_or(&message).to_owned())
}

/// Writes the canonical form of the JSON text `text`, so equal documents fingerprint equally:
/// objects sorted by key (a repeated key keeps its last value, as when parsed), no whitespace,
/// scalars as `serde_json` writes them. No value is built. (Maps keep insertion order here:
/// serde_json's `preserve_order` is on for the OpenAPI document, hence the sorting.)
fn write_canonical_from(text: &[u8], out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(text);
    Canonical(out).deserialize(&mut de)?;
    de.end()
}

/// A seed that writes the canonical form of whatever it deserialises into `.0`.
struct Canonical<'a>(&'a mut Vec<u8>);

impl<'de> serde::de::DeserializeSeed<'de> for Canonical<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Canonical<'_> {
    /// A scalar as `serde_json` writes it (as it would from a parsed `Value`).
    fn scalar<E: serde::de::Error>(self, v: impl Serialize) -> Result<(), E> {
        serde_json::to_writer(&mut *self.0, &v).map_err(E::custom)
    }
}

impl<'de> serde::de::Visitor<'de> for Canonical<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        serde_json::to_writer(&mut *self.0, v).map_err(E::custom)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            let mark = self.0.len();
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(Canonical(&mut *self.0))?.is_none() {
                self.0.truncate(mark);
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The values are written one after the other at the end of `out`, then the object in
        // key order after them, which then moves down over them: one allocation an object.
        let base = self.0.len();
        let mut entries: Vec<(std::borrow::Cow<'de, str>, std::ops::Range<usize>)> = Vec::with_capacity(8);
        while let Some(key) = map.next_key_seed(Key)? {
            let start = self.0.len();
            map.next_value_seed(Canonical(&mut *self.0))?;
            entries.push((key, start..self.0.len()));
        }
        let values_end = self.0.len();
        // Stable: of a repeated key, the last one written wins (as in a parsed object).
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.0.push(b'{');
        let mut first = true;
        for (i, (key, range)) in entries.iter().enumerate() {
            if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            if !first {
                self.0.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *self.0, key.as_ref()).map_err(serde::de::Error::custom)?;
            self.0.push(b':');
            self.0.extend_from_within(range.clone());
        }
        self.0.push(b'}');
        self.0.copy_within(values_end.., base);
        self.0.truncate(self.0.len() - (values_end - base));
        Ok(())
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }
}

/// A parsed `Idempotency-Key`.
#[derive(Clone, Copy, Debug)]
pub struct IdempotencyKey(pub Digest128);

fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = headers.get(super::names::IDEMPOTENCY_KEY) else { return Ok(None) };
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            format!(
                "Idempotency-Key must be 1..={IDEMPOTENCY_KEY_LEN_MAX} printable ASCII characters, bare or as a quoted string."
            ),
        )
    };
    let text = raw.to_str().map_err(|_| invalid())?.trim();
    // RFC 8941 sf-string: "..." with \" and \\ escapes.
    let key = if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\')) => out.push(e),
                    _ => return Err(invalid()),
                },
                '"' => return Err(invalid()),
                c => out.push(c),
            }
        }
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    let printable = key.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_LEN_MAX || !printable {
        return Err(invalid());
    }
    Ok(Some(IdempotencyKey(key_digest(&key))))
}

/// `Idempotency-Key`, required (ledger writes).
pub struct RequiredKey(pub IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for RequiredKey {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        idempotency_key(&parts.headers)?.map(RequiredKey).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                "Ledger writes require an `Idempotency-Key` header.",
            )
        })
    }
}

/// `Idempotency-Key`, optional (other POSTs).
pub struct OptionalKey(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalKey {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        idempotency_key(&parts.headers).map(OptionalKey)
    }
}

/// Whether `Accept` asks for CSV (`text/csv`, with a non-zero quality).
pub fn wants_csv(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let zero = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0)));
        media.eq_ignore_ascii_case("text/csv") && !zero
    })
}

/// Parses `If-Match`.
pub fn if_match(headers: &HeaderMap) -> Option<IfMatch> {
    let all: Vec<&str> = headers.get_all(header::IF_MATCH).iter().filter_map(|v| v.to_str().ok()).collect();
    if all.is_empty() {
        return None;
    }
    let tags: Vec<&str> = all.iter().flat_map(|v| v.split(',')).map(str::trim).collect();
    if tags.contains(&"*") {
        return Some(IfMatch::Any);
    }
    Some(IfMatch::Versions(tags.iter().filter_map(|t| strong_version(t)).collect()))
}

/// `If-Match`, optional (a movement's condition on the level it changes). Reads only that
/// header, where a `HeaderMap` extractor would copy them all.
pub struct OptionalIfMatch(pub Option<IfMatch>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalIfMatch {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(OptionalIfMatch(if_match(&parts.headers)))
    }
}

/// `If-Match`, required (PATCH/DELETE of items, locations, endpoints): 428 when absent.
pub struct RequiredIfMatch(pub IfMatch);

impl<S: Send + Sync> FromRequestParts<S> for RequiredIfMatch {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if_match(&parts.headers).map(RequiredIfMatch).ok_or_else(|| {
            ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "precondition_required",
                "Send `If-Match` with the ETag you read (or `*`).",
            )
        })
    }
}

fn strong_version(tag: &str) -> Option<u64> {
    tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

/// Whether `If-None-Match` matches this version (weak comparison).
pub fn none_match(headers: &HeaderMap, version: u64) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || strong_version(t.strip_prefix("W/").unwrap_or(t)) == Some(version))
}

/// A query string as name → value, with typed getters that produce 422 field errors. Unknown
/// parameters are refused, so a typo is not silently ignored.
pub struct Query {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map_err(|e| ApiError::field("query", e.to_string()))?;
        Ok(Query { pairs, errors: Vec::new() })
    }
}

impl Query {
    fn take(&mut self, name: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == name)?;
        let (_, v) = self.pairs.remove(i);
        if self.pairs.iter().any(|(k, _)| k == name) {
            self.errors.push(FieldError::new(name, "given more than once"));
        }
        Some(v)
    }

    /// A text parameter.
    pub fn text(&mut self, name: &str) -> Option<String> {
        self.take(name)
    }

    /// `cursor`: the text of a non-empty one. An empty `cursor=` (which the document's plain
    /// string allows, and a client that pastes a `null` next_cursor sends) is the first page.
    pub fn cursor(&mut self) -> Option<String> {
        self.take("cursor").filter(|c| !c.is_empty())
    }

    /// A parameter parsed by `parse`, which says what was expected on failure.
    pub fn parsed<T>(&mut self, name: &str, expected: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        let raw = self.take(name)?;
        let v = parse(&raw);
        if v.is_none() {
            self.errors.push(FieldError::new(name, format!("must be {expected}")));
        }
        v
    }

    /// A boolean parameter.
    pub fn bool(&mut self, name: &str) -> Option<bool> {
        self.parsed(name, "true or false", |v| match v {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })
    }

    /// A JSON-string enum parameter.
    pub fn enumeration<T: DeserializeOwned>(&mut self, name: &str) -> Option<T> {
        self.parsed(name, "one of the documented values", |v| serde_json::from_value(Value::String(v.to_owned())).ok())
    }

    /// `limit` and `cursor` for the list of kind `kind` in the tenant incarnation `tag`.
    pub fn window(&mut self, kind: &str, tag: &str) -> Result<Window, ApiError> {
        let limit = self
            .parsed("limit", &format!("an integer in 1..={LIMIT_MAX}"), |v| {
                v.parse::<usize>().ok().filter(|n| (1..=LIMIT_MAX).contains(n))
            })
            .unwrap_or(LIMIT_DEFAULT);
        let start = match self.cursor() {
            Some(c) => decode_cursor(kind, tag, &c).ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "The cursor is not one this list issued.")
            })?,
            None => 0,
        };
        Ok(Window { start, limit })
    }

    /// Ends parsing: any error collected, or an unknown parameter, is a 422.
    pub fn finish(mut self) -> Result<(), ApiError> {
        for (k, _) in self.pairs.drain(..) {
            self.errors.push(FieldError::new(k, "unknown query parameter"));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::from(crate::domain::DomainError::validation(self.errors)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer over a parsed value that fingerprints were first made with: the reference.
    fn write_canonical(value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::Object(map) => {
                out.push(b'{');
                let mut sorted: Vec<(&String, &Value)> = map.iter().collect();
                sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut *out, k);
                    out.push(b':');
                    write_canonical(v, out);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_canonical(v, out);
                }
                out.push(b']');
            }
            other => {
                let _ = serde_json::to_writer(&mut *out, other);
            }
        }
    }

    /// The streaming canonical writer agrees with the one over a parsed value, byte for byte
    /// (fingerprints stored in a data dir must not change meaning).
    #[test]
    fn canonical_forms_agree() {
        let bodies = [
            r#"{}"#,
            r#"[]"#,
            r#"{"type":"receipt","item_id":"itm_1","location_id":"loc_1","quantity":1}"#,
            r#" { "quantity" : 1 , "type" : "receipt" } "#,
            r#"{"b":{"z":[1,2.5,-3,1e3,1.0,true,null,"x"],"a":{}},"a":[{"y":1,"x":2},[]]}"#,
            r#"{"k":1,"k":2,"j":0,"k":3}"#,
            r#"{"esc\"ape":"line\nbreak \u00e9 \ud83d\ude00 \/","é":"ü","a\\b":"\u0000"}"#,
            r#"{"big":18446744073709551615,"neg":-9223372036854775808,"f":0.1,"g":-0.0,"h":123456789.123456789}"#,
            r#""just a string""#,
            r#"12"#,
        ];
        for body in bodies {
            let value: Value = serde_json::from_slice(body.as_bytes()).unwrap();
            let mut expected = Vec::new();
            write_canonical(&value, &mut expected);
            let mut streamed = Vec::new();
            write_canonical_from(body.as_bytes(), &mut streamed).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), String::from_utf8(expected).unwrap(), "{body}");
        }
        for bad in [r#"{"a":1"#, r#"{"a":1} x"#, r#"[1,]"#, ""] {
            assert!(write_canonical_from(bad.as_bytes(), &mut Vec::new()).is_err(), "{bad}");
        }
    }

    /// A body in one frame is that frame; in several, their bytes in order; over the limit, an
    /// error.
    #[tokio::test]
    async fn bodies_are_read_whole() {
        use axum::body::Bytes;
        use http_body_util::{Full, Limited, StreamBody};
        type Frames = Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>>;
        let frames = |parts: &[&'static str]| -> Frames {
            parts.iter().map(|p| Ok(hyper::body::Frame::data(Bytes::from_static(p.as_bytes())))).collect()
        };
        let one = Bytes::from_static(b"{\"a\":1}");
        let read = read_body(Full::new(one.clone()), None).await.expect("read");
        assert_eq!(read, one);
        assert_eq!(read.as_ptr(), one.as_ptr(), "one frame is not copied");
        let body = StreamBody::new(futures::stream::iter(frames(&["{\"a\"", ":", "1}"])));
        assert_eq!(read_body(body, None).await.expect("read"), one);
        assert_eq!(read_body(Full::new(Bytes::new()), None).await.expect("read"), Bytes::new());
        let body = StreamBody::new(futures::stream::iter(frames(&["12345", "67890"])));
        assert!(read_body(Limited::new(body, 8), None).await.is_err());
    }
}
