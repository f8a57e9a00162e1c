//! The operation table of the SDKs, read once from `openapi/openapi.json`.
//!
//! Every generator of this crate (the Rust dispatch table, the Python methods and stubs, the
//! Node methods and `.d.ts`) works from this one model, so the three SDKs cannot disagree on
//! which operations exist, what they are called, or what they take and answer.
//!
//! Naming rules, applied here and nowhere else:
//! - an operation's SDK name is its `x-sdk-name`, else its `operationId`;
//! - operations tagged `emulator` (the control plane, the document itself) are not SDK methods;
//! - an operation that takes `If-None-Match` also gets `<name>_if_changed` (the conditional
//!   read: "not modified" answers nothing), whose plain form sends no `If-None-Match`;
//! - an operation that also answers `text/csv` also gets `<name>_csv` (asks `Accept: text/csv`
//!   and answers the text); where the operation has a `format` query parameter, that form
//!   always sends `format=csv` instead of offering it.

// Fields the language generators read as they land; the lint returns once they all do.
#![allow(dead_code)]

use serde_json::{Map, Value};

/// A header the operation takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// Not taken.
    No,
    /// Taken, optional.
    Optional,
    /// Required.
    Required,
}

impl Header {
    pub fn taken(self) -> bool {
        self != Header::No
    }
}

/// Which form of an operation a method is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The operation as documented (JSON answer).
    Plain,
    /// `<name>_if_changed`: `If-None-Match` required; a 304 answers nothing.
    IfChanged,
    /// `<name>_csv`: `Accept: text/csv`; answers text.
    Csv,
}

/// A path or query parameter.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub required: bool,
    pub description: String,
    /// Its schema, `$ref`s of `#/components/parameters` resolved.
    pub schema: Value,
}

/// The request body.
#[derive(Clone, Debug)]
pub struct Body {
    /// The component schema's name (`CreateItem`).
    pub schema: String,
    pub required: bool,
}

/// What a successful call answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// No body (204).
    Empty,
    /// A JSON object of this component schema.
    Json(String),
    /// A page of this component schema's objects (`{data, next_cursor}`).
    Page(String),
    /// A JSON array of this component schema's objects.
    Array(String),
    /// Text (`text/csv`).
    Text,
}

/// One SDK method: an operation of the document in one of its forms.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The SDK method name, snake_case (`get_item_if_changed`).
    pub name: String,
    /// The document's `operationId` (`get_item`).
    pub id: String,
    pub variant: Variant,
    /// Upper case: `GET`, `POST`, `PATCH`, `DELETE`, `PUT`.
    pub method: String,
    /// The path template (`/v1/items/{id}`).
    pub path: String,
    pub tag: String,
    pub summary: String,
    pub description: String,
    pub path_params: Vec<Param>,
    pub query: Vec<Param>,
    /// Query parameters always sent with these values (the `_csv` form's `format=csv`).
    pub fixed_query: Vec<(String, String)>,
    pub idempotency_key: Header,
    pub if_match: Header,
    pub if_none_match: Header,
    pub body: Option<Body>,
    /// The success status.
    pub status: u16,
    pub answer: Answer,
    /// The answer carries an `ETag` (the resource's version, for `If-Match`).
    pub etag: bool,
    /// Callable without an API key (its `security` lists `{}`): it makes keys rather than
    /// using one (`create_sandbox`).
    pub anonymous: bool,
}

impl Operation {
    /// Lists with a `cursor` parameter (one page; the SDKs add iterators).
    pub fn paged(&self) -> bool {
        matches!(self.answer, Answer::Page(_))
    }
}

/// The SDK's view of the document.
pub struct Api {
    /// Every SDK method, in the document's order (variants right after their operation).
    pub operations: Vec<Operation>,
    /// `components.schemas` of the document.
    pub schemas: Map<String, Value>,
    /// The component schemas a response of any path refers to, directly or through other
    /// schemas (the control plane's too: the emulator handles answer them), in the order of
    /// `components.schemas`.
    pub answer_schemas: Vec<String>,
}

fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// The component name a schema refers to, directly or through a one-element `allOf`.
pub fn schema_ref(schema: &Value) -> Option<&str> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return Some(ref_name(r));
    }
    match schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        Some([one]) => one.get("$ref").and_then(Value::as_str).map(ref_name),
        _ => None,
    }
}

