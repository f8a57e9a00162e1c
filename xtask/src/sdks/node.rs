//! The Node package's generated sources.

use crate::ops::Api;

/// The generated files of the Node package: `(path, text)`.
pub fn files(_api: &Api) -> Result<Vec<(String, String)>, String> {
    Ok(Vec::new())
}
