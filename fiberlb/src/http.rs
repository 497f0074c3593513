//! The L7 proxy's listener and its HTTP/2 side. A connection speaking HTTP/1.x (plain, or
//! TLS without `h2` agreed) goes to the proxy in `http1.rs`; HTTP/2 (h2c by its preface, or h2
//! by ALPN) is served by hyper and forwarded as HTTP/1.1 over hyper's pooled client. The
//! header rules both sides share live here.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::balancer::{ActiveGuard, Backend};
use crate::config::PersistenceType;
use crate::http1;
use crate::lb::{LbRuntime, MAX_CONNECT_ATTEMPTS};
use crate::tcp::{accept_loop, accept_tls};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;
type HttpClient = Client<HttpConnector, ProxyBody>;

/// Backend connections idle longer than this are closed by the pools.
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What an h2c client sends first (RFC 9113 section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

pub async fn serve(
    listener: TcpListener,
    lb: Arc<LbRuntime>,
    tracker: TaskTracker,
    tls: Option<TlsAcceptor>,
) {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let proxy = Arc::new(HttpProxy::new(lb.clone(), scheme));
    accept_loop(listener, lb, tracker, move |stream, peer, guard| {
        let (proxy, tls) = (proxy.clone(), tls.clone());
        async move {
            match tls {
                Some(acceptor) => {
                    if let Some(stream) = accept_tls(&proxy.lb, &acceptor, stream, peer).await {
                        // Over TLS the protocol was agreed by ALPN (h2 needs it).
                        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                            serve_h2(proxy, stream, peer).await;
                        } else {
                            http1::serve(&proxy, stream, peer).await;
                        }
                    }
                }
                None => {
                    // A client that sends nothing is closed after the header timeout instead
                    // of holding a connection slot.
                    let timeout = Duration::from_secs(proxy.lb.config().limits.header_timeout_sec);
                    match sniff_h2c(&stream, timeout).await {
                        Some(true) => serve_h2(proxy, stream, peer).await,
                        Some(false) => http1::serve(&proxy, stream, peer).await,
                        None => {
                            tracing::debug!(
                                "HTTP client {peer} sent nothing within {timeout:?}; closed"
                            );
                            proxy.lb.metrics.refused(&proxy.lb.name, "header_timeout");
                        }
                    }
                }
            }
            drop(guard);
        }
    })
    .await;
}

/// Whether a plain connection opens with the h2c preface, from its first bytes (left unread);
/// `None` when nothing usable came within `timeout`.
async fn sniff_h2c(stream: &TcpStream, timeout: Duration) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut first = [0u8; H2_PREFACE.len()];
    loop {
        let seen = tokio::time::timeout_at(deadline, stream.peek(&mut first))
            .await
            .ok()?
            .ok()?;
        if seen == 0 {
            return None;
        }
        if !H2_PREFACE.starts_with(&first[..seen]) {
            return Some(false);
        }
        if seen == H2_PREFACE.len() {
            return Some(true);
        }
        // Only part of the preface so far (or of a method starting "P"): wait for the rest.
        tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(5)))
            .await
            .ok()?;
    }
}

fn build_client(connect_timeout_ms: u64) -> (u64, HttpClient) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_millis(connect_timeout_ms)));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build(connector);
    (connect_timeout_ms, client)
}

/// Serves one HTTP/2 client connection; when the listener stops, the streams in flight
/// finish and the connection closes.
async fn serve_h2<I>(proxy: Arc<HttpProxy>, io: I, peer: SocketAddr)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = proxy.lb.config().limits.clone();
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let stop = proxy.lb.stop.clone();
    let service = hyper::service::service_fn(move |request| {
        let proxy = proxy.clone();
        async move { Ok::<_, std::convert::Infallible>(proxy.handle(request, peer).await) }
    });
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = served {
        tracing::debug!("HTTP/2 connection from {peer} ended: {err}");
    }
}

