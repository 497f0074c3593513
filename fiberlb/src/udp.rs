//! UDP listeners: each client address is a flow bound to one backend through a socket of its
//! own, so replies find their way back; a flow ends after `limits.idle_timeout_sec` of silence.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::task::TaskTracker;

use crate::balancer::{ActiveGuard, now_ms};
use crate::lb::{ClientGuard, LbRuntime, resolve};

/// The largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;

struct Flow {
    upstream: UdpSocket,
    last_seen_ms: AtomicU64,
    active: ActiveGuard,
    _client: ClientGuard,
}

type Flows = Arc<Mutex<HashMap<SocketAddr, Arc<Flow>>>>;

pub async fn serve(socket: UdpSocket, lb: Arc<LbRuntime>, tracker: TaskTracker) {
    let socket = Arc::new(socket);
    let flows: Flows = Arc::default();
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            () = lb.stop.cancelled() => break,
            received = socket.recv_from(&mut buffer) => received,
        };
        let (length, client) = match received {
            Ok(received) => received,
            Err(err) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                tracing::debug!("load balancer {}: UDP receive: {err}", lb.name);
                continue;
            }
        };
        let existing = flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .cloned();
        let flow = match existing {
            Some(flow) => flow,
            None => match open_flow(&lb, &socket, &flows, client, &tracker).await {
                Some(flow) => flow,
                None => continue,
            },
        };
        flow.last_seen_ms.store(now_ms(), Ordering::Relaxed);
        let backend = flow.active.backend();
        match flow.upstream.send(&buffer[..length]).await {
            Ok(sent) => {
                backend.metrics.bytes_in.inc_by(sent as u64);
            }
            Err(err) => lb.backend_failed(backend, &format!("UDP send: {err}")),
        }
    }
    tracing::info!("load balancer {}: UDP listener closed", lb.name);
}

async fn open_flow(
    lb: &Arc<LbRuntime>,
    listener: &Arc<UdpSocket>,
    flows: &Flows,
    client: SocketAddr,
    tracker: &TaskTracker,
) -> Option<Arc<Flow>> {
    let guard = lb.admit()?;
    let Some(backend) = lb.choose(client.ip(), &[]) else {
        lb.metrics.refused(&lb.name, "no_backend");
        return None;
    };
    let connected = async {
        let target = resolve(&backend).await?;
        let local: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let upstream = UdpSocket::bind(local).await?;
        upstream.connect(target).await?;
        Ok::<_, std::io::Error>(upstream)
    };
    let upstream = match connected.await {
        Ok(upstream) => upstream,
        Err(err) => {
            lb.backend_failed(&backend, &format!("UDP flow: {err}"));
            return None;
        }
    };
    backend.metrics.connections.inc();
    let flow = Arc::new(Flow {
        upstream,
        last_seen_ms: AtomicU64::new(now_ms()),
        active: backend.open(),
        _client: guard,
    });
    flows
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(client, flow.clone());
    let idle = Duration::from_secs(lb.config().limits.idle_timeout_sec);
    tracker.spawn(relay_replies(
        flow.clone(),
        listener.clone(),
        flows.clone(),
        client,
        idle,
    ));
    Some(flow)
}

/// Sends the backend's replies to the client until the flow has been idle for `idle`.
async fn relay_replies(
    flow: Arc<Flow>,
    listener: Arc<UdpSocket>,
    flows: Flows,
    client: SocketAddr,
    idle: Duration,
) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let idle_ms = idle.as_millis() as u64;
    let backend = flow.active.backend().clone();
    loop {
        let quiet_for = now_ms().saturating_sub(flow.last_seen_ms.load(Ordering::Relaxed));
        if quiet_for >= idle_ms {
            break;
        }
        let wait = Duration::from_millis(idle_ms - quiet_for);
        match tokio::time::timeout(wait, flow.upstream.recv(&mut buffer)).await {
            Err(_) => {}
            Ok(Ok(length)) => {
                flow.last_seen_ms.store(now_ms(), Ordering::Relaxed);
                backend.metrics.bytes_out.inc_by(length as u64);
                if let Err(err) = listener.send_to(&buffer[..length], client).await {
                    tracing::debug!("UDP reply to {client}: {err}");
                }
            }
            // The backend's port is closed (ICMP unreachable): keep the flow, it may come back.
            Ok(Err(err)) => {
                tracing::debug!("UDP from backend {}: {err}", backend.name);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    flows
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&client);
}
