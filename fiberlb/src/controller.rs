//! The running set of load balancers and every change to it, whether from the file at start,
//! a reload or the REST API: checked as a whole first, then applied so that established
//! connections are never dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{LoadBalancer, Protocol, check_loadbalancers};
use crate::lb::LbRuntime;
use crate::metrics::Metrics;
use crate::source::ConfigSource;
use crate::tls::CertStore;
use crate::workers::{Workers, bind_tcp, bind_udp};
use crate::{health, http, http1, tcp, udp};

/// Which changes need a new listener; anything else is applied in place.
fn listener_key(lb: &LoadBalancer) -> (Protocol, SocketAddr, bool) {
    (lb.protocol, lb.listen_addr(), lb.terminates_tls())
}

pub struct Controller {
    running: Mutex<BTreeMap<String, Arc<LbRuntime>>>,
    /// The definitions in force, in their configured order.
    definitions: Mutex<Vec<LoadBalancer>>,
    metrics: Metrics,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    workers: Workers,
    pub source: Box<dyn ConfigSource>,
}

/// A change that could not be applied; nothing of it was.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

impl Controller {
    pub fn new(
        metrics: Metrics,
        tracker: TaskTracker,
        shutdown: CancellationToken,
        workers: Workers,
        source: Box<dyn ConfigSource>,
    ) -> Self {
        Self {
            running: Mutex::default(),
            definitions: Mutex::default(),
            metrics,
            tracker,
            shutdown,
            workers,
            source,
        }
    }

    pub async fn definitions(&self) -> Vec<LoadBalancer> {
        self.definitions.lock().await.clone()
    }

    pub async fn runtime(&self, name: &str) -> Option<Arc<LbRuntime>> {
        self.running.lock().await.get(name).cloned()
    }

    pub async fn runtimes(&self) -> Vec<Arc<LbRuntime>> {
        self.running.lock().await.values().cloned().collect()
    }

    /// Changes the definitions with `edit` and applies the result (see [`Self::apply`]).
    pub async fn edit(
        &self,
        edit: impl FnOnce(&mut Vec<LoadBalancer>) -> Result<(), Refused>,
    ) -> Result<(), Refused> {
        let mut wanted = self.definitions().await;
        edit(&mut wanted)?;
        self.apply(wanted).await
    }

