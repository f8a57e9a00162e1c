//! The object keys of JSON text renamed between snake_case (the wire) and camelCase, in one pass
//! over the bytes: how the Node package hands answers to JS and takes its request bodies.
//!
//! Why on the text: an answer crosses to JS as text that V8's `JSON.parse` reads once; renaming
//! its keys here costs one copy of the bytes, where renaming them in JS after the parse builds
//! every object a second time (bench/node/bench.mjs measures the page of 20 both ways; see
//! bindings-node/README.md). Values are never touched, so a field or enum value newer than the
//! package crosses unchanged.
//!
//! Keys inside the value of a map key (`metadata`, `attributes`, the per-meter maps: the
//! generated `MAP_KEYS` of the Node package's `lib/operations.js`) are data, not field names,
//! and cross unchanged.

/// The case keys are renamed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// `low_stock_threshold` → `lowStockThreshold`: answers, to JS.
    Camel,
    /// `lowStockThreshold` → `low_stock_threshold`: request bodies, to the wire.
    Snake,
}

/// Whether `key` changes in `case`.
fn changes(key: &str, case: Case) -> bool {
    match case {
        Case::Camel => key.contains('_'),
        Case::Snake => key.bytes().any(|b| b.is_ascii_uppercase()),
    }
}

/// Appends `key` in `case` to `out`.
fn push_renamed(out: &mut String, key: &str, case: Case) {
    let mut upper = false;
    for c in key.chars() {
        match case {
            Case::Camel if c == '_' => upper = true,
            Case::Camel if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            Case::Snake if c.is_ascii_uppercase() => {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            }
            _ => out.push(c),
        }
    }
}

/// `text` with its object keys in `case`, except inside the values of `map_keys`. Text that is
/// not JSON comes out as unchanged as the scan allows; the parser after it reports it.
pub fn rekey(text: &str, case: Case, map_keys: &[String]) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    let mut copied = 0;
    // The containers open here, innermost last: `true` for an object.
    let mut open: Vec<bool> = Vec::with_capacity(16);
    let mut expect_key = false;
    // The value about to start is a map's; `map_depth`: the depth of the map we are inside.
    let mut map_value = false;
    let mut map_depth: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                let mut escaped = false;
                // The closing quote: string bodies are most of the text, so they are skipped
                // with memchr (many bytes a step), stopping only at a quote or an escape.
                let mut from = start;
                let end = loop {
                    match bytes.get(from..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
                        None => break bytes.len(),
                        Some(at) if bytes[from + at] == b'"' => break from + at,
                        Some(at) => {
                            escaped = true;
                            from += at + 2;
                        }
                    }
                };
                if expect_key && open.last() == Some(&true) {
                    expect_key = false;
                    if map_depth.is_none() && !escaped {
                        let key = &text[start..end];
                        if changes(key, case) {
                            out.push_str(&text[copied..start]);
                            push_renamed(&mut out, key, case);
                            copied = end;
                        }
                        map_value = map_keys.iter().any(|k| k == key);
                    }
                }
                i = end + 1;
                continue;
            }
            c @ (b'{' | b'[') => {
                open.push(c == b'{');
                expect_key = c == b'{';
                if map_value && map_depth.is_none() {
                    map_depth = Some(open.len());
                }
                map_value = false;
            }
            b'}' | b']' => {
                if map_depth == Some(open.len()) {
                    map_depth = None;
                }
                open.pop();
                map_value = false;
            }
            b',' => {
                expect_key = open.last() == Some(&true);
                map_value = false;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_renamed_values_and_map_contents_are_not() {
        let maps = vec!["metadata".to_owned(), "quotas".to_owned()];
        let wire = r#"{"item_id":"a_b","lines":[{"quantity_after":1}],"metadata":{"po_line":{"x_y":1}},"quotas":null,"new_field":"\"k_k\":1","e\"_x":2}"#;
        let camel = rekey(wire, Case::Camel, &maps);
        assert_eq!(
            camel,
            r#"{"itemId":"a_b","lines":[{"quantityAfter":1}],"metadata":{"po_line":{"x_y":1}},"quotas":null,"newField":"\"k_k\":1","e\"_x":2}"#
        );
        let back = rekey(r#"{"itemId":1,"metadata":{"poLine":1},"a":[{"bC":2}]}"#, Case::Snake, &maps);
        assert_eq!(back, r#"{"item_id":1,"metadata":{"poLine":1},"a":[{"b_c":2}]}"#);
        assert_eq!(rekey("[1, 2, 3]", Case::Camel, &maps), "[1, 2, 3]");
    }

    #[test]
    fn text_cut_anywhere_comes_out_without_a_panic() {
        let wire = r#"{"item_id":"a\"b\\","x_y":[{"p_q":"\u00e9_\\"}],"z_z":"é_ü"}"#;
        for cut in (0..=wire.len()).filter(|&i| wire.is_char_boundary(i)) {
            let text = &wire[..cut];
            // Camel case only drops underscores; values are copied as they are.
            let camel = rekey(text, Case::Camel, &[]);
            assert!(camel.len() <= text.len(), "{text}");
        }
        assert_eq!(rekey(wire, Case::Camel, &[]), r#"{"itemId":"a\"b\\","xY":[{"pQ":"\u00e9_\\"}],"zZ":"é_ü"}"#);
    }
}
