//! The HTTP/1.x proxy. Each client connection is one task that parses its requests itself
//! (httparse), rewrites their heads as bytes and relays them over backend connections it
//! drives directly from a per-backend idle pool: no header maps built per request and no
//! hand-off to a separate connection task, which is where a general-purpose client spends a
//! proxy's time. HTTP/2 from clients stays on hyper (`http.rs`).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use hyper::StatusCode;
use hyper::http::uri::{Authority, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::balancer::Backend;
use crate::config::{LoadBalancer, PersistenceType};
use crate::http::{
    HttpProxy, POOL_IDLE_TIMEOUT, connection_tokens, cookie_value, forwarded_element,
    is_hop_by_hop, is_idempotent_method,
};
use crate::lb::{LbRuntime, MAX_CONNECT_ATTEMPTS, connect_backend};
use crate::pipe::pipe;

/// Headers one request or response head may carry (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// Spare room for each read of heads and small bodies.
const READ_CHUNK: usize = 8 * 1024;
/// Spare room for each read of a large body, so it moves in few system calls.
const BULK_CHUNK: usize = 64 * 1024;
/// Below this, a response's head and the start of its body leave in one write.
const COALESCE_BYTES: usize = 16 * 1024;
/// The largest response head a backend may send.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Idle connections kept per backend; the oldest go first beyond this.
const MAX_IDLE_PER_BACKEND: usize = 256;
/// Bounds on a chunked body's framing: one size line with its extensions, and all trailers.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// A backend's idle keep-alive connections, newest last.
#[derive(Debug, Default)]
pub struct IdlePool {
    connections: Mutex<VecDeque<(Instant, TcpStream)>>,
}

impl IdlePool {
    /// The newest idle connection that is still open, if any.
    fn take(&self) -> Option<TcpStream> {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((since, stream)) = connections.pop_back() {
            if expired(since) {
                // Everything older has expired too.
                connections.clear();
                return None;
            }
            if still_open(&stream) {
                return Some(stream);
            }
        }
        None
    }

    /// Drops the connections that expired or that the backend closed; all of them unless
    /// `keep`.
    fn sweep(&self, keep: bool) {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections.retain(|(since, stream)| keep && !expired(*since) && still_open(stream));
    }

    fn put(&self, stream: TcpStream) {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        while connections
            .front()
            .is_some_and(|(since, _)| expired(*since))
            || connections.len() >= MAX_IDLE_PER_BACKEND
        {
            connections.pop_front();
        }
        connections.push_back((Instant::now(), stream));
    }
}

/// How often the idle pools are swept: without it, a connection the backend closed (its
/// keep-alive timeout) would sit in CLOSE_WAIT until the next request to that backend.
const POOL_SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Sweeps the idle pools of `lb`'s backends until the load balancer stops.
pub async fn sweep_idle_pools(lb: Arc<LbRuntime>) {
    let mut ticker = tokio::time::interval(POOL_SWEEP_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = lb.stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        for backend in lb.pool.backends().iter() {
            // Nothing takes a draining backend's connections any more.
            backend.idle_http.sweep(!backend.is_draining());
        }
    }
}

/// Whether a connection idle since `since` has been kept long enough.
fn expired(since: Instant) -> bool {
    since.elapsed() >= POOL_IDLE_TIMEOUT
}

/// An idle connection the backend has not closed (nor written to). tokio answers from the
/// readiness it already knows, so a quiet connection costs no system call here.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(err) if err.kind() == io::ErrorKind::WouldBlock)
}

/// How a message's body is delimited (RFC 9112 section 6).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    UntilClose,
}

/// What the proxy keeps of a client's request once its head is rewritten.
#[derive(Debug)]
struct RequestHead {
    is_head: bool,
    idempotent: bool,
    http10: bool,
    /// Whether the client wants the connection kept open after this exchange.
    keep_alive: bool,
    upgrade: bool,
    body: Framing,
    /// The backend the persistence cookie names.
    cookie_backend: Option<String>,
}

/// A request fiberlb answers itself, with the reason counted in `refused`.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
    reason: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>, reason: &'static str) -> Self {
        Self {
            status,
            message: message.into(),
            reason,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, "bad_request")
    }
}

