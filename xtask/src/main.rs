//! `cargo xtask <task>`: code generation for the workspace.
//!
//! - `cargo xtask openapi [--check]`: writes `openapi/openapi.json` from the emulator's types,
//!   and `openapi/postman.json`, the Postman collection made from it ([`postman`]); with
//!   `--check`, fails instead when either committed file differs.
//! - `cargo xtask generate [--check]`: writes `sdk-rust/src/generated.rs`, the progenitor client
//!   of `openapi/openapi.json`, and from the same document, through one operation model
//!   ([`ops`]), the shared dispatch's table (`sdk-rust/src/operations.rs`), the Python methods
//!   and stubs, and the Node methods and `.d.ts` ([`sdks`]); with `--check`, fails instead when a
//!   committed file is stale.

mod docs;
mod generate;
mod ops;
mod postman;
mod sdks;

use std::path::PathBuf;
use std::process::ExitCode;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn write_or_check(path: PathBuf, text: &str, check: bool, task: &str) -> Result<(), String> {
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == text {
        println!("{} is up to date", path.display());
        return Ok(());
    }
    if check {
        return Err(format!("{} is stale: run `cargo xtask {task}` and commit the result", path.display()));
    }
    std::fs::create_dir_all(path.parent().unwrap_or(&root())).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let result = match args.first().map(String::as_str) {
        Some("openapi") => write_or_check(
            root().join("openapi/openapi.json"),
            twh_emulator::openapi::document_text(),
            check,
            "openapi",
        )
        .and_then(|()| postman::collection_text(twh_emulator::openapi::document()))
        .and_then(|text| write_or_check(root().join("openapi/postman.json"), &text, check, "openapi")),
        Some("generate") => generate::client(&root().join("openapi/openapi.json"))
            .and_then(|text| write_or_check(root().join("sdk-rust/src/generated.rs"), &text, check, "generate"))
            .and_then(|()| sdks::all(check))
            .and_then(|()| docs::all(check)),
        _ => Err("usage: cargo xtask openapi [--check] | cargo xtask generate [--check]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
