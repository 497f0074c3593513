//! One running load balancer: its configuration (swapped whole on change), its pool, and what
//! every protocol shares: choosing a backend with persistence, connecting with retries, and
//! counting client connections.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::metrics::histogram::Histogram;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::balancer::{ActiveGuard, Backend, Pool};
use crate::config::{LoadBalancer, PersistenceType};
use crate::metrics::Metrics;
use crate::tls::CertStore;

/// Distinct backends tried for one TCP connection or idempotent HTTP request.
pub const MAX_CONNECT_ATTEMPTS: usize = 3;

pub struct LbRuntime {
    pub name: String,
    config: ArcSwap<LoadBalancer>,
    pub pool: Pool,
    pub metrics: Metrics,
    /// Stops the listener (established connections go on).
    pub stop: CancellationToken,
    /// Stops the health checks; replaced when the configuration changes.
    checks: Mutex<CancellationToken>,
    clients: AtomicUsize,
    pub certs: Option<Arc<CertStore>>,
    /// The address actually bound (the configured port may be 0 in tests).
    pub local_addr: Mutex<Option<SocketAddr>>,
    /// HTTP request durations (one handle, so requests do not look it up).
    pub request_duration: Histogram,
}

impl LbRuntime {
    pub fn new(
        config: LoadBalancer,
        metrics: Metrics,
        stop: CancellationToken,
        certs: Option<Arc<CertStore>>,
    ) -> Arc<Self> {
        let runtime = Arc::new(Self {
            name: config.name.clone(),
            config: ArcSwap::from_pointee(config.clone()),
            pool: Pool::default(),
            stop,
            checks: Mutex::new(CancellationToken::new()),
            clients: AtomicUsize::new(0),
            certs,
            local_addr: Mutex::new(None),
            request_duration: metrics.request_duration_for(&config.name),
            metrics,
        });
        runtime.set_backends(&config);
        runtime
    }

    pub fn config(&self) -> Arc<LoadBalancer> {
        self.config.load_full()
    }

    /// Takes a new configuration for the same listener: backends that stay keep their state
    /// and connections; removed ones finish what they are doing.
    pub fn update(&self, config: LoadBalancer) {
        self.set_backends(&config);
        self.config.store(Arc::new(config));
    }

    fn set_backends(&self, config: &LoadBalancer) {
        let old = self.pool.backends();
        let backends: Vec<Arc<Backend>> = config
            .backends
            .iter()
            .map(|wanted| match old.iter().find(|b| b.same_target(wanted)) {
                Some(kept) => {
                    kept.set_weight(wanted.weight);
                    kept.clone()
                }
                None => Arc::new(Backend::new(
                    wanted,
                    self.metrics.for_backend(&self.name, &wanted.name),
                )),
            })
            .collect();
        for gone in old.iter() {
            if !backends.iter().any(|b| Arc::ptr_eq(b, gone)) {
                gone.drain();
                if !backends.iter().any(|b| b.name == gone.name) {
                    self.metrics.forget_backend(&self.name, &gone.name);
                }
                tracing::info!(
                    "load balancer {}: backend {} ({}:{}) removed; its {} open connection(s) finish first",
                    self.name,
                    gone.name,
                    gone.address,
                    gone.port,
                    gone.active()
                );
            }
        }
        self.pool.replace(backends);
    }

    /// A fresh token for the health checks, cancelling the previous checks' token.
    pub fn restart_checks(&self) -> CancellationToken {
        let fresh = self.stop.child_token();
        let old = std::mem::replace(
            &mut *self.checks.lock().unwrap_or_else(|p| p.into_inner()),
            fresh.clone(),
        );
        old.cancel();
        fresh
    }

