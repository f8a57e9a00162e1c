//! `bare --port N`: the baseline server of the benchmark (see `twh_bench::bare`).
//! Prints `export TWH_BASE_URL=http://…` once it listens, like the emulator.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

// The same allocator as the emulator's binary, so the baseline is not slower for using glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    twh_bench::without_huge_pages();
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|v| v.parse::<u16>())) {
            ("--port", Some(Ok(p))) => port = p,
            _ => {
                eprintln!("usage: bare [--port N]");
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bare: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let (addr, task) = match twh_bench::bare::start(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("bare: cannot listen on port {port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("export TWH_BASE_URL=http://{addr}");
        let _ = task.await;
        ExitCode::SUCCESS
    })
}