pub(crate) struct HttpProxy {
    pub(crate) lb: Arc<LbRuntime>,
    /// `http` or `https`, for the forwarding headers.
    pub(crate) scheme: &'static str,
    /// Rebuilt when the connect timeout changes.
    client: ArcSwap<(u64, HttpClient)>,
}

/// What a request needs to be sent again to another backend.
struct RequestHead {
    method: Method,
    path_and_query: PathAndQuery,
    headers: HeaderMap,
}

impl HttpProxy {
    pub(crate) fn new(lb: Arc<LbRuntime>, scheme: &'static str) -> Self {
        let client = build_client(lb.config().limits.connect_timeout_ms);
        Self {
            lb,
            scheme,
            client: ArcSwap::from_pointee(client),
        }
    }

    fn client(&self, connect_timeout_ms: u64) -> HttpClient {
        let current = self.client.load();
        if current.0 == connect_timeout_ms {
            return current.1.clone();
        }
        let fresh = build_client(connect_timeout_ms);
        let client = fresh.1.clone();
        self.client.store(Arc::new(fresh));
        client
    }

    async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let started = Instant::now();
        let (backend, response) = self.forward(request, peer).await;
        let lb = &self.lb;
        match backend {
            Some(backend) => backend.metrics.count_response(response.status()),
            None => lb.metrics.local_response(&lb.name, response.status()),
        }
        lb.request_duration.observe(started.elapsed().as_secs_f64());
        response
    }

    /// The response and the backend that gave it (`None` when fiberlb answered itself).
    async fn forward(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> (Option<Arc<Backend>>, Response<ProxyBody>) {
        let lb = &self.lb;
        let config = lb.config();
        let limits = &config.limits;
        let declared_length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if limits.max_body_bytes > 0 && declared_length.is_some_and(|n| n > limits.max_body_bytes) {
            lb.metrics.refused(&lb.name, "body_too_large");
            let message = format!("request body over {} bytes", limits.max_body_bytes);
            return (None, local(StatusCode::PAYLOAD_TOO_LARGE, &message));
        }
        let retryable =
            request.body().is_end_stream() && is_idempotent_method(request.method().as_str());
        let cookie = config
            .persistence
            .as_ref()
            .filter(|p| p.kind == PersistenceType::Cookie)
            .map(|p| p.cookie_name.as_str());
        let pinned = cookie
            .and_then(|name| {
                cookie_value(
                    request
                        .headers()
                        .get_all(header::COOKIE)
                        .iter()
                        .map(|v| v.as_bytes()),
                    name,
                )
            })
            .and_then(|backend| lb.available_backend(&backend));
        let (parts, incoming) = request.into_parts();
        let Some(head) = self.outgoing_head(parts, peer.ip()) else {
            lb.metrics.refused(&lb.name, "bad_request");
            return (None, local(StatusCode::BAD_REQUEST, "request has no host"));
        };
        // The body goes to the first backend tried; only an empty body can be sent again.
        let mut body = Some(limited_body(incoming, limits.max_body_bytes));
        let client = self.client(limits.connect_timeout_ms);
        let timeout = Duration::from_secs(limits.response_timeout_sec);
        let mut tried: Vec<Arc<Backend>> = Vec::new();
        loop {
            let chosen = match (&pinned, tried.is_empty()) {
                (Some(backend), true) => Some(backend.clone()),
                _ => lb.choose(peer.ip(), &tried),
            };
            let Some(backend) = chosen else {
                lb.metrics.refused(&lb.name, "no_backend");
                return match tried.pop() {
                    None => (
                        None,
                        local(StatusCode::SERVICE_UNAVAILABLE, "no backend available"),
                    ),
                    Some(last) => (
                        Some(last),
                        local(StatusCode::BAD_GATEWAY, "no backend could be reached"),
                    ),
                };
            };
            let active = backend.open();
            let body = Counted {
                inner: body.take().unwrap_or_else(empty_body),
                bytes: backend.metrics.bytes_in.clone(),
                _active: None,
            }
            .boxed();
            let outgoing = match build_request(&head, &backend, body) {
                Ok(outgoing) => outgoing,
                Err(reason) => return (Some(backend), local(StatusCode::BAD_GATEWAY, &reason)),
            };
            let failure = match tokio::time::timeout(timeout, client.request(outgoing)).await {
                Ok(Ok(response)) => {
                    backend.record_success();
                    let sticky = cookie
                        .filter(|_| pinned.as_ref().is_none_or(|p| !Arc::ptr_eq(p, &backend)));
                    let response = self.relay_response(response, active, sticky);
                    return (Some(backend), response);
                }
                Ok(Err(err)) if err.is_connect() => {
                    let reason = format!("connect to {}:{}: {err}", backend.address, backend.port);
                    lb.backend_failed(&backend, &reason);
                    tracing::debug!("load balancer {}: {reason}", lb.name);
                    tried.push(backend);
                    if retryable && tried.len() < MAX_CONNECT_ATTEMPTS {
                        continue;
                    }
                    (
                        tried.pop(),
                        local(StatusCode::BAD_GATEWAY, "backend unreachable"),
                    )
                }
                Ok(Err(err)) => {
                    lb.backend_failed(&backend, &err.to_string());
                    tracing::debug!(
                        "load balancer {}: request to backend {} failed: {err}",
                        lb.name,
                        backend.name
                    );
                    (
                        Some(backend),
                        local(StatusCode::BAD_GATEWAY, "backend failed to answer"),
                    )
                }
                Err(_) => {
                    lb.backend_failed(&backend, "response timeout");
                    let message = format!("backend gave no answer within {timeout:?}");
                    (Some(backend), local(StatusCode::GATEWAY_TIMEOUT, &message))
                }
            };
            return failure;
        }
    }

    /// The request head as a backend gets it: hop-by-hop headers gone, forwarding headers
    /// added, `Host` kept (taken from `:authority` for HTTP/2). `None` without a host.
    fn outgoing_head(
        &self,
        request: hyper::http::request::Parts,
        client: IpAddr,
    ) -> Option<RequestHead> {
        let mut headers = request.headers;
        let host = match headers.get(header::HOST) {
            Some(host) => host.clone(),
            None => HeaderValue::from_str(request.uri.authority()?.as_str()).ok()?,
        };
        strip_hop_by_hop(&mut headers);
        headers.insert(header::HOST, host.clone());
        append_list(&mut headers, "x-forwarded-for", &client.to_string());
        headers.insert("x-forwarded-proto", HeaderValue::from_static(self.scheme));
        headers.insert("x-forwarded-host", host.clone());
        let forwarded = forwarded_element(client, self.scheme, host.to_str().ok());
        append_list(&mut headers, header::FORWARDED.as_str(), &forwarded);
        let path_and_query = request
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Some(RequestHead {
            method: request.method,
            path_and_query,
            headers,
        })
    }

    fn relay_response(
        &self,
        mut response: Response<Incoming>,
        active: ActiveGuard,
        sticky_cookie: Option<&str>,
    ) -> Response<ProxyBody> {
        let backend = active.backend().clone();
        if let Some(name) = sticky_cookie
            && let Ok(value) =
                HeaderValue::from_str(&format!("{name}={}; Path=/; HttpOnly", backend.name))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        strip_hop_by_hop(response.headers_mut());
        let (parts, body) = response.into_parts();
        let counted = Counted {
            inner: body,
            bytes: backend.metrics.bytes_out.clone(),
            _active: Some(active),
        };
        Response::from_parts(parts, counted.map_err(BoxError::from).boxed())
    }
}

