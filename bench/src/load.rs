//! The load generator: `connections` keep-alive HTTP/1.1 connections, one task each, each sending
//! its next request as soon as the previous answer's body is read (closed loop, no pipelining).
//! Requests are written from prepared bytes and answers parsed with `httparse` (the parser hyper
//! uses), so the load generator spends little CPU per request and its own queueing stays out of
//! the measured latency.
//!
//! It runs on a current-thread Tokio runtime so that it uses exactly one core (the caller pins
//! the process). Every request carries a unique `Idempotency-Key` (`<prefix>-<conn>-<n>`), so
//! every answered request against the emulator is a new ledger movement. Latency is measured from
//! just before the request is built to the last byte of the answer's body, in nanoseconds, into
//! HDR histograms: one for the whole measured phase and one per time window, so a latency that
//! grows with the state shows up in the later windows.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::procfs;

/// What to send, and for how long.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadSpec {
    /// Server address.
    pub addr: SocketAddr,
    /// Request path (`POST`).
    pub path: String,
    /// `Authorization` header value, if any.
    pub authorization: Option<String>,
    /// Request bodies, used in turn.
    pub bodies: Vec<String>,
    /// Number of connections (and tasks).
    pub connections: usize,
    /// Load before measuring (answers count toward `ok_total`, not toward latency and rate).
    pub warmup: Duration,
    /// Measured phase.
    pub duration: Duration,
    /// Length of a timeline window.
    pub window: Duration,
    /// Idempotency key prefix, unique per run.
    pub key_prefix: String,
    /// The status every answer must have.
    pub expect_status: u16,
    /// The server's pid, to sample its resident memory and CPU time.
    pub server_pid: Option<u32>,
    /// Stop once this many expected answers (warm-up included) have arrived.
    pub stop_after_ok: Option<u64>,
    /// Never sleep: poll the connections in a loop, using the whole core. A load generator that
    /// sleeps while it waits makes the server pay for waking it: on loopback the server's `writev`
    /// runs the client's receive path inline, wake-up included, which costs an inter-processor
    /// interrupt in a VM. The slower the server, the more often its client is asleep, so that
    /// cost grows as the server slows down. Between machines it lands on the client's host.
    #[serde(default)]
    pub spin: bool,
}

/// Latency percentiles, in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1_000.0;
        Percentiles {
            count: h.len(),
            mean: h.mean() / 1_000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// One window of the measured phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Window {
    /// Seconds since the measured phase began, at the window's start.
    pub start_s: f64,
    /// Expected answers completed in the window.
    pub ok: u64,
    /// Answers per second in the window.
    pub rate: f64,
    /// Expected answers since the load began (warm-up included) at the window's end: for the
    /// emulator, the number of movements this run has written so far.
    pub ok_total_at_end: u64,
    /// Latency in the window.
    pub latency: Percentiles,
    /// Server resident memory at the window's end, in bytes.
    pub server_rss: Option<u64>,
}

/// What a load run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadReport {
    /// Expected answers, warm-up included.
    pub ok_total: u64,
    /// Unexpected statuses and transport errors, warm-up included.
    pub errors: u64,
    /// The first error seen.
    pub error_sample: Option<String>,
    /// Expected answers when the measured phase began (the warm-up's).
    pub ok_at_start: u64,
    /// Server resident memory when the measured phase began, in bytes.
    pub server_rss_at_start: Option<u64>,
    /// Expected answers completed in the measured phase.
    pub measured_ok: u64,
    /// Length of the measured phase (shorter than asked when `stop_after_ok` was reached).
    pub measured_seconds: f64,
    /// `measured_ok / measured_seconds`.
    pub rate: f64,
    /// Latency over the measured phase.
    pub latency: Percentiles,
    /// The latency histogram of the measured phase (nanoseconds), HdrHistogram V2 format in
    /// base64, so that runs can be merged ([`decode_histogram`]).
    pub histogram: String,
    /// The measured phase, window by window.
    pub windows: Vec<Window>,
    /// Server CPU time (user + system) during the measured phase, in seconds.
    pub server_cpu_seconds: Option<f64>,
    /// Load generator CPU time during the measured phase, in seconds.
    pub loadgen_cpu_seconds: Option<f64>,
    /// Busy share (0..=1) of every core of the machine during the measured phase, whoever used it.
    pub core_busy: Vec<f64>,
}

struct Recorder {
    measure_from: Instant,
    measure_until: Instant,
    window: Duration,
    stop_after_ok: Option<u64>,
    stopped_at: Option<Instant>,
    ok_total: u64,
    errors: u64,
    error_sample: Option<String>,
    all: Histogram<u64>,
    windows: Vec<Histogram<u64>>,
    ok_total_at: Vec<u64>,
}