/// Parses a complete request head at the start of `input` and writes the head the backend
/// gets into `out`: hop-by-hop headers gone, forwarding headers added, the target in origin
/// form. `Ok(None)` while the head is incomplete.
fn parse_request(
    input: &[u8],
    proxy: &HttpProxy,
    client: SocketAddr,
    cookie_name: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<Option<(usize, RequestHead)>, Refusal> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let head_len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("more than {MAX_HEADERS} request headers"),
                "header_too_large",
            ));
        }
        Err(err) => return Err(Refusal::bad_request(format!("malformed request: {err}"))),
    };
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(Refusal::bad_request("malformed request line"));
    };
    let headers = request.headers;
    let http10 = version == 0;
    let tokens = connection_tokens(connection_values(headers));
    let has_token = |token: &str| tokens.iter().any(|t| t == token);
    let upgrade = !http10
        && has_token("upgrade")
        && headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("upgrade"));

    let (path, target_authority) = if target.starts_with('/') || target == "*" {
        (target, None)
    } else if method.eq_ignore_ascii_case("CONNECT") {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not proxied by an HTTP load balancer",
            "bad_request",
        ));
    } else {
        // Absolute form: the backend gets the path, the authority stands in for a Host.
        let uri = target
            .parse::<Uri>()
            .map_err(|err| Refusal::bad_request(format!("request target {target:?}: {err}")))?;
        let (Some(authority), Some(path)) = (uri.authority(), uri.path_and_query()) else {
            return Err(Refusal::bad_request(format!(
                "request target {target:?} is not a path or an absolute URI"
            )));
        };
        let start = target.len() - path.as_str().len();
        (&target[start..], Some(authority.clone()))
    };

    let mut host: Option<&[u8]> = None;
    let mut content_length: Option<u64> = None;
    let mut chunked = None;
    let mut forwarded_for: Vec<&[u8]> = Vec::new();
    let mut forwarded: Vec<&[u8]> = Vec::new();
    let mut cookie_backend = None;
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for header in headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("host") {
            if host.replace(value).is_some() {
                return Err(Refusal::bad_request("more than one Host header"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let length = parse_content_length(value, content_length)
                .ok_or_else(|| Refusal::bad_request("invalid Content-Length"))?;
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding decides the framing; the codings pass on as sent.
            chunked = Some(last_coding_is_chunked(value));
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            forwarded_for.push(value);
            continue;
        } else if name.eq_ignore_ascii_case("forwarded") {
            forwarded.push(value);
            continue;
        } else if name.eq_ignore_ascii_case("x-forwarded-proto")
            || name.eq_ignore_ascii_case("x-forwarded-host")
            || is_hop_by_hop(name, &tokens, upgrade)
        {
            continue;
        } else if let Some(cookie) = cookie_name
            && name.eq_ignore_ascii_case("cookie")
            && cookie_backend.is_none()
        {
            cookie_backend = cookie_value([value].into_iter(), cookie);
        }
        push_header(out, name.as_bytes(), value);
    }

    let host = match (host, &target_authority) {
        (Some(host), _) => {
            Authority::try_from(host).map_err(|_| Refusal::bad_request("invalid Host header"))?
        }
        (None, Some(authority)) => {
            push_header(out, b"Host", authority.as_str().as_bytes());
            authority.clone()
        }
        (None, None) => return Err(Refusal::bad_request("request has no host")),
    };
    let body = match (chunked, content_length) {
        (Some(_), Some(_)) => {
            return Err(Refusal::bad_request(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        (Some(_), None) if http10 => {
            return Err(Refusal::bad_request(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        (Some(true), None) => Framing::Chunked,
        (Some(false), None) => {
            return Err(Refusal::bad_request(
                "Transfer-Encoding whose last coding is not chunked",
            ));
        }
        (None, Some(0) | None) => Framing::Empty,
        (None, Some(length)) => Framing::Length(length),
    };

    let client_ip = client.ip().to_string();
    let mut joined = join_list(&forwarded_for);
    if !joined.is_empty() {
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(client_ip.as_bytes());
    push_header(out, b"X-Forwarded-For", &joined);
    push_header(out, b"X-Forwarded-Proto", proxy.scheme.as_bytes());
    push_header(out, b"X-Forwarded-Host", host.as_str().as_bytes());
    let mut joined = join_list(&forwarded);
    if !joined.is_empty() {
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(
        forwarded_element(client.ip(), proxy.scheme, Some(host.as_str())).as_bytes(),
    );
    push_header(out, b"Forwarded", &joined);
    if upgrade {
        push_header(out, b"Connection", b"upgrade");
    }
    out.extend_from_slice(b"\r\n");

    Ok(Some((
        head_len,
        RequestHead {
            is_head: method == "HEAD",
            idempotent: is_idempotent_method(method),
            http10,
            keep_alive: if http10 {
                has_token("keep-alive")
            } else {
                !has_token("close")
            },
            upgrade,
            body,
            cookie_backend,
        },
    )))
}

fn connection_values<'a>(
    headers: &'a [httparse::Header<'a>],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .map(|h| h.value)
}

/// A Content-Length value, which must agree with any seen before (`previous`).
fn parse_content_length(value: &[u8], previous: Option<u64>) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let length = text.parse().ok()?;
    previous.is_none_or(|p| p == length).then_some(length)
}

fn last_coding_is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

fn join_list(values: &[&[u8]]) -> Vec<u8> {
    let mut joined = Vec::new();
    for value in values
        .iter()
        .map(|v| v.trim_ascii())
        .filter(|v| !v.is_empty())
    {
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(value);
    }
    joined
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A backend's response head, as parsed and rewritten for the client.
#[derive(Debug)]
struct ResponseHead {
    status: StatusCode,
    framing: Framing,
    /// 1xx other than 101: relayed, and the real answer follows.
    interim: bool,
    /// Whether the backend keeps the connection open afterwards.
    backend_keep_alive: bool,
    /// Whether the client's connection stays open afterwards.
    client_keep_alive: bool,
    /// An HTTP/1.0 client cannot take a chunked body: it gets the data, then a close.
    dechunk: bool,
}

/// What the client's answer depends on besides the backend's head.
struct ResponseContext<'a> {
    request: &'a RequestHead,
    /// The client may keep its connection (its request was read whole, fiberlb is not
    /// stopping, and it asked to).
    client_may_stay: bool,
    sticky_cookie: Option<(&'a str, &'a str)>,
}

/// Parses a complete response head at the start of `input` and writes the client's head into
/// `out`. `Ok(None)` while incomplete; `Err` names what is wrong with it.
fn parse_response(
    input: &[u8],
    context: &ResponseContext<'_>,
    out: &mut Vec<u8>,
) -> Result<Option<(usize, ResponseHead)>, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let head_len = match response.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() >= MAX_RESPONSE_HEAD => {
            return Err(format!("response head over {MAX_RESPONSE_HEAD} bytes"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(format!("malformed response: {err}")),
    };
    let (Some(code), Some(version)) = (response.code, response.version) else {
        return Err("malformed status line".into());
    };
    let status =
        StatusCode::from_u16(code).map_err(|_| format!("status {code} is out of range"))?;
    let headers = response.headers;
    let tokens = connection_tokens(connection_values(headers));
    let request = context.request;
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    if switching && !request.upgrade {
        return Err("101 Switching Protocols to a request that asked for no upgrade".into());
    }
    let interim = status.is_informational() && !switching;

    let mut content_length = None;
    let mut chunked = None;
    for header in headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                parse_content_length(header.value, content_length)
                    .ok_or("invalid Content-Length")?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = Some(last_coding_is_chunked(header.value));
        }
    }
    let framing = if request.is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else {
        match (chunked, content_length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(0)) => Framing::Empty,
            (None, Some(length)) => Framing::Length(length),
        }
    };
    let dechunk = framing == Framing::Chunked && request.http10;
    let has_token = |token: &str| tokens.iter().any(|t| t == token);
    let backend_keep_alive = version == 1 && !has_token("close") && framing != Framing::UntilClose;
    let client_keep_alive =
        context.client_may_stay && !switching && framing != Framing::UntilClose && !dechunk;

    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(response.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for header in headers.iter() {
        let keep_framing = header.name.eq_ignore_ascii_case("transfer-encoding") && !dechunk;
        if !keep_framing && is_hop_by_hop(header.name, &tokens, switching) {
            continue;
        }
        push_header(out, header.name.as_bytes(), header.value);
    }
    if !interim {
        if let Some((name, backend)) = context.sticky_cookie {
            push_header(
                out,
                b"Set-Cookie",
                format!("{name}={backend}; Path=/; HttpOnly").as_bytes(),
            );
        }
        if switching {
            push_header(out, b"Connection", b"upgrade");
        } else if !client_keep_alive {
            push_header(out, b"Connection", b"close");
        } else if request.http10 {
            push_header(out, b"Connection", b"keep-alive");
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some((
        head_len,
        ResponseHead {
            status,
            framing,
            interim,
            backend_keep_alive,
            client_keep_alive,
            dechunk,
        },
    )))
}

/// Where a chunked body ends and which of its bytes are data, worked out as it passes.
#[derive(Debug)]
struct ChunkScanner {
    state: ChunkState,
    /// Bytes of the current size line, or of all trailers, against their bounds.
    framing_bytes: usize,
}

#[derive(Debug, Clone, Copy)]
enum ChunkState {
    Size {
        size: u64,
        digits: u8,
    },
    Extension {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

impl ChunkScanner {
    fn new() -> Self {
        Self {
            state: ChunkState::Size { size: 0, digits: 0 },
            framing_bytes: 0,
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.state, ChunkState::Done)
    }

    /// Consumes the body's bytes from the start of `input` (all of them unless the body ends
    /// inside it), reporting each run of data; the count consumed comes back.
    fn scan(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(Range<usize>),
    ) -> Result<usize, &'static str> {
        use ChunkState::*;
        let mut at = 0;
        while at < input.len() && !self.is_done() {
            if let Data { left } = self.state {
                let run = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - at);
                data(at..at + run);
                at += run;
                let left = left - run as u64;
                self.state = if left == 0 { DataCr } else { Data { left } };
                continue;
            }
            let byte = input[at];
            at += 1;
            self.framing_bytes += 1;
            self.state = match (self.state, byte) {
                (Size { size, digits }, _) if byte.is_ascii_hexdigit() => {
                    if digits == 16 {
                        return Err("chunk size over 64 bits");
                    }
                    let digit = u64::from((byte as char).to_digit(16).unwrap_or(0) as u8);
                    Size {
                        size: size << 4 | digit,
                        digits: digits + 1,
                    }
                }
                (Size { size, digits: 1.. }, b';' | b' ' | b'\t') => Extension { size },
                (Size { size, digits: 1.. } | Extension { size }, b'\r') => SizeLf { size },
                (Extension { size }, _) if self.framing_bytes <= MAX_CHUNK_LINE => {
                    Extension { size }
                }
                (Extension { .. }, _) => return Err("chunk extensions too long"),
                (SizeLf { size: 0 }, b'\n') => {
                    self.framing_bytes = 0;
                    TrailerStart
                }
                (SizeLf { size }, b'\n') => Data { left: size },
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => {
                    self.framing_bytes = 0;
                    Size { size: 0, digits: 0 }
                }
                (TrailerStart, b'\r') => EndLf,
                (Trailer, b'\r') => TrailerLf,
                (TrailerStart | Trailer, _) if self.framing_bytes <= MAX_TRAILER_BYTES => Trailer,
                (TrailerStart | Trailer, _) => return Err("chunked trailers too long"),
                (TrailerLf, b'\n') => TrailerStart,
                (EndLf, b'\n') => Done,
                (DataCr | DataLf, _) => return Err("chunk longer than its size"),
                _ => return Err("malformed chunked framing"),
            };
        }
        Ok(at)
    }
}

/// How far through a body the relay is.
#[derive(Debug)]
enum BodyProgress {
    Length { left: u64 },
    Chunked(ChunkScanner),
    UntilClose,
    Done,
}

impl BodyProgress {
    fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => Self::Done,
            Framing::Length(left) => Self::Length { left },
            Framing::Chunked => Self::Chunked(ChunkScanner::new()),
            Framing::UntilClose => Self::UntilClose,
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Self::Done => true,
            Self::Chunked(scanner) => scanner.is_done(),
            _ => false,
        }
    }

    /// How much of `input` belongs to the body, reporting its data runs.
    fn take(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(Range<usize>),
    ) -> Result<usize, &'static str> {
        match self {
            Self::Done => Ok(0),
            Self::Length { left } => {
                let run = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                data(0..run);
                *left -= run as u64;
                if *left == 0 {
                    *self = Self::Done;
                }
                Ok(run)
            }
            Self::Chunked(scanner) => scanner.scan(input, data),
            Self::UntilClose => {
                data(0..input.len());
                Ok(input.len())
            }
        }
    }

    fn is_large(&self) -> bool {
        match self {
            Self::Length { left } => *left > READ_CHUNK as u64,
            Self::Chunked(_) | Self::UntilClose => true,
            Self::Done => false,
        }
    }
}

/// Why an exchange with a backend ended without an answer for the client.
#[derive(Debug)]
enum ExchangeError {
    /// A reused connection turned out closed before any of the answer came: worth one more
    /// try on a fresh connection.
    Stale(String),
    /// The backend failed: 502.
    Failed(String),
    /// No backend tried could be connected to: 502.
    Unreachable,
    /// No response head within the response timeout: 504.
    Timeout,
    /// The client's body went past `max_body_bytes`: 413.
    BodyTooLarge,
    /// The client's body was malformed: 400.
    BadBody(&'static str),
    /// The client went away, or stalled; nothing more can be said to it.
    ClientGone,
    /// Part of the answer was sent when things failed: the client's connection just closes.
    Broken(String),
}

/// A connection to a backend, fresh or from its idle pool.
struct BackendConnection {
    stream: TcpStream,
    /// Taken from the pool: the backend may have closed it meanwhile.
    reused: bool,
}

/// How an exchange that reached the client ended.
struct Answered {
    status: StatusCode,
    client_keep_alive: bool,
}

/// One client connection and its buffers, reused from request to request.
struct Connection<'p, I> {
    proxy: &'p HttpProxy,
    io: I,
    peer: SocketAddr,
    /// Bytes from the client not yet used.
    input: BytesMut,
    /// Bytes from the backend not yet relayed.
    response: BytesMut,
    /// The request head as the backend gets it.
    request_head: Vec<u8>,
    /// The response head as the client gets it (and, coalesced, the start of the body).
    response_head: Vec<u8>,
}

/// Serves HTTP/1.x on one client connection until either side closes it, it idles past the
/// idle timeout, or the listener stops (the exchange in flight finishes first).
pub(crate) async fn serve<I>(proxy: &HttpProxy, io: I, peer: SocketAddr)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut connection = Connection {
        proxy,
        io,
        peer,
        input: BytesMut::with_capacity(READ_CHUNK),
        response: BytesMut::new(),
        request_head: Vec::with_capacity(1024),
        response_head: Vec::with_capacity(1024),
    };
    let mut first = true;
    while connection.next_exchange(first).await {
        first = false;
    }
    let _ = connection.io.shutdown().await;
}

impl<I> Connection<'_, I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    /// Reads one request and answers it; false when the connection should close.
    async fn next_exchange(&mut self, first: bool) -> bool {
        let proxy = self.proxy;
        let lb = &proxy.lb;
        let config = lb.config();
        let limits = &config.limits;
        let cookie = config
            .persistence
            .as_ref()
            .filter(|p| p.kind == PersistenceType::Cookie)
            .map(|p| p.cookie_name.as_str());

        // Between requests the client may idle; once it starts one, the whole head must come
        // within the header timeout.
        if self.input.is_empty() {
            let idle = Duration::from_secs(if first {
                limits.header_timeout_sec
            } else {
                limits.idle_timeout_sec
            });
            self.input.reserve(READ_CHUNK);
            let read = tokio::select! {
                read = tokio::time::timeout(idle, self.io.read_buf(&mut self.input)) => read,
                () = lb.stop.cancelled() => return false,
            };
            match read {
                Ok(Ok(1..)) => {}
                _ => return false,
            }
        }
        let head_deadline = Instant::now() + Duration::from_secs(limits.header_timeout_sec);
        let parsed = loop {
            match parse_request(
                &self.input,
                proxy,
                self.peer,
                cookie,
                &mut self.request_head,
            ) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) if self.input.len() >= limits.max_header_bytes => {
                    let refusal = Refusal::new(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        format!("request head over {} bytes", limits.max_header_bytes),
                        "header_too_large",
                    );
                    self.refuse(&refusal).await;
                    return false;
                }
                Ok(None) => {}
                Err(refusal) => {
                    self.refuse(&refusal).await;
                    return false;
                }
            }
            self.input.reserve(READ_CHUNK);
            match tokio::time::timeout_at(head_deadline, self.io.read_buf(&mut self.input)).await {
                Ok(Ok(1..)) => {}
                Ok(_) => return false,
                Err(_) => {
                    let refusal = Refusal::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request head not received in time",
                        "header_timeout",
                    );
                    self.refuse(&refusal).await;
                    return false;
                }
            }
        };
        let (head_len, request) = parsed;
        self.input.advance(head_len);
        if limits.max_body_bytes > 0
            && matches!(request.body, Framing::Length(n) if n > limits.max_body_bytes)
        {
            let refusal = Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {} bytes", limits.max_body_bytes),
                "body_too_large",
            );
            self.refuse(&refusal).await;
            return false;
        }
        // Taken out for the exchange, which needs the rest of the connection mutably.
        let outgoing = std::mem::take(&mut self.request_head);
        let keep = self.forward(&request, &outgoing, &config, cookie).await;
        self.request_head = outgoing;
        keep
    }

    /// Sends the request to a backend, retrying where that is safe, and relays the answer;
    /// false when the client's connection should close.
    async fn forward(
        &mut self,
        request: &RequestHead,
        outgoing: &[u8],
        config: &LoadBalancer,
        cookie: Option<&str>,
    ) -> bool {
        let started = std::time::Instant::now();
        let proxy = self.proxy;
        let lb = &proxy.lb;
        let limits = &config.limits;
        let connect_timeout = Duration::from_millis(limits.connect_timeout_ms);
        let pinned = request
            .cookie_backend
            .as_deref()
            .and_then(|name| lb.available_backend(name));
        let retryable = request.body == Framing::Empty && request.idempotent;
        let mut tried: Vec<Arc<Backend>> = Vec::new();
        let mut fresh_only = false;
        let (backend, result) = loop {
            let chosen = match (&pinned, tried.is_empty()) {
                (Some(backend), true) => Some(backend.clone()),
                _ => lb.choose(self.peer.ip(), &tried),
            };
            let Some(backend) = chosen else {
                lb.metrics.refused(&lb.name, "no_backend");
                let (status, message) = if tried.is_empty() {
                    (StatusCode::SERVICE_UNAVAILABLE, "no backend available")
                } else {
                    (StatusCode::BAD_GATEWAY, "no backend could be reached")
                };
                let keep = self.answer_locally(status, message, request).await;
                match tried.pop() {
                    Some(last) => last.metrics.count_response(status),
                    None => lb.metrics.local_response(&lb.name, status),
                }
                lb.request_duration.observe(started.elapsed().as_secs_f64());
                return keep;
            };
            let active = backend.open();
            let pooled = if fresh_only {
                None
            } else {
                backend.idle_http.take()
            };
            let reused = pooled.is_some();
            let stream = match pooled {
                Some(stream) => stream,
                None => match connect_backend(&backend, connect_timeout).await {
                    Ok(stream) => {
                        backend.metrics.connections.inc();
                        stream
                    }
                    Err(err) => {
                        let reason =
                            format!("connect to {}:{}: {err}", backend.address, backend.port);
                        tracing::debug!("load balancer {}: {reason}", lb.name);
                        lb.backend_failed(&backend, &reason);
                        tried.push(backend);
                        fresh_only = false;
                        if retryable && tried.len() < MAX_CONNECT_ATTEMPTS {
                            continue;
                        }
                        break (tried.pop(), Err(ExchangeError::Unreachable));
                    }
                },
            };
            let mut connection = BackendConnection { stream, reused };
            let sticky = cookie
                .filter(|_| pinned.as_ref().is_none_or(|p| !Arc::ptr_eq(p, &backend)))
                .map(|name| (name, backend.name.as_str()));
            let result = self
                .exchange(request, outgoing, config, &backend, &mut connection, sticky)
                .await;
            drop(active);
            match result {
                Ok((answered, backend_keep_alive)) => {
                    if backend_keep_alive {
                        backend.idle_http.put(connection.stream);
                    }
                    break (Some(backend), Ok(answered));
                }
                Err(ExchangeError::Stale(reason)) if retryable && !fresh_only => {
                    tracing::debug!(
                        "load balancer {}: idle connection to backend {} was closed ({reason}); trying a fresh one",
                        lb.name,
                        backend.name
                    );
                    fresh_only = true;
                    // The same backend again: `tried` stays as it was.
                    continue;
                }
                Err(err) => break (Some(backend), Err(err)),
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        let (status, keep) = match result {
            Ok(answered) => (Some(answered.status), answered.client_keep_alive),
            Err(err) => self.answer_failure(err, backend.as_deref(), request).await,
        };
        if let Some(status) = status {
            match &backend {
                Some(backend) => backend.metrics.count_response(status),
                None => lb.metrics.local_response(&lb.name, status),
            }
        }
        lb.request_duration.observe(elapsed);
        keep
    }

    /// The client's answer when an exchange failed: the status sent (none when nothing could
    /// be) and whether the connection stays open.
    async fn answer_failure(
        &mut self,
        err: ExchangeError,
        backend: Option<&Backend>,
        request: &RequestHead,
    ) -> (Option<StatusCode>, bool) {
        let proxy = self.proxy;
        let lb = &proxy.lb;
        let backend_name = backend.map_or("-", |b| b.name.as_str());
        let (status, message) = match err {
            // Counted against each backend as its connection failed.
            ExchangeError::Unreachable => {
                (StatusCode::BAD_GATEWAY, "backend unreachable".to_owned())
            }
            ExchangeError::Stale(reason) | ExchangeError::Failed(reason) => {
                if let Some(backend) = backend {
                    lb.backend_failed(backend, &reason);
                }
                tracing::debug!(
                    "load balancer {}: request to backend {backend_name} failed: {reason}",
                    lb.name
                );
                (
                    StatusCode::BAD_GATEWAY,
                    "backend failed to answer".to_owned(),
                )
            }
            ExchangeError::Timeout => {
                if let Some(backend) = backend {
                    lb.backend_failed(backend, "response timeout");
                }
                let timeout = lb.config().limits.response_timeout_sec;
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("backend gave no answer within {timeout}s"),
                )
            }
            ExchangeError::BodyTooLarge => {
                lb.metrics.refused(&lb.name, "body_too_large");
                let limit = lb.config().limits.max_body_bytes;
                let status = StatusCode::PAYLOAD_TOO_LARGE;
                self.write_local(status, &format!("request body over {limit} bytes"), true)
                    .await;
                return (Some(status), false);
            }
            ExchangeError::BadBody(reason) => {
                lb.metrics.refused(&lb.name, "bad_request");
                let status = StatusCode::BAD_REQUEST;
                self.write_local(status, &format!("malformed request body: {reason}"), true)
                    .await;
                return (Some(status), false);
            }
            ExchangeError::ClientGone => return (None, false),
            ExchangeError::Broken(reason) => {
                tracing::debug!(
                    "load balancer {}: answer from backend {backend_name} to {} cut short: {reason}",
                    lb.name,
                    self.peer
                );
                return (None, false);
            }
        };
        let keep = self.answer_locally(status, &message, request).await;
        (Some(status), keep)
    }

    /// A short answer from fiberlb to a request whose body was read whole (or had none).
    async fn answer_locally(
        &mut self,
        status: StatusCode,
        message: &str,
        request: &RequestHead,
    ) -> bool {
        let keep = request.keep_alive
            && request.body == Framing::Empty
            && !self.proxy.lb.stop.is_cancelled();
        self.write_local(status, message, !keep).await && keep
    }

    async fn refuse(&mut self, refusal: &Refusal) {
        let proxy = self.proxy;
        let lb = &proxy.lb;
        lb.metrics.refused(&lb.name, refusal.reason);
        lb.metrics.local_response(&lb.name, refusal.status);
        tracing::debug!(
            "load balancer {}: refused a request from {}: {}",
            lb.name,
            self.peer,
            refusal.message
        );
        self.write_local(refusal.status, &refusal.message, true)
            .await;
    }

    /// Writes a short plain-text answer; false if the client could not take it.
    async fn write_local(&mut self, status: StatusCode, message: &str, close: bool) -> bool {
        let body = format!("fiberlb: {message}\n");
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        let idle = self.idle_timeout();
        let written = async {
            self.io.write_all(head.as_bytes()).await?;
            self.io.write_all(body.as_bytes()).await?;
            self.io.flush().await
        };
        matches!(tokio::time::timeout(idle, written).await, Ok(Ok(())))
    }

    fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.proxy.lb.config().limits.idle_timeout_sec)
    }

    /// One request and its answer over `stream`: the answer's outcome and whether the backend
    /// connection can be used again.
    async fn exchange(
        &mut self,
        request: &RequestHead,
        outgoing: &[u8],
        config: &LoadBalancer,
        backend: &Backend,
        connection: &mut BackendConnection,
        sticky_cookie: Option<(&str, &str)>,
    ) -> Result<(Answered, bool), ExchangeError> {
        let BackendConnection { stream, reused } = connection;
        let reused = *reused;
        let proxy = self.proxy;
        let lb = &proxy.lb;
        let limits = &config.limits;
        let idle = Duration::from_secs(limits.idle_timeout_sec);
        let response_timeout = Duration::from_secs(limits.response_timeout_sec);
        let failed = |err: io::Error| {
            let reason = format!("backend {}: {err}", backend.name);
            if reused {
                ExchangeError::Stale(reason)
            } else {
                ExchangeError::Failed(reason)
            }
        };
        if let Err(err) = stream.write_all(outgoing).await {
            return Err(failed(err));
        }

        // The client's body goes up while the backend's answer is awaited: a backend may
        // answer early, or send 100 Continue first.
        let mut body = BodyProgress::new(request.body);
        let mut body_bytes = 0u64;
        let mut response_deadline = Instant::now() + response_timeout;
        self.response.clear();
        let (mut backend_read, mut backend_write) = stream.split();
        let (head_len, head) = loop {
            if !body.is_done() && !self.input.is_empty() {
                let mut data = 0;
                let taken = body
                    .take(&self.input, |run| data += run.len())
                    .map_err(ExchangeError::BadBody)?;
                body_bytes += data as u64;
                if limits.max_body_bytes > 0 && body_bytes > limits.max_body_bytes {
                    return Err(ExchangeError::BodyTooLarge);
                }
                backend.metrics.bytes_in.inc_by(data as u64);
                match tokio::time::timeout(idle, backend_write.write_all(&self.input[..taken]))
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => return Err(failed(err)),
                    Err(_) => {
                        return Err(ExchangeError::Failed(
                            "backend stopped reading the request body".into(),
                        ));
                    }
                }
                self.input.advance(taken);
                response_deadline = Instant::now() + response_timeout;
                continue;
            }
            let body_pending = !body.is_done();
            if body_pending {
                self.input.reserve(if body.is_large() {
                    BULK_CHUNK
                } else {
                    READ_CHUNK
                });
            }
            self.response.reserve(READ_CHUNK);
            tokio::select! {
                biased;
                read = backend_read.read_buf(&mut self.response) => match read {
                    Ok(0) if self.response.is_empty() && body_bytes == 0 => {
                        return Err(failed(io::Error::new(io::ErrorKind::UnexpectedEof, "closed without answering")));
                    }
                    Ok(0) => return Err(ExchangeError::Failed(format!("backend {} closed mid-answer", backend.name))),
                    Ok(_) => {}
                    Err(err) if self.response.is_empty() && body_bytes == 0 => return Err(failed(err)),
                    Err(err) => return Err(ExchangeError::Failed(format!("backend {}: {err}", backend.name))),
                },
                read = tokio::time::timeout(idle, self.io.read_buf(&mut self.input)), if body_pending => match read {
                    Ok(Ok(1..)) => continue,
                    _ => return Err(ExchangeError::ClientGone),
                },
                () = tokio::time::sleep_until(response_deadline), if !body_pending => {
                    return Err(ExchangeError::Timeout);
                }
            }
            let context = ResponseContext {
                request,
                client_may_stay: request.keep_alive && body.is_done() && !lb.stop.is_cancelled(),
                sticky_cookie,
            };
            match parse_response(&self.response, &context, &mut self.response_head) {
                Ok(None) => {}
                Ok(Some((len, head))) if head.interim => {
                    // 100 Continue and the like; an HTTP/1.0 client gets none of them.
                    if !request.http10 {
                        write_timed(&mut self.io, &self.response_head, idle).await?;
                    }
                    self.response.advance(len);
                }
                Ok(Some(parsed)) => break parsed,
                Err(reason) => {
                    return Err(ExchangeError::Failed(format!(
                        "backend {}: {reason}",
                        backend.name
                    )));
                }
            }
        };
        self.response.advance(head_len);
        // An answer before the whole body went up ends the exchange here: neither connection
        // can carry another.
        let request_done = body.is_done();

        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            write_timed(&mut self.io, &self.response_head, idle).await?;
            self.upgraded(stream, backend, idle).await;
            let answered = Answered {
                status: head.status,
                client_keep_alive: false,
            };
            return Ok((answered, false));
        }

        let mut relay = BodyProgress::new(head.framing);
        let mut out = std::mem::take(&mut self.response_head);
        let result = self
            .relay_body(&mut relay, &head, &mut out, stream, backend, idle)
            .await;
        self.response_head = out;
        result?;
        let backend_keep_alive =
            head.backend_keep_alive && request_done && self.response.is_empty();
        self.response.clear();
        let answered = Answered {
            status: head.status,
            client_keep_alive: head.client_keep_alive && request_done,
        };
        Ok((answered, backend_keep_alive))
    }

    /// Sends the client's head (in `out`) and the backend's body after it.
    async fn relay_body(
        &mut self,
        relay: &mut BodyProgress,
        head: &ResponseHead,
        out: &mut Vec<u8>,
        stream: &mut TcpStream,
        backend: &Backend,
        idle: Duration,
    ) -> Result<(), ExchangeError> {
        loop {
            if !self.response.is_empty() && !relay.is_done() {
                let input = &self.response[..];
                let mut data = 0;
                let dechunk = head.dechunk;
                let taken = relay
                    .take(input, |run| {
                        data += run.len();
                        if dechunk {
                            out.extend_from_slice(&input[run]);
                        }
                    })
                    .map_err(|reason| {
                        ExchangeError::Broken(format!("backend {}: {reason}", backend.name))
                    })?;
                backend.metrics.bytes_out.inc_by(data as u64);
                if !dechunk {
                    if out.len() + taken <= COALESCE_BYTES {
                        out.extend_from_slice(&input[..taken]);
                    } else {
                        write_timed(&mut self.io, out, idle).await?;
                        out.clear();
                        write_timed(&mut self.io, &self.response[..taken], idle).await?;
                    }
                }
                self.response.advance(taken);
            }
            if !out.is_empty() {
                write_timed(&mut self.io, out, idle).await?;
                out.clear();
            }
            if relay.is_done() {
                return Ok(());
            }
            self.response.reserve(if relay.is_large() {
                BULK_CHUNK
            } else {
                READ_CHUNK
            });
            match tokio::time::timeout(idle, stream.read_buf(&mut self.response)).await {
                Ok(Ok(1..)) => {}
                Ok(Ok(0)) if matches!(relay, BodyProgress::UntilClose) => {
                    *relay = BodyProgress::Done;
                }
                Ok(Ok(_)) => {
                    return Err(ExchangeError::Broken(format!(
                        "backend {} closed mid-body",
                        backend.name
                    )));
                }
                Ok(Err(err)) => {
                    return Err(ExchangeError::Broken(format!(
                        "backend {}: {err}",
                        backend.name
                    )));
                }
                Err(_) => {
                    return Err(ExchangeError::Broken(format!(
                        "backend {} sent nothing for {idle:?}",
                        backend.name
                    )));
                }
            }
        }
    }

    /// After 101 Switching Protocols: bytes either way until both close or idle out.
    async fn upgraded(&mut self, stream: &mut TcpStream, backend: &Backend, idle: Duration) {
        // What either side sent past the handshake goes on first.
        if !self.response.is_empty() {
            let early = self.response.split();
            if write_timed(&mut self.io, &early, idle).await.is_err() {
                return;
            }
        }
        if !self.input.is_empty() {
            let early = self.input.split();
            if tokio::time::timeout(idle, stream.write_all(&early))
                .await
                .is_err()
            {
                return;
            }
        }
        pipe(
            &mut self.io,
            stream,
            idle,
            backend.metrics.bytes_in.clone(),
            backend.metrics.bytes_out.clone(),
        )
        .await;
    }
}