/// The client's body, cut off with an error past `max_body_bytes` (0 = no limit) for bodies
/// whose length was not declared up front.
fn limited_body(incoming: Incoming, max_body_bytes: u64) -> ProxyBody {
    if max_body_bytes > 0 {
        let limit = usize::try_from(max_body_bytes).unwrap_or(usize::MAX);
        Limited::new(incoming, limit).boxed()
    } else {
        incoming.map_err(BoxError::from).boxed()
    }
}

fn build_request(
    head: &RequestHead,
    backend: &Backend,
    body: ProxyBody,
) -> Result<Request<ProxyBody>, String> {
    let authority = backend.authority.clone().ok_or_else(|| {
        format!(
            "backend {}: {}:{} is not a valid address",
            backend.name, backend.address, backend.port
        )
    })?;
    let uri = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(head.path_and_query.clone())
        .build()
        .map_err(|err| format!("backend URI for {}: {err}", backend.name))?;
    let mut request = Request::new(body);
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = uri;
    *request.version_mut() = hyper::Version::HTTP_11;
    *request.headers_mut() = head.headers.clone();
    Ok(request)
}

fn empty_body() -> ProxyBody {
    Empty::new().map_err(BoxError::from).boxed()
}

/// A short plain-text answer from fiberlb itself.
fn local(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(format!("fiberlb: {message}\n")))
            .map_err(BoxError::from)
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(crate) fn is_idempotent_method(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// The tokens of `Connection` header values, lowercased.
pub(crate) fn connection_tokens<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// Whether a header describes only one connection (RFC 9110 section 7.6.1), by name or
/// because `Connection` names it; an upgrade keeps `Upgrade` (and gets its own `Connection`).
pub(crate) fn is_hop_by_hop(name: &str, connection_tokens: &[String], keep_upgrade: bool) -> bool {
    const HOP_BY_HOP: [&str; 7] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    if keep_upgrade && name.eq_ignore_ascii_case("upgrade") {
        return false;
    }
    HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop))
        || connection_tokens
            .iter()
            .any(|token| name.eq_ignore_ascii_case(token))
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let tokens = connection_tokens(
        headers
            .get_all(header::CONNECTION)
            .iter()
            .map(|v| v.as_bytes()),
    );
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name.as_str(), &tokens, false))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// This hop's element of a `Forwarded` header (RFC 7239).
pub(crate) fn forwarded_element(client: IpAddr, scheme: &str, host: Option<&str>) -> String {
    let node = match client {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("\"[{ip}]\""),
    };
    match host {
        Some(host) => format!("for={node};proto={scheme};host=\"{host}\""),
        None => format!("for={node};proto={scheme}"),
    }
}

