//! `twh-emulator`: the command-line server (see [`twh_emulator::cli`]).

use std::process::ExitCode;

// The command-line server allocates per request (bodies, JSON values, answers); mimalloc's
// thread-local free lists cost less per allocation than glibc's. Version 2 (the `v2` feature):
// in `twh-bench` v3 gave the same write rate but 400 MB of resident memory per million
// movements against v2's 291 MB (glibc: 266 MB, at 0.33x the baseline's rate against 0.38x). The library (embedded in the
// SDKs and bindings, with default features off) leaves the host's allocator alone.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    twh_emulator::cli::run(std::env::args_os())
}