/// Writes everything to the client (through TLS too) within `idle`, or gives the client up.
async fn write_timed<W: AsyncWrite + Unpin>(
    io: &mut W,
    bytes: &[u8],
    idle: Duration,
) -> Result<(), ExchangeError> {
    let written = async {
        io.write_all(bytes).await?;
        io.flush().await
    };
    match tokio::time::timeout(idle, written).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(ExchangeError::ClientGone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadBalancer;
    use crate::lb::LbRuntime;
    use crate::metrics::Metrics;

    fn proxy() -> HttpProxy {
        let config: LoadBalancer = toml::from_str(
            "name = \"t\"\nvip = \"127.0.0.1\"\nport = 1\nprotocol = \"http\"\nbackends = []",
        )
        .unwrap();
        let lb = LbRuntime::new(config, Metrics::default(), Default::default(), None);
        HttpProxy::new(lb, "http")
    }

    fn client() -> SocketAddr {
        "192.0.2.7:4000".parse().unwrap()
    }

    /// The rewritten head as text, or the refusal.
    fn rewrite(request: &str) -> Result<(String, RequestHead), Refusal> {
        let mut out = Vec::new();
        let (len, head) =
            parse_request(request.as_bytes(), &proxy(), client(), Some("LB"), &mut out)?
                .expect("a complete head");
        assert_eq!(len, request.len());
        Ok((String::from_utf8(out).unwrap(), head))
    }

    #[test]
    fn a_request_head_loses_hop_by_hop_headers_and_gains_forwarding_ones() {
        let (head, parsed) = rewrite(
            "GET /a?b=1 HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive, x-secret\r\n\
             X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Forwarded-For: 203.0.113.1\r\n\
             X-Forwarded-Proto: https\r\nCookie: a=1; LB=web-2\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            head,
            "GET /a?b=1 HTTP/1.1\r\nHost: example.test\r\nCookie: a=1; LB=web-2\r\nAccept: */*\r\n\
             X-Forwarded-For: 203.0.113.1, 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\
             X-Forwarded-Host: example.test\r\n\
             Forwarded: for=192.0.2.7;proto=http;host=\"example.test\"\r\n\r\n"
        );
        assert!(parsed.keep_alive && !parsed.http10 && parsed.idempotent);
        assert_eq!(parsed.body, Framing::Empty);
        assert_eq!(parsed.cookie_backend.as_deref(), Some("web-2"));
    }

    #[test]
    fn an_absolute_target_becomes_a_path_and_a_host() {
        let (head, _) = rewrite("GET http://example.test:8080/x HTTP/1.1\r\n\r\n").unwrap();
        assert!(
            head.starts_with("GET /x HTTP/1.1\r\nHost: example.test:8080\r\n"),
            "{head}"
        );
    }

    #[test]
    fn an_upgrade_keeps_its_headers() {
        let (head, parsed) = rewrite(
            "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .unwrap();
        assert!(parsed.upgrade);
        assert!(head.contains("\r\nUpgrade: websocket\r\n"), "{head}");
        assert!(head.ends_with("Connection: upgrade\r\n\r\n"), "{head}");
    }

    #[test]
    fn body_framing_is_read_and_ambiguous_framing_refused() {
        let framing = |extra: &str| {
            rewrite(&format!("POST / HTTP/1.1\r\nHost: h\r\n{extra}\r\n")).map(|(_, h)| h.body)
        };
        assert_eq!(
            framing("Content-Length: 12\r\n").unwrap(),
            Framing::Length(12)
        );
        assert_eq!(
            framing("Content-Length: 12\r\nContent-Length: 12\r\n").unwrap(),
            Framing::Length(12)
        );
        assert_eq!(
            framing("Transfer-Encoding: gzip, chunked\r\n").unwrap(),
            Framing::Chunked
        );
        for bad in [
            "Content-Length: 12\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: 12\r\nContent-Length: 13\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 1 2\r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
            "Host: again\r\n",
        ] {
            let refusal = framing(bad).unwrap_err();
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let http10 = rewrite("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(http10.unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn requests_without_a_host_or_for_a_tunnel_are_refused() {
        assert_eq!(
            rewrite("GET / HTTP/1.1\r\n\r\n").unwrap_err().message,
            "request has no host"
        );
        assert_eq!(
            rewrite("CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
                .unwrap_err()
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let mut out = Vec::new();
        let partial = parse_request(b"GET / HTTP/1.1\r\nHo", &proxy(), client(), None, &mut out);
        assert!(matches!(partial, Ok(None)));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let keep = |request: &str| rewrite(request).unwrap().1.keep_alive;
        assert!(keep("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!keep(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        ));
        assert!(!keep("GET / HTTP/1.0\r\nHost: h\r\n\r\n"));
        assert!(keep(
            "GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n"
        ));
    }

    fn respond(
        request: &str,
        response: &str,
        client_may_stay: bool,
    ) -> Result<(String, ResponseHead), String> {
        let (_, request) = rewrite(request).unwrap();
        let context = ResponseContext {
            request: &request,
            client_may_stay,
            sticky_cookie: Some(("LB", "web-1")),
        };
        let mut out = Vec::new();
        let (len, head) = parse_response(response.as_bytes(), &context, &mut out)?.unwrap();
        assert_eq!(len, response.len());
        Ok((String::from_utf8(out).unwrap(), head))
    }

    #[test]
    fn response_framing_depends_on_the_request_and_status() {
        let get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let framing =
            |request: &str, response: &str| respond(request, response, true).unwrap().1.framing;
        assert_eq!(
            framing(get, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Framing::Length(5)
        );
        assert_eq!(
            framing(
                "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
            ),
            Framing::Empty
        );
        assert_eq!(
            framing(
                get,
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"
            ),
            Framing::Empty
        );
        assert_eq!(
            framing(get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Framing::Chunked
        );
        let (head, parsed) = respond(get, "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", true).unwrap();
        assert_eq!(parsed.framing, Framing::UntilClose);
        assert!(!parsed.client_keep_alive && !parsed.backend_keep_alive);
        assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");
        assert!(respond(get, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true).is_err());
        assert!(respond(get, "HTTP/1.1 101 Switching Protocols\r\n\r\n", true).is_err());
    }

    #[test]
    fn a_response_head_is_rewritten_for_its_client() {
        let (head, parsed) = respond(
            "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            "HTTP/1.1 200 Fine\r\nConnection: close, x-hop\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        )
        .unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\nSet-Cookie: LB=web-1; Path=/; HttpOnly\r\n\r\n"
        );
        assert!(parsed.client_keep_alive && !parsed.backend_keep_alive && !parsed.dechunk);

        // An HTTP/1.0 client gets the data of a chunked body, delimited by the close.
        let (head, parsed) = respond(
            "GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        )
        .unwrap();
        assert!(parsed.dechunk && !parsed.client_keep_alive);
        assert!(!head.contains("Transfer-Encoding"), "{head}");
        assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");

        let (head, _) = respond(
            "GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            true,
        )
        .unwrap();
        assert!(head.ends_with("Connection: keep-alive\r\n\r\n"), "{head}");
    }

    /// The body's end and data when `input` arrives in pieces of `piece` bytes.
    fn scan_in_pieces(input: &[u8], piece: usize) -> Result<(usize, Vec<u8>), &'static str> {
        let mut scanner = ChunkScanner::new();
        let mut data = Vec::new();
        let mut consumed = 0;
        for part in input.chunks(piece) {
            let taken = scanner.scan(part, |run| data.extend_from_slice(&part[run]))?;
            consumed += taken;
            if scanner.is_done() {
                return Ok((consumed, data));
            }
            assert_eq!(taken, part.len());
        }
        Err("unfinished")
    }

    #[test]
    fn a_chunked_body_is_found_whole_however_it_is_split() {
        let body = b"5\r\nhello\r\n6;name=value\r\n world\r\nA \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for piece in 1..body.len() {
            let (consumed, data) = scan_in_pieces(body, piece).unwrap();
            assert_eq!(consumed, body.len() - 4, "in pieces of {piece}");
            assert_eq!(data, b"hello world0123456789");
        }
        assert_eq!(scan_in_pieces(b"0\r\n\r\n", 5).unwrap(), (5, Vec::new()));
    }

    #[test]
    fn malformed_chunked_framing_is_refused() {
        for bad in [
            &b"5\r\nhello!\r\n0\r\n\r\n"[..],
            b"x\r\n",
            b"\r\n",
            b"5\nhello\r\n",
            b"11111111111111111\r\n",
            b"0\r\n\rX",
        ] {
            assert!(
                scan_in_pieces(bad, bad.len()).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long_extension = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
        assert!(scan_in_pieces(long_extension.as_bytes(), 64).is_err());
    }

    #[tokio::test]
    async fn the_idle_pool_skips_connections_the_backend_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pool = IdlePool::default();
        let open = TcpStream::connect(addr).await.unwrap();
        let (_kept, _) = listener.accept().await.unwrap();
        let closing = TcpStream::connect(addr).await.unwrap();
        let (closed, _) = listener.accept().await.unwrap();
        pool.put(open);
        pool.put(closing);
        drop(closed);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let taken = pool.take().expect("the open connection");
        assert!(pool.take().is_none());
        assert!(still_open(&taken));
    }
}