/// Appends `item` to a comma-separated list header, creating it if absent.
fn append_list(headers: &mut HeaderMap, name: &str, item: &str) {
    let joined = match headers.get(name).and_then(|value| value.to_str().ok()) {
        Some(existing) if !existing.is_empty() => format!("{existing}, {item}"),
        _ => item.to_owned(),
    };
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(&joined),
    ) {
        headers.insert(name, value);
    }
}

/// The value of cookie `name` among `Cookie` header values.
pub(crate) fn cookie_value<'a>(
    values: impl Iterator<Item = &'a [u8]>,
    name: &str,
) -> Option<String> {
    values
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// A body that counts its data bytes and holds its backend's connection count until done.
struct Counted<B> {
    inner: B,
    bytes: Counter,
    _active: Option<ActiveGuard>,
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_go() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[test]
    fn forwarding_lists_are_appended() {
        let mut headers = HeaderMap::new();
        append_list(&mut headers, "x-forwarded-for", "192.0.2.1");
        append_list(&mut headers, "x-forwarded-for", "198.51.100.7");
        assert_eq!(headers["x-forwarded-for"], "192.0.2.1, 198.51.100.7");
    }

    #[test]
    fn the_persistence_cookie_is_found_among_others() {
        let values = || [&b"a=1"[..], b"x=2; FIBERLB=web-2; b=2"].into_iter();
        assert_eq!(cookie_value(values(), "FIBERLB").as_deref(), Some("web-2"));
        assert_eq!(cookie_value(values(), "missing"), None);
    }
}