impl Api {
    /// Reads the document's SDK operations.
    pub fn from_document(doc: &Value) -> Result<Api, String> {
        let schemas = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .cloned()
            .ok_or("the document has no components.schemas")?;
        let parameters = doc.pointer("/components/parameters").and_then(Value::as_object).cloned().unwrap_or_default();
        let paths = doc.get("paths").and_then(Value::as_object).ok_or("the document has no paths")?;
        let mut operations = Vec::new();
        for (path, item) in paths {
            let Some(item) = item.as_object() else { continue };
            for (method, op) in item {
                if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    continue;
                }
                let tag = op.pointer("/tags/0").and_then(Value::as_str).unwrap_or_default();
                if tag == "emulator" {
                    continue;
                }
                let plain = read_operation(path, method, op, &parameters, &schemas)?;
                let conditional = plain.if_none_match.taken();
                let csv = op
                    .get("responses")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .any(|(code, r)| code.starts_with('2') && r.pointer("/content/text~1csv").is_some());
                let mut base = plain.clone();
                base.if_none_match = Header::No;
                operations.push(base);
                if conditional {
                    let mut v = plain.clone();
                    v.name = format!("{}_if_changed", plain.name);
                    v.variant = Variant::IfChanged;
                    v.if_none_match = Header::Required;
                    // A conditional read is of the current version.
                    v.query.retain(|q| q.name != "as_of");
                    operations.push(v);
                }
                if csv {
                    let mut v = plain.clone();
                    v.name = format!("{}_csv", plain.name);
                    v.variant = Variant::Csv;
                    v.if_none_match = Header::No;
                    if v.query.iter().any(|q| q.name == "format") {
                        v.query.retain(|q| q.name != "format");
                        v.fixed_query.push(("format".to_owned(), "csv".to_owned()));
                    }
                    v.answer = Answer::Text;
                    v.etag = false;
                    operations.push(v);
                }
            }
        }
        let mut names: Vec<&str> = operations.iter().map(|o| o.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two SDK methods are named {}", w[0]));
        }
        let mut answer_roots = Vec::new();
        for item in paths.values().filter_map(Value::as_object) {
            for op in item.values() {
                if let Some(responses) = op.get("responses") {
                    refs_in(responses, &mut answer_roots);
                }
            }
        }
        let answer_schemas = closure(&answer_roots, &schemas);
        Ok(Api { operations, schemas, answer_schemas })
    }

    /// The component schemas `roots` refer to, directly or through other schemas, `roots`
    /// included, in the order of `components.schemas`.
    pub fn closure(&self, roots: &[String]) -> Vec<String> {
        closure(roots, &self.schemas)
    }
}