    /// Counts a client connection (or UDP flow) against `limits.max_connections`; `None` when
    /// the listener is full.
    pub fn admit(self: &Arc<Self>) -> Option<ClientGuard> {
        let max = self.config.load().limits.max_connections;
        let previous = self.clients.fetch_add(1, Ordering::Relaxed);
        if previous >= max {
            self.clients.fetch_sub(1, Ordering::Relaxed);
            self.metrics.refused(&self.name, "max_connections");
            return None;
        }
        Some(ClientGuard { lb: self.clone() })
    }

    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// A backend for `client` by the method, honouring source-address persistence.
    pub fn choose(&self, client: IpAddr, tried: &[Arc<Backend>]) -> Option<Arc<Backend>> {
        let config = self.config.load();
        let max = config.limits.max_backend_connections;
        let sticky = config
            .persistence
            .as_ref()
            .filter(|p| p.kind == PersistenceType::SourceIp)
            .map(|p| Duration::from_secs(p.timeout_sec));
        if let Some(timeout) = sticky
            && let Some(name) = self.pool.sticky().get(client, timeout)
            && let Some(backend) = self.pool.find(&name)
            && backend.available(max)
            && !tried.iter().any(|t| Arc::ptr_eq(t, &backend))
        {
            self.pool.sticky().remember(client, &name, timeout);
            return Some(backend);
        }
        let chosen = self.pool.pick(config.method, client, tried, max)?;
        if let Some(timeout) = sticky {
            self.pool.sticky().remember(client, &chosen.name, timeout);
        }
        Some(chosen)
    }

    /// The named backend if it takes traffic now (cookie persistence).
    pub fn available_backend(&self, name: &str) -> Option<Arc<Backend>> {
        let max = self.config.load().limits.max_backend_connections;
        self.pool
            .find(name)
            .filter(|backend| backend.available(max))
    }

    /// A failed connection or request to `backend`: counted, and perhaps an ejection.
    pub fn backend_failed(&self, backend: &Backend, reason: &str) {
        let config = self.config.load();
        backend.metrics.connect_failures.inc();
        if backend.record_failure(
            config.passive_failures,
            Duration::from_secs(config.passive_eject_sec),
        ) {
            tracing::warn!(
                "load balancer {}: backend {} ({}:{}) ejected for {}s after {} failures in a row; last: {reason}",
                self.name,
                backend.name,
                backend.address,
                backend.port,
                config.passive_eject_sec,
                config.passive_failures
            );
        }
    }

    /// Connects to a backend for `client`, trying the next one when a connection fails.
    pub async fn connect(
        &self,
        client: SocketAddr,
    ) -> Result<(ActiveGuard, TcpStream), ConnectError> {
        let timeout = Duration::from_millis(self.config.load().limits.connect_timeout_ms);
        let mut tried: Vec<Arc<Backend>> = Vec::new();
        let mut last_error = None;
        while tried.len() < MAX_CONNECT_ATTEMPTS {
            let Some(backend) = self.choose(client.ip(), &tried) else {
                break;
            };
            let guard = backend.open();
            match connect_backend(&backend, timeout).await {
                Ok(stream) => {
                    backend.record_success();
                    backend.metrics.connections.inc();
                    return Ok((guard, stream));
                }
                Err(err) => {
                    let reason = format!("connect to {}:{}: {err}", backend.address, backend.port);
                    tracing::debug!("load balancer {}: {reason}", self.name);
                    self.backend_failed(&backend, &reason);
                    last_error = Some(reason);
                    tried.push(backend);
                }
            }
        }
        self.metrics.refused(&self.name, "no_backend");
        Err(match last_error {
            Some(reason) => ConnectError::Failed(reason),
            None => ConnectError::NoBackend,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no backend available")]
    NoBackend,
    #[error("every backend tried failed; last: {0}")]
    Failed(String),
}

/// Where a backend is now: its IP, or its host name resolved afresh.
pub async fn resolve(backend: &Backend) -> io::Result<SocketAddr> {
    if let Ok(ip) = backend.address.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, backend.port));
    }
    tokio::net::lookup_host((backend.address.as_str(), backend.port))
        .await?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no address", backend.address),
            )
        })
}

pub async fn connect_backend(backend: &Backend, timeout: Duration) -> io::Result<TcpStream> {
    let connect = async {
        let stream = TcpStream::connect(resolve(backend).await?).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    };
    tokio::time::timeout(timeout, connect)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            ))
        })
}

/// One client connection or flow, counted until dropped.
pub struct ClientGuard {
    lb: Arc<LbRuntime>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.lb.clients.fetch_sub(1, Ordering::Relaxed);
    }
}
