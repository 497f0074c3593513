//! TCP listeners: the accept loop every TCP-based protocol shares, and the L4 proxy (plain or
//! with TLS terminated).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::config::ProxyProtocol;
use crate::lb::{ClientGuard, LbRuntime};
use crate::pipe::{PipeEnd, pipe};

/// Accepts until the load balancer's listener is stopped; each admitted connection is handled
/// in its own task on `tracker`.
pub async fn accept_loop<Handle, Handled>(
    listener: TcpListener,
    lb: Arc<LbRuntime>,
    tracker: TaskTracker,
    handle: Handle,
) where
    Handle: Fn(TcpStream, SocketAddr, ClientGuard) -> Handled,
    Handled: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            () = lb.stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(guard) = lb.admit() else {
                    tracing::debug!(
                        "load balancer {}: refused {peer}: limits.max_connections reached",
                        lb.name
                    );
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tracker.spawn(handle(stream, peer, guard));
            }
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("load balancer {}: accept failed: {err}", lb.name);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::info!("load balancer {}: listener closed", lb.name);
}

/// The TLS handshake, bounded by the header timeout so a silent client cannot hold a slot.
pub async fn accept_tls(
    lb: &LbRuntime,
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let timeout = Duration::from_secs(lb.config().limits.header_timeout_sec);
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(err)) => {
            tracing::debug!(
                "load balancer {}: TLS handshake with {peer} failed: {err}",
                lb.name
            );
            lb.metrics.refused(&lb.name, "tls_handshake");
            None
        }
        Err(_) => {
            tracing::debug!(
                "load balancer {}: TLS handshake with {peer} timed out",
                lb.name
            );
            lb.metrics.refused(&lb.name, "tls_handshake");
            None
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    lb: Arc<LbRuntime>,
    tracker: TaskTracker,
    tls: Option<TlsAcceptor>,
) {
    let local = listener.local_addr().ok();
    let for_handler = lb.clone();
    accept_loop(listener, lb, tracker, move |stream, peer, guard| {
        let (lb, tls) = (for_handler.clone(), tls.clone());
        async move {
            let local = stream.local_addr().ok().or(local);
            match tls {
                Some(acceptor) => {
                    if let Some(stream) = accept_tls(&lb, &acceptor, stream, peer).await {
                        proxy(&lb, stream, peer, local).await;
                    }
                }
                None => proxy(&lb, stream, peer, local).await,
            }
            drop(guard);
        }
    })
    .await;
}

async fn proxy<S>(lb: &LbRuntime, client: S, peer: SocketAddr, local: Option<SocketAddr>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (active, mut upstream) = match lb.connect(peer).await {
        Ok(connected) => connected,
        Err(err) => {
            tracing::warn!("load balancer {}: client {peer} dropped: {err}", lb.name);
            return;
        }
    };
    let config = lb.config();
    let backend = active.backend();
    if config.proxy_protocol != ProxyProtocol::None
        && let Some(local) = local
    {
        let header = proxy_header(config.proxy_protocol, peer, local);
        if let Err(err) = upstream.write_all(&header).await {
            lb.backend_failed(backend, &format!("PROXY header: {err}"));
            return;
        }
    }
    let idle = Duration::from_secs(config.limits.idle_timeout_sec);
    let end = pipe(
        client,
        upstream,
        idle,
        backend.metrics.bytes_in.clone(),
        backend.metrics.bytes_out.clone(),
    )
    .await;
    match end {
        PipeEnd::Closed => {}
        PipeEnd::Idle => tracing::debug!(
            "load balancer {}: {peer} <-> {} closed after {idle:?} idle",
            lb.name,
            backend.name
        ),
        PipeEnd::Failed(err) => tracing::debug!(
            "load balancer {}: {peer} <-> {} ended: {err}",
            lb.name,
            backend.name
        ),
    }
}

/// The PROXY protocol header (v1 text or v2 binary) telling a backend who the client is.
pub fn proxy_header(
    version: crate::config::ProxyProtocol,
    client: std::net::SocketAddr,
    local: std::net::SocketAddr,
) -> Vec<u8> {
    use crate::config::ProxyProtocol;
    use std::net::SocketAddr::{V4, V6};
    match version {
        ProxyProtocol::None => Vec::new(),
        ProxyProtocol::V1 => match (client, local) {
            (V4(c), V4(l)) => format!(
                "PROXY TCP4 {} {} {} {}\r\n",
                c.ip(),
                l.ip(),
                c.port(),
                l.port()
            ),
            (V6(c), V6(l)) => format!(
                "PROXY TCP6 {} {} {} {}\r\n",
                c.ip(),
                l.ip(),
                c.port(),
                l.port()
            ),
            _ => "PROXY UNKNOWN\r\n".to_owned(),
        }
        .into_bytes(),
        ProxyProtocol::V2 => {
            const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
            let mut header = SIGNATURE.to_vec();
            // Version 2, command PROXY.
            header.push(0x21);
            match (client, local) {
                (V4(c), V4(l)) => {
                    header.push(0x11); // AF_INET, STREAM
                    header.extend_from_slice(&12u16.to_be_bytes());
                    header.extend_from_slice(&c.ip().octets());
                    header.extend_from_slice(&l.ip().octets());
                    header.extend_from_slice(&c.port().to_be_bytes());
                    header.extend_from_slice(&l.port().to_be_bytes());
                }
                (V6(c), V6(l)) => {
                    header.push(0x21); // AF_INET6, STREAM
                    header.extend_from_slice(&36u16.to_be_bytes());
                    header.extend_from_slice(&c.ip().octets());
                    header.extend_from_slice(&l.ip().octets());
                    header.extend_from_slice(&c.port().to_be_bytes());
                    header.extend_from_slice(&l.port().to_be_bytes());
                }
                _ => {
                    header.push(0x00); // AF_UNSPEC: the backend uses the connection's own
                    header.extend_from_slice(&0u16.to_be_bytes());
                }
            }
            header
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_headers_carry_both_addresses() {
        let client = "192.0.2.1:4000".parse().unwrap();
        let local = "198.51.100.2:443".parse().unwrap();
        assert_eq!(
            proxy_header(ProxyProtocol::V1, client, local),
            b"PROXY TCP4 192.0.2.1 198.51.100.2 4000 443\r\n"
        );
        let v2 = proxy_header(ProxyProtocol::V2, client, local);
        assert_eq!(&v2[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&v2[16..20], &[192, 0, 2, 1]);
        assert_eq!(&v2[24..26], &4000u16.to_be_bytes());
        assert_eq!(v2.len(), 28);
    }
}