/// An empty latency histogram (nanoseconds).
pub fn histogram() -> Histogram<u64> {
    // 1 ns .. 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

impl Recorder {
    fn ok(&mut self, done: Instant, latency: Duration) {
        self.ok_total += 1;
        if self.stopped_at.is_none() && self.stop_after_ok.is_some_and(|n| self.ok_total >= n) {
            self.stopped_at = Some(done);
        }
        // Answers after the stop (the requests still in flight then) are not measured.
        let end = self.stopped_at.map_or(self.measure_until, |s| s.min(self.measure_until));
        if done < self.measure_from || done > end || done == self.measure_until {
            return;
        }
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.all.saturating_record(ns);
        let w = ((done - self.measure_from).as_nanos() / self.window.as_nanos().max(1)) as usize;
        while self.windows.len() <= w {
            self.windows.push(histogram());
            self.ok_total_at.push(0);
        }
        self.windows[w].saturating_record(ns);
        self.ok_total_at[w] = self.ok_total;
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.error_sample.is_none() {
            self.error_sample = Some(what);
        }
    }
}

type Shared = Arc<Mutex<Recorder>>;

fn with<T>(r: &Shared, f: impl FnOnce(&mut Recorder) -> T) -> T {
    f(&mut r.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Runs the load on a current-thread runtime in this thread and returns what it measured.
pub fn run(spec: LoadSpec) -> anyhow::Result<LoadReport> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_async(spec))
}

async fn run_async(spec: LoadSpec) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(!spec.bodies.is_empty(), "no request body");
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let measure_until = measure_from + spec.duration;
    let recorder: Shared = Arc::new(Mutex::new(Recorder {
        measure_from,
        measure_until,
        window: spec.window,
        stop_after_ok: spec.stop_after_ok,
        stopped_at: None,
        ok_total: 0,
        errors: 0,
        error_sample: None,
        all: histogram(),
        windows: Vec::new(),
        ok_total_at: Vec::new(),
    }));
    let spec = Arc::new(spec);

    let mut tasks = tokio::task::JoinSet::new();
    if spec.spin {
        // A task that always yields: the runtime then polls for I/O without blocking and never
        // sleeps, so no answer has to wake it (see `LoadSpec::spin`).
        tokio::spawn(async {
            loop {
                tokio::task::yield_now().await;
            }
        });
    }
    for conn in 0..spec.connections {
        tasks.spawn(connection(spec.clone(), conn, recorder.clone(), measure_until));
    }

    // While the connections run: CPU times at the measured phase's start and end, and the
    // server's memory at every window's end.
    let server_rss = || spec.server_pid.and_then(procfs::rss_bytes);
    let cpu = || (spec.server_pid.and_then(procfs::cpu_seconds), procfs::cpu_seconds(std::process::id()));
    let mut done = false;
    tokio::select! {
        _ = tokio::time::sleep_until(measure_from.into()) => {}
        _ = join_all(&mut tasks) => done = true,
    }
    let cpu_from = cpu();
    let cores_from = procfs::core_times();
    let rss_at_start = server_rss();
    let ok_at_start = with(&recorder, |r| r.ok_total);
    let mut rss = Vec::new();
    let mut tick = measure_from + spec.window;
    while !done {
        tokio::select! {
            _ = tokio::time::sleep_until(tick.into()) => {
                rss.push(server_rss());
                tick += spec.window;
            }
            _ = join_all(&mut tasks) => done = true,
        }
    }
    let cpu_to = cpu();
    let cores_to = procfs::core_times();
    let r = recorder.lock().unwrap_or_else(PoisonError::into_inner);
    let measured_end = r.stopped_at.unwrap_or(measure_until).min(measure_until);
    let duration_s = measured_end.saturating_duration_since(measure_from).as_secs_f64().max(f64::EPSILON);
    if rss.len() < r.windows.len() {
        rss.push(server_rss());
    }
    let window_s = spec.window.as_secs_f64();
    let mut last_total = 0;
    let windows = r
        .windows
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let start_s = i as f64 * window_s;
            let len = (duration_s - start_s).min(window_s).max(f64::EPSILON);
            last_total = r.ok_total_at[i].max(last_total);
            Window {
                start_s,
                ok: h.len(),
                rate: h.len() as f64 / len,
                ok_total_at_end: last_total,
                latency: Percentiles::of(h),
                server_rss: rss.get(i).copied().flatten(),
            }
        })
        .collect();
    Ok(LoadReport {
        ok_total: r.ok_total,
        errors: r.errors,
        error_sample: r.error_sample.clone(),
        ok_at_start,
        server_rss_at_start: rss_at_start,
        measured_ok: r.all.len(),
        measured_seconds: duration_s,
        rate: r.all.len() as f64 / duration_s,
        latency: Percentiles::of(&r.all),
        histogram: encode_histogram(&r.all),
        windows,
        server_cpu_seconds: cpu_from.0.zip(cpu_to.0).map(|(a, b)| b - a),
        loadgen_cpu_seconds: cpu_from.1.zip(cpu_to.1).map(|(a, b)| b - a),
        core_busy: procfs::core_busy(&cores_from, &cores_to),
    })
}

fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine;
    use hdrhistogram::serialization::{Serializer, V2Serializer};
    let mut bytes = Vec::new();
    match V2Serializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

/// Decodes [`LoadReport::histogram`].
pub fn decode_histogram(s: &str) -> Option<Histogram<u64>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    hdrhistogram::serialization::Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
}

async fn join_all(tasks: &mut tokio::task::JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// Largest answer the load generator reads (head and body).
const MAX_ANSWER: usize = 1 << 20;

/// The bytes of every request of one connection up to its `Idempotency-Key` value: request
/// line, `Host`, `Content-Type`, `Authorization`.
fn request_head(spec: &LoadSpec) -> Vec<u8> {
    let mut head = format!("POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n", spec.path, spec.addr);
    if let Some(a) = &spec.authorization {
        head.push_str("authorization: ");
        head.push_str(a);
        head.push_str("\r\n");
    }
    head.push_str("idempotency-key: ");
    head.into_bytes()
}

/// One answer: its status and its body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// Reads one answer from `stream` into `buf` (which keeps what follows it, normally nothing).
/// Only `Content-Length` bodies: every answer of the emulator and of the baseline has one.
async fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Answer> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut head = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = head.parse(buf)? {
            let status = head.code.unwrap_or(0);
            let mut length = None;
            for h in head.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    length = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    anyhow::bail!("answer with Transfer-Encoding (the load generator reads Content-Length bodies)");
                }
            }
            let length = length.ok_or_else(|| anyhow::anyhow!("answer without Content-Length"))?;
            let total = head_len + length;
            anyhow::ensure!(total <= MAX_ANSWER, "answer of {total} bytes");
            while buf.len() < total {
                read_more(stream, buf).await?;
            }
            let body = buf[head_len..total].to_vec();
            buf.drain(..total);
            return Ok(Answer { status, body });
        }
        anyhow::ensure!(buf.len() < MAX_ANSWER, "answer head over {MAX_ANSWER} bytes");
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    buf.reserve(16 << 10);
    let n = stream.read_buf(buf).await?;
    anyhow::ensure!(n > 0, "connection closed by the server");
    Ok(())
}