/// Appends the component schema names of every `$ref` in `node` to `out`.
pub fn refs_in(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) if r.starts_with("#/components/schemas/") => out.push(ref_name(r).to_owned()),
                    _ => refs_in(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

fn closure(roots: &[String], schemas: &Map<String, Value>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = roots.to_vec();
    while let Some(name) = todo.pop() {
        let Some(schema) = schemas.get(&name) else { continue };
        if seen.insert(name) {
            refs_in(schema, &mut todo);
        }
    }
    schemas.keys().filter(|k| seen.contains(*k)).cloned().collect()
}

fn read_operation(
    path: &str,
    method: &str,
    op: &Value,
    parameters: &Map<String, Value>,
    schemas: &Map<String, Value>,
) -> Result<Operation, String> {
    let id = text(op, "operationId");
    if id.is_empty() {
        return Err(format!("{method} {path} has no operationId"));
    }
    let name = op.get("x-sdk-name").and_then(Value::as_str).map_or_else(|| id.clone(), str::to_owned);
    let mut o = Operation {
        name,
        id: id.clone(),
        variant: Variant::Plain,
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        tag: text(op, "tags").to_owned(),
        summary: text(op, "summary"),
        description: text(op, "description"),
        path_params: Vec::new(),
        query: Vec::new(),
        fixed_query: Vec::new(),
        idempotency_key: Header::No,
        if_match: Header::No,
        if_none_match: Header::No,
        body: None,
        status: 200,
        answer: Answer::Empty,
        etag: false,
        anonymous: op
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(Map::is_empty))),
    };
    o.tag = op.pointer("/tags/0").and_then(Value::as_str).unwrap_or_default().to_owned();
    for p in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        let p = match p.get("$ref").and_then(Value::as_str) {
            Some(r) => parameters.get(ref_name(r)).ok_or_else(|| format!("{id}: unknown parameter {r}"))?,
            None => p,
        };
        let param = Param {
            name: text(p, "name"),
            required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
            description: text(p, "description"),
            schema: p.get("schema").cloned().unwrap_or(Value::Null),
        };
        let header = if param.required { Header::Required } else { Header::Optional };
        match (text(p, "in").as_str(), param.name.to_ascii_lowercase().as_str()) {
            ("path", _) => o.path_params.push(param),
            ("query", _) => o.query.push(param),
            ("header", "idempotency-key") => o.idempotency_key = header,
            ("header", "if-match") => o.if_match = header,
            ("header", "if-none-match") => o.if_none_match = header,
            (place, _) => return Err(format!("{id}: parameter {} in {place} is not understood", param.name)),
        }
    }
    if let Some(body) = op.get("requestBody") {
        let schema = body
            .pointer("/content/application~1json/schema")
            .and_then(schema_ref)
            .ok_or_else(|| format!("{id}: the request body is not a component schema"))?;
        o.body = Some(Body {
            schema: schema.to_owned(),
            required: body.get("required").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    let (status, response) = op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .find(|(code, _)| code.starts_with('2'))
        .ok_or_else(|| format!("{id}: no success response"))?;
    o.status = status.parse().map_err(|_| format!("{id}: status {status}"))?;
    o.etag = response.pointer("/headers/ETag").is_some();
    o.answer = match response.pointer("/content/application~1json/schema") {
        None => Answer::Empty,
        Some(schema) => {
            let name = schema_ref(schema).ok_or_else(|| format!("{id}: the answer is not a component schema"))?;
            answer_of(name, schemas)
        }
    };
    Ok(o)
}

/// A list schema (`{data: [T], next_cursor}` or `{data: [T]}`) answers its items; any other
/// object answers itself.
fn answer_of(name: &str, schemas: &Map<String, Value>) -> Answer {
    let Some(schema) = schemas.get(name) else { return Answer::Json(name.to_owned()) };
    let props = schema.get("properties").and_then(Value::as_object);
    let item = props
        .and_then(|p| p.get("data"))
        .filter(|d| d.get("type").and_then(Value::as_str) == Some("array"))
        .and_then(|d| d.get("items"))
        .and_then(schema_ref);
    match (item, props.map(|p| p.len())) {
        (Some(item), Some(2)) if props.is_some_and(|p| p.contains_key("next_cursor")) => Answer::Page(item.to_owned()),
        (Some(item), Some(1)) => Answer::Array(item.to_owned()),
        _ => Answer::Json(name.to_owned()),
    }
}

/// `snake_case` → `camelCase`.
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        let text = std::fs::read_to_string(crate::root().join("openapi/openapi.json")).expect("document");
        Api::from_document(&serde_json::from_str(&text).expect("json")).expect("api")
    }

    #[test]
    fn names_variants_and_shapes_come_from_the_document() {
        let api = api();
        let by = |n: &str| api.operations.iter().find(|o| o.name == n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!(by("create_movement").id, "create_stock_movement");
        assert_eq!(by("create_movement").idempotency_key, Header::Required);
        assert_eq!(by("create_movement").if_match, Header::Optional);
        assert_eq!(by("get_item").if_none_match, Header::No);
        assert_eq!(by("get_item_if_changed").if_none_match, Header::Required);
        assert_eq!(by("export_usage_csv").answer, Answer::Text);
        assert!(by("export_usage_csv").query.iter().all(|q| q.name != "format"));
        assert_eq!(by("list_items").answer, Answer::Page("Item".into()));
        assert_eq!(by("list_plans").answer, Answer::Array("PlanInfo".into()));
        assert_eq!(by("delete_sandbox").answer, Answer::Empty);
        assert!(by("update_item").etag);
        assert!(api.operations.iter().all(|o| !o.path.starts_with("/_emulator")));
        assert!(by("create_sandbox").anonymous && !by("get_sandbox").anonymous);
        assert!(api.answer_schemas.iter().any(|s| s == "Fault"), "the control plane's answers too");
        assert!(api.answer_schemas.iter().any(|s| s == "MovementLine"), "through other schemas");
        assert!(!api.answer_schemas.iter().any(|s| s == "CreateItem"), "not request bodies");
    }
}

#[cfg(test)]
mod sdk_names {
    //! Every SDK method of the document exists, with its name, in the Rust SDK (the Python and
    //! Node packages check theirs in their own test suites, from the same document).

    use super::*;

    fn source(dir: &str) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(crate::root().join(dir)).expect("dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("generated.rs") {
                text.push_str(&std::fs::read_to_string(&path).expect("read"));
            }
        }
        text
    }

    #[test]
    fn every_operation_is_a_method_of_the_rust_sdk() {
        let text = std::fs::read_to_string(crate::root().join("openapi/openapi.json")).expect("document");
        let api = Api::from_document(&serde_json::from_str(&text).expect("json")).expect("api");
        let sdk = source("sdk-rust/src");
        let missing: Vec<&str> = api
            .operations
            .iter()
            .map(|o| o.name.as_str())
            .filter(|n| {
                !sdk.contains(&format!("pub fn {n}("))
                    && !sdk.contains(&format!("pub fn {n}<"))
                    && !sdk.contains(&format!("pub async fn {n}("))
                    && !sdk.contains(&format!("pub async fn {n}<"))
            })
            .collect();
        assert!(missing.is_empty(), "the Rust SDK has no method {missing:?}");
    }
}