    /// Makes `wanted` the running set. A load balancer whose listener stays the same is
    /// updated in place; one whose listener changes gets a new one; removed ones stop
    /// accepting while their connections finish. Refused as a whole when any part is invalid
    /// or a listener cannot be bound.
    pub async fn apply(&self, wanted: Vec<LoadBalancer>) -> Result<(), Refused> {
        let problems = check_loadbalancers(&wanted);
        if !problems.is_empty() {
            let text: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.key, p.reason))
                .collect();
            return Err(Refused::Invalid(text.join("; ")));
        }
        let mut definitions = self.definitions.lock().await;
        let mut running = self.running.lock().await;

        // Certificates first: a change with an unusable certificate changes nothing.
        let mut new_certs = BTreeMap::new();
        for lb in &wanted {
            let Some(tls) = lb.tls.as_ref().filter(|_| lb.terminates_tls()) else {
                continue;
            };
            let pairs = tls.pairs();
            let unchanged = running
                .get(&lb.name)
                .and_then(|r| r.certs.as_ref())
                .is_some_and(|certs| certs.files() == pairs.as_slice());
            if !unchanged {
                let store = CertStore::load(pairs)
                    .map_err(|err| Refused::Invalid(format!("load balancer {}: {err}", lb.name)))?;
                new_certs.insert(lb.name.clone(), Arc::new(store));
            }
        }

        let keeps_listener = |lb: &LoadBalancer, running: &BTreeMap<String, Arc<LbRuntime>>| {
            running.get(&lb.name).is_some_and(|r| {
                listener_key(&r.config()) == listener_key(lb) && !new_certs.contains_key(&lb.name)
            })
        };
        // Stop what goes away or moves, so that its port is free for what replaces it.
        let stopped: Vec<Arc<LbRuntime>> = running
            .values()
            .filter(|r| {
                !wanted
                    .iter()
                    .any(|lb| lb.name == r.name && keeps_listener(lb, &running))
            })
            .cloned()
            .collect();
        for old in &stopped {
            running.remove(&old.name);
            old.stop.cancel();
        }
        let mut started = Vec::new();
        for lb in &wanted {
            if let Some(runtime) = running.get(&lb.name) {
                self.update_in_place(runtime, lb);
                continue;
            }
            // Unchanged certificate files keep their loaded store across a new listener.
            let certs = new_certs.get(&lb.name).cloned().or_else(|| {
                stopped
                    .iter()
                    .find(|old| old.name == lb.name && lb.terminates_tls())
                    .and_then(|old| old.certs.clone())
            });
            match self.start(lb.clone(), certs).await {
                Ok(runtime) => {
                    running.insert(lb.name.clone(), runtime.clone());
                    started.push(runtime);
                }
                Err(err) => {
                    // Put back what was stopped, as it was.
                    for runtime in started {
                        running.remove(&runtime.name);
                        runtime.stop.cancel();
                    }
                    for old in stopped {
                        let certs = old.certs.clone();
                        match self.start(old.config().as_ref().clone(), certs).await {
                            Ok(runtime) => {
                                running.insert(old.name.clone(), runtime);
                            }
                            Err(again) => tracing::error!(
                                "load balancer {} could not be restored: {again}",
                                old.name
                            ),
                        }
                    }
                    for lb in definitions.iter() {
                        if let Some(runtime) = running.get(&lb.name) {
                            self.update_in_place(runtime, lb);
                        }
                    }
                    return Err(Refused::Invalid(err));
                }
            }
        }
        for old in &stopped {
            if !wanted.iter().any(|lb| lb.name == old.name) {
                for backend in old.pool.backends().iter() {
                    self.metrics.forget_backend(&old.name, &backend.name);
                }
                tracing::info!(
                    "load balancer {} removed; its {} open connection(s) finish first",
                    old.name,
                    old.clients()
                );
            }
        }
        *definitions = wanted;
        Ok(())
    }

    /// A new definition for a running listener. Its health checks restart only when their
    /// settings changed, so a change elsewhere does not reset their rise/fall counts (new
    /// backends are checked from the next round either way).
    fn update_in_place(&self, runtime: &Arc<LbRuntime>, lb: &LoadBalancer) {
        let checks_changed = runtime.config().healthcheck != lb.healthcheck;
        runtime.update(lb.clone());
        if checks_changed {
            health::restart(runtime, &self.tracker);
        }
    }

    /// Binds the listener of `lb` and starts serving it and its health checks.
    async fn start(
        &self,
        lb: LoadBalancer,
        certs: Option<Arc<CertStore>>,
    ) -> Result<Arc<LbRuntime>, String> {
        let addr = lb.listen_addr();
        let bind_error = |err: std::io::Error| {
            let hint = if lb.port < 1024 {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            } else {
                ""
            };
            format!(
                "load balancer {}: cannot listen on {addr} ({}): {err}{hint}",
                lb.name, lb.protocol
            )
        };
        let alpn: &[&[u8]] = match lb.protocol {
            Protocol::Https => &[b"h2", b"http/1.1"],
            _ => &[],
        };
        let acceptor = certs.as_ref().map(|c| c.acceptor(alpn)).transpose()?;
        let runtime = LbRuntime::new(
            lb.clone(),
            self.metrics.clone(),
            self.shutdown.child_token(),
            certs,
        );
        let workers = self.workers.handles();
        let local = if lb.protocol == Protocol::Udp {
            let sockets = bind_udp(addr, workers.len()).map_err(bind_error)?;
            let local = sockets[0].local_addr().map_err(bind_error)?;
            for (socket, worker) in sockets.into_iter().zip(workers) {
                let (runtime, tracker) = (runtime.clone(), self.tracker.clone());
                self.tracker.spawn_on(
                    async move {
                        match UdpSocket::from_std(socket) {
                            Ok(socket) => udp::serve(socket, runtime, tracker).await,
                            Err(err) => {
                                tracing::error!("load balancer {}: UDP socket: {err}", runtime.name)
                            }
                        }
                    },
                    worker,
                );
            }
            local
        } else {
            let listeners = bind_tcp(addr, workers.len()).map_err(bind_error)?;
            let local = listeners[0].local_addr().map_err(bind_error)?;
            for (listener, worker) in listeners.into_iter().zip(workers) {
                let (runtime, tracker, acceptor) =
                    (runtime.clone(), self.tracker.clone(), acceptor.clone());
                let protocol = lb.protocol;
                self.tracker.spawn_on(
                    async move {
                        let listener = match TcpListener::from_std(listener) {
                            Ok(listener) => listener,
                            Err(err) => {
                                tracing::error!("load balancer {}: listener: {err}", runtime.name);
                                return;
                            }
                        };
                        match protocol {
                            Protocol::Http | Protocol::Https => {
                                http::serve(listener, runtime, tracker, acceptor).await;
                            }
                            _ => tcp::serve(listener, runtime, tracker, acceptor).await,
                        }
                    },
                    worker,
                );
            }
            local
        };
        *runtime.local_addr.lock().unwrap_or_else(|p| p.into_inner()) = Some(local);
        if matches!(lb.protocol, Protocol::Http | Protocol::Https) {
            self.tracker.spawn(http1::sweep_idle_pools(runtime.clone()));
        }
        health::restart(&runtime, &self.tracker);
        tracing::info!(
            "load balancer {}: {} on {local}, {} backend(s), method {}",
            lb.name,
            lb.protocol,
            lb.backends.len(),
            lb.method
        );
        Ok(runtime)
    }

    /// Re-reads the definitions from the source and applies them; on any error the running
    /// set stays as it was.
    pub async fn reload(&self) -> Result<(), Refused> {
        let wanted = self.source.load().await.map_err(Refused::Invalid)?;
        self.apply(wanted).await
    }

    /// Checks every listener's certificate files and reloads those that changed.
    pub async fn reload_certificates(&self) {
        for runtime in self.runtimes().await {
            let Some(certs) = &runtime.certs else {
                continue;
            };
            match certs.reload_if_changed() {
                Ok(true) => tracing::info!(
                    "load balancer {}: certificates reloaded from disk",
                    runtime.name
                ),
                Ok(false) => {}
                Err(err) => tracing::error!(
                    "load balancer {}: certificate reload failed, the previous certificates stay in use: {err}",
                    runtime.name
                ),
            }
        }
    }
}
