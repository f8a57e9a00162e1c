//! `twh-bench`: the benchmark of the TWH emulator.
//!
//! - [`bare`]: the baseline server, a bare hyper server answering a fixed JSON body shaped like
//!   a movement, with the same accept loop and connection settings as the emulator.
//! - [`load`]: the load generator (64 keep-alive HTTP/1.1 connections, one task each, closed
//!   loop, latencies into HDR histograms).
//! - [`inproc`]: a million movements through `twh_emulator::app` in this process: memory per
//!   movement, and the time of each write with no network in the way.
//! - [`client`]: one-shot HTTP requests for setup and start-time probes.
//! - [`process`]: building and spawning server processes, reading the URL and key they print.
//! - [`procfs`]: resident memory and CPU time of a process, from `/proc`.
//!
//! `src/main.rs` runs everything and prints the table; see `bench/README.md`. `src/bin/scale.rs`
//! (`twh-bench-scale`) times the first page of every list filter on a tenant of 100,000 items and
//! 1,000,000 movements against the unfiltered first page.

pub mod bare;
pub mod client;
pub mod inproc;
pub mod load;
pub mod process;
pub mod procfs;

/// Turns transparent huge pages off for this process, as `twh-emulator serve` does for itself
/// (see its `main.rs`), so that the baseline and the in-process run have the same memory setup
/// as the served emulator. Best effort.
pub fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
