//! Server processes: building, spawning (optionally pinned to a core) and reading the URL and
//! key they print.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A server process this program started; killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The demo sandbox's key it printed, if asked for.
    pub api_key: Option<String>,
}

impl Server {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program`, pinned to `core` with `taskset` if given.
pub fn pinned(core: Option<usize>, program: &Path) -> Command {
    match core {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// Spawns a server that prints `export TWH_BASE_URL=…` (and maybe `export TWH_API_KEY=…`).
pub fn spawn_server(mut cmd: Command, want_key: bool) -> anyhow::Result<Server> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    let mut api_key = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while addr.is_none() || (want_key && api_key.is_none()) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{cmd:?} did not print its address{}", if want_key { " and key" } else { "" });
            }
        };
        if let Some(url) = line.strip_prefix("export TWH_BASE_URL=http://") {
            addr = Some(url.trim().parse::<SocketAddr>()?);
        } else if let Some(key) = line.strip_prefix("export TWH_API_KEY=") {
            api_key = Some(key.trim().to_owned());
        }
    }
    Ok(Server { child, addr: addr.context("address")?, api_key })
}

/// Builds the emulator binary into the target directory this program runs from (a warning, not
/// a failure, if cargo is unavailable).
pub fn build_emulator(exe_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "-p", "twh-emulator", "--bin", "twh-emulator"]);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    // Build into the target directory this program runs from (…/target/release/twh-bench).
    if let Some(target) = exe_dir.parent().filter(|_| exe_dir.file_name().is_some_and(|n| n == "release")) {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    eprintln!("twh-bench: building the emulator binary ({cmd:?})");
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("twh-bench: WARNING: `cargo build -p twh-emulator` failed ({s}); using the binary already there")
        }
        Err(e) => eprintln!("twh-bench: WARNING: cannot run cargo ({e}); using the binary already there"),
    }
}
