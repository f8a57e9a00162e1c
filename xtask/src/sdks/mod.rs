//! The SDK sources generated from the operation model ([`crate::ops`]): one module per
//! language, each a function from the model to `(path, text)` pairs, paths relative to the
//! repository's root.

pub mod node;
pub mod python;
pub mod rust;

use crate::ops::Api;
use crate::{root, write_or_check};

/// Reads the document once and writes (or checks) every generated SDK source.
pub fn all(check: bool) -> Result<(), String> {
    let path = root().join("openapi/openapi.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let api = Api::from_document(&doc)?;
    let mut files: Vec<(String, String)> = vec![
        ("sdk-rust/src/operations.rs".to_owned(), rust::table(&api)),
        ("sdk-rust/src/enums.rs".to_owned(), rust::enums(&api)),
        ("sdk-rust/src/methods.rs".to_owned(), rust::methods(&api)),
        ("sdk-rust/src/patches.rs".to_owned(), rust::patches(&api)?),
    ];
    files.extend(python::files(&api)?);
    files.extend(node::files(&api)?);
    files.sort();
    let mut stale = Vec::new();
    for (file, text) in files {
        if let Err(e) = write_or_check(root().join(&file), &text, check, "generate") {
            stale.push(e);
        }
    }
    if stale.is_empty() { Ok(()) } else { Err(stale.join("\n")) }
}