/// One keep-alive connection: writes a request, reads its answer, and again, on one task, so an
/// answer read is followed at once by the next request's write. (hyper's client hands each request
/// from the caller's task to a connection task and back: three trips through the run queue per
/// request, which on one core made the connections move in convoys and put the load generator's
/// own queueing into the measured latency.)
async fn connection(spec: Arc<LoadSpec>, conn: usize, recorder: Shared, until: Instant) {
    let head = request_head(&spec);
    let mut stream: Option<TcpStream> = None;
    let mut request = Vec::with_capacity(head.len() + 256);
    let mut buf = Vec::with_capacity(16 << 10);
    let mut n: u64 = 0;
    while Instant::now() < until && with(&recorder, |r| r.stopped_at.is_none()) {
        let s = match stream.as_mut() {
            Some(s) => s,
            None => match TcpStream::connect(spec.addr).await.and_then(|s| s.set_nodelay(true).map(|()| s)) {
                Ok(s) => {
                    buf.clear();
                    stream.insert(s)
                }
                Err(e) => {
                    with(&recorder, |r| r.error(format!("connect: {e}")));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        let body = spec.bodies[(conn + n as usize) % spec.bodies.len()].as_bytes();
        request.clear();
        request.extend_from_slice(&head);
        {
            use std::io::Write;
            let _ = write!(request, "{}-{conn}-{n}\r\ncontent-length: {}\r\n\r\n", spec.key_prefix, body.len());
        }
        request.extend_from_slice(body);
        n += 1;
        let answer = async {
            s.write_all(&request).await?;
            read_answer(s, &mut buf).await
        };
        match answer.await {
            Ok(a) if a.status == spec.expect_status => {
                let done = Instant::now();
                with(&recorder, |r| r.ok(done, done - started));
            }
            Ok(a) => {
                with(&recorder, |r| r.error(format!("status {}: {}", a.status, String::from_utf8_lossy(&a.body))));
            }
            Err(e) => {
                with(&recorder, |r| r.error(format!("request: {e}")));
                stream = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bare server on its own runtime thread; returns its address.
    fn bare() -> SocketAddr {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let (addr, task) = crate::bare::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
                tx.send(addr).expect("send");
                let _ = task.await;
            });
        });
        rx.recv().expect("address")
    }

    fn spec(addr: SocketAddr, expect_status: u16) -> LoadSpec {
        LoadSpec {
            addr,
            path: "/v1/stock-movements".to_owned(),
            authorization: Some("Bearer sk_test".to_owned()),
            bodies: vec![r#"{"type":"receipt"}"#.to_owned(), r#"{"type":"shipment","n":2}"#.to_owned()],
            connections: 4,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(300),
            window: Duration::from_millis(100),
            key_prefix: "t".to_owned(),
            expect_status,
            server_pid: None,
            stop_after_ok: None,
            spin: false,
        }
    }

    #[test]
    fn closed_loop_against_the_baseline_reads_every_answer() {
        let report = run(spec(bare(), 201)).expect("run");
        assert_eq!(report.errors, 0, "{:?}", report.error_sample);
        assert!(report.measured_ok > 0 && report.ok_total >= report.measured_ok);
        assert_eq!(report.latency.count, report.measured_ok);
        assert!(report.latency.p50 > 0.0 && report.latency.max >= report.latency.p99);
        assert_eq!(report.windows.iter().map(|w| w.ok).sum::<u64>(), report.measured_ok);
    }

    #[test]
    fn an_unexpected_status_is_an_error_with_its_body() {
        let report = run(LoadSpec { stop_after_ok: Some(1), ..spec(bare(), 200) }).expect("run");
        assert_eq!(report.ok_total, 0);
        assert!(report.errors > 0);
        let sample = report.error_sample.unwrap_or_default();
        assert!(sample.starts_with("status 201: {\"id\":\"mov_"), "{sample}");
    }

    #[test]
    fn stops_after_the_asked_number_of_answers() {
        let spec = LoadSpec { stop_after_ok: Some(500), duration: Duration::from_secs(30), ..spec(bare(), 201) };
        // Spinning or sleeping between answers, the load stops when asked.
        let report = run(LoadSpec { spin: true, ..spec.clone() }).expect("run");
        assert_eq!(report.errors, 0, "{:?}", report.error_sample);
        assert!((500..500 + 4).contains(&report.ok_total), "{}", report.ok_total);
        let report = run(spec).expect("run");
        assert_eq!(report.errors, 0, "{:?}", report.error_sample);
        // The requests in flight at the stop finish; nothing more is sent.
        assert!((500..500 + 4).contains(&report.ok_total), "{}", report.ok_total);
        assert!(report.measured_seconds < 30.0);
    }

    /// A server that answers each connection's first request with `parts`, pausing between them.
    async fn answering(parts: Vec<&'static str>) -> TcpStream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            for p in parts {
                s.write_all(p.as_bytes()).await.expect("write");
                s.flush().await.expect("flush");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        TcpStream::connect(addr).await.expect("connect")
    }

    #[tokio::test]
    async fn an_answer_split_over_reads_is_put_together() {
        let mut s = answering(vec!["HTTP/1.1 201 Created\r\ncontent-le", "ngth: 5\r\n\r\nab", "cdeHTTP/1.1"]).await;
        let mut buf = Vec::new();
        let a = read_answer(&mut s, &mut buf).await.expect("answer");
        assert_eq!((a.status, a.body.as_slice()), (201, b"abcde".as_slice()));
        assert_eq!(buf, b"HTTP/1.1", "what follows the answer stays in the buffer");
    }

    #[tokio::test]
    async fn answers_without_a_length_are_refused() {
        let mut s = answering(vec!["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"]).await;
        let e = read_answer(&mut s, &mut Vec::new()).await.err().expect("an error");
        assert!(e.to_string().contains("Transfer-Encoding"), "{e}");
        let mut s = answering(vec!["HTTP/1.1 200 OK\r\n\r\n"]).await;
        let e = read_answer(&mut s, &mut Vec::new()).await.err().expect("an error");
        assert!(e.to_string().contains("without Content-Length"), "{e}");
    }

    #[tokio::test]
    async fn a_closed_connection_is_an_error() {
        let mut s = answering(vec!["HTTP/1.1 201 Created\r\ncontent-length: 9\r\n\r\nabc"]).await;
        let e = read_answer(&mut s, &mut Vec::new()).await.err().expect("an error");
        assert!(e.to_string().contains("closed"), "{e}");
    }
}
