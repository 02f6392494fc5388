//! A fault-injecting HTTP proxy to put in front of the test S3 server.
//!
//! It forwards each request on its own upstream connection and can, per request, answer 503
//! SlowDown, drop the connection, stall it, deny a bucket (403 AccessDenied), or fail everything
//! after the n-th request. It records what went through (method, target, Range header, status,
//! response body bytes), so tests can also check *how* the engine talks to S3: range requests,
//! multipart uploads. It listens on 127.0.0.1 only and stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Which requests fail, and how. Requests are numbered from 1 in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer every k-th request with 503 SlowDown.
    pub slow_down_every: Option<u64>,
    /// Close the connection without an answer on every k-th request.
    pub drop_every: Option<u64>,
    /// Hold request n for the duration, then close the connection without an answer.
    pub stall: Option<(u64, Duration)>,
    /// Answer 403 AccessDenied to every request for this bucket.
    pub deny_bucket: Option<String>,
    /// Answer 503 to every request after the n-th.
    pub fail_after: Option<u64>,
    /// Answer 503 to every request with this method (e.g. `PUT`: uploads fail, reads work).
    pub fail_method: Option<String>,
}

/// One request that reached the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Request target (path and query).
    pub target: String,
    /// The Range header, if any.
    pub range: Option<String>,
    /// Status sent back (0 when the connection was dropped).
    pub status: u16,
    /// Bytes of the response body sent back.
    pub body_bytes: u64,
}

struct State {
    upstream: String,
    faults: Mutex<Faults>,
    count: AtomicU64,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
}

/// A running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to use as the S3 endpoint.
    pub endpoint: String,
    state: Arc<State>,
    port: u16,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`).
    pub fn start(upstream: &str, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream: upstream.trim_start_matches("http://").trim_end_matches('/').to_string(),
            faults: Mutex::new(faults),
            count: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept_state = state.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(client) = client {
                    let state = accept_state.clone();
                    thread::spawn(move || serve(client, &state));
                }
            }
        });
        FaultProxy { endpoint: format!("http://127.0.0.1:{port}"), state, port }
    }

    /// Replaces the fault plan (e.g. to fail only once set-up is done).
    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
        self.state.count.store(0, Ordering::SeqCst);
    }

    /// Everything that went through so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Requests answered with an injected fault so far.
    pub fn faults_injected(&self) -> usize {
        self.seen().iter().filter(|s| s.status == 0 || s.status == 503 || s.status == 403).count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Request {
    method: String,
    target: String,
    head: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut head = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        head.push((name.trim().to_string(), value.trim().to_string()));
    }
    let header = |name: &str| head.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(length) = header("content-length") {
        body.resize(length.parse().ok()?, 0);
        reader.read_exact(&mut body).ok()?;
    } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        head.retain(|(n, _)| !n.eq_ignore_ascii_case("transfer-encoding"));
        head.push(("Content-Length".into(), body.len().to_string()));
    }
    Some(Request { method, target, head, body })
}

fn error_response(status: u16, code: &str, message: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let reason = if status == 403 { "Forbidden" } else { "Service Unavailable" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

enum Decision {
    Forward,
    Answer(u16, &'static str),
    Drop,
    Stall(Duration),
}

fn decide(state: &State, request: &Request) -> Decision {
    let n = state.count.fetch_add(1, Ordering::SeqCst) + 1;
    let faults = state.faults.lock().unwrap().clone();
    let bucket = request.target.trim_start_matches('/').split(['/', '?']).next().unwrap_or("");
    if faults.deny_bucket.as_deref() == Some(bucket) {
        return Decision::Answer(403, "AccessDenied");
    }
    if faults.fail_after.is_some_and(|k| n > k) || faults.fail_method.as_deref() == Some(request.method.as_str()) {
        return Decision::Answer(503, "SlowDown");
    }
    if let Some((nth, duration)) = faults.stall
        && nth == n
    {
        return Decision::Stall(duration);
    }
    if faults.slow_down_every.is_some_and(|k| n.is_multiple_of(k)) {
        return Decision::Answer(503, "SlowDown");
    }
    if faults.drop_every.is_some_and(|k| n.is_multiple_of(k)) {
        return Decision::Drop;
    }
    Decision::Forward
}

fn serve(client: TcpStream, state: &State) {
    let mut writer = client.try_clone().expect("clone client stream");
    let mut reader = BufReader::new(client);
    while let Some(request) = read_request(&mut reader) {
        let range = request.head.iter().find(|(n, _)| n.eq_ignore_ascii_case("range")).map(|(_, v)| v.clone());
        let mut seen =
            Seen { method: request.method.clone(), target: request.target.clone(), range, status: 0, body_bytes: 0 };
        match decide(state, &request) {
            Decision::Answer(status, code) => {
                seen.status = status;
                state.seen.lock().unwrap().push(seen);
                if writer.write_all(&error_response(status, code, "injected by the test proxy")).is_err() {
                    return;
                }
            }
            Decision::Drop => {
                state.seen.lock().unwrap().push(seen);
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Decision::Stall(duration) => {
                state.seen.lock().unwrap().push(seen);
                thread::sleep(duration);
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Decision::Forward => match forward(&state.upstream, &request) {
                Some((response, status, body_bytes)) => {
                    seen.status = status;
                    seen.body_bytes = body_bytes;
                    state.seen.lock().unwrap().push(seen);
                    if writer.write_all(&response).is_err() {
                        return;
                    }
                }
                None => {
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
            },
        }
    }
}

/// Sends the request upstream on a fresh connection and returns the whole response.
fn forward(upstream: &str, request: &Request) -> Option<(Vec<u8>, u16, u64)> {
    let mut server = TcpStream::connect(upstream).ok()?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in &request.head {
        if !name.eq_ignore_ascii_case("connection") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    server.write_all(head.as_bytes()).ok()?;
    server.write_all(&request.body).ok()?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).ok()?;
    let text_end = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&response[..text_end]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    // The client keeps its connection to the proxy open: frame the body by its length.
    let mut lines: Vec<&str> = head.trim_end().split("\r\n").collect();
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let body = response[text_end..].to_vec();
    let chunked = lines.iter().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:"));
    let body = if chunked { dechunk(&body)? } else { body };
    lines.retain(|l| {
        let l = l.to_ascii_lowercase();
        !l.starts_with("transfer-encoding:") && !l.starts_with("content-length:")
    });
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(format!("\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
    let body_bytes = body.len() as u64;
    out.extend_from_slice(&body);
    Some((out, status, body_bytes))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
