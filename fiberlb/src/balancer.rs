//! Backends and how one is chosen: the methods, availability (health, passive ejection,
//! draining, connection caps) and source-address persistence.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hyper::http::uri::Authority;
use rand::Rng;
use serde::Serialize;

use crate::config::{BackendConfig, Method};
use crate::http1::IdlePool;
use crate::metrics::BackendMetrics;

/// Milliseconds on a monotonic clock, for timestamps kept in atomics.
pub(crate) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// One backend of one load balancer, shared by every connection that uses it; a backend
/// removed from its pool lives on until its last connection ends.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// `address:port` as an HTTP authority (IPv6 in brackets), built once.
    pub authority: Option<Authority>,
    weight: AtomicU32,
    /// The active health checks' verdict (true until checks say otherwise).
    healthy: AtomicBool,
    /// Set through the API: no new traffic, in-flight work finishes.
    draining: AtomicBool,
    /// Passive ejection: no new traffic before this (monotonic ms).
    ejected_until_ms: AtomicU64,
    consecutive_failures: AtomicU32,
    active: AtomicUsize,
    last_check_error: Mutex<Option<String>>,
    pub metrics: BackendMetrics,
    /// Keep-alive connections the HTTP/1 proxy is not using now.
    pub idle_http: IdlePool,
}

impl Backend {
    pub fn new(config: &BackendConfig, metrics: BackendMetrics) -> Self {
        let host = match config.address.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => config.address.clone(),
        };
        let backend = Self {
            name: config.name.clone(),
            address: config.address.clone(),
            port: config.port,
            authority: Authority::try_from(format!("{host}:{}", config.port)).ok(),
            weight: AtomicU32::new(config.weight),
            healthy: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            ejected_until_ms: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            active: AtomicUsize::new(0),
            last_check_error: Mutex::new(None),
            metrics,
            idle_http: IdlePool::default(),
        };
        backend.publish_state();
        backend
    }

    /// Whether `config` describes this same backend (so its state carries over a change).
    pub fn same_target(&self, config: &BackendConfig) -> bool {
        self.name == config.name && self.address == config.address && self.port == config.port
    }

    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Ordering::Relaxed);
        self.publish_state();
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn drain(&self) {
        self.set_draining(true);
    }

    pub fn undrain(&self) {
        self.set_draining(false);
    }

    fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::Relaxed);
        self.publish_state();
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms()
    }

    /// Whether the backend takes new traffic.
    pub fn available(&self, max_connections: usize) -> bool {
        self.weight() > 0
            && self.is_healthy()
            && !self.is_draining()
            && !self.is_ejected()
            && (max_connections == 0 || self.active() < max_connections)
    }

    /// The health checks' verdict; returns whether it changed.
    pub fn set_healthy(&self, healthy: bool, error: Option<String>) -> bool {
        *self
            .last_check_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = error;
        let changed = self.healthy.swap(healthy, Ordering::Relaxed) != healthy;
        if changed {
            self.publish_state();
        }
        changed
    }

    pub fn last_check_error(&self) -> Option<String> {
        self.last_check_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A failed connection or request; after `limit` in a row (0 = never) the backend gets no
    /// traffic for `eject_for`. Returns true when this failure ejected it.
    pub fn record_failure(&self, limit: u32, eject_for: Duration) -> bool {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if limit == 0 || failures < limit {
            return false;
        }
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.ejected_until_ms
            .store(now_ms() + eject_for.as_millis() as u64, Ordering::Relaxed);
        self.metrics.up.set(0);
        true
    }

    pub fn record_success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a connection or request until the guard drops.
    pub fn open(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.metrics.active.inc();
        ActiveGuard {
            backend: self.clone(),
        }
    }

    /// Brings `backend_up` in line with the state (ejection ends by time, so the gauge is also
    /// refreshed whenever the state is reported).
    pub fn publish_state(&self) {
        let up =
            self.weight() > 0 && self.is_healthy() && !self.is_draining() && !self.is_ejected();
        self.metrics.up.set(i64::from(up));
    }

    pub fn status(&self) -> BackendStatus {
        self.publish_state();
        BackendStatus {
            name: self.name.clone(),
            address: self.address.clone(),
            port: self.port,
            weight: self.weight(),
            state: if self.is_draining() {
                "draining"
            } else if !self.is_healthy() {
                "down"
            } else if self.is_ejected() {
                "ejected"
            } else {
                "up"
            },
            active_connections: self.active(),
            connections_total: self.metrics.connections.get(),
            connect_failures_total: self.metrics.connect_failures.get(),
            bytes_in: self.metrics.bytes_in.get(),
            bytes_out: self.metrics.bytes_out.get(),
            last_check_error: self.last_check_error(),
        }
    }
}

/// What the API shows of a backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub weight: u32,
    /// `up`, `down` (health checks), `ejected` (passive), `draining`.
    pub state: &'static str,
    pub active_connections: usize,
    pub connections_total: u64,
    pub connect_failures_total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub last_check_error: Option<String>,
}

#[derive(Debug)]
pub struct ActiveGuard {
    backend: Arc<Backend>,
}

impl ActiveGuard {
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.backend.active.fetch_sub(1, Ordering::Relaxed);
        self.backend.metrics.active.dec();
    }
}

/// A load balancer's backends and the state its methods keep.
#[derive(Debug, Default)]
pub struct Pool {
    backends: ArcSwap<Vec<Arc<Backend>>>,
    next: AtomicUsize,
    /// Smooth weighted round robin: each backend's current weight, by name.
    smooth: Mutex<HashMap<String, i64>>,
    maglev: Mutex<Option<Maglev>>,
    sticky: StickyTable,
}

impl Pool {
    pub fn backends(&self) -> Arc<Vec<Arc<Backend>>> {
        self.backends.load_full()
    }

    pub fn find(&self, name: &str) -> Option<Arc<Backend>> {
        self.backends
            .load()
            .iter()
            .find(|b| b.name == name)
            .cloned()
    }

    pub fn replace(&self, backends: Vec<Arc<Backend>>) {
        self.backends.store(Arc::new(backends));
    }

    pub fn sticky(&self) -> &StickyTable {
        &self.sticky
    }

    /// Chooses a backend for a client by `method`, skipping those in `tried` and those that are
    /// unavailable; `None` when none is left.
    pub fn pick(
        &self,
        method: Method,
        client: IpAddr,
        tried: &[Arc<Backend>],
        max_backend_connections: usize,
    ) -> Option<Arc<Backend>> {
        let all = self.backends.load();
        let candidates: Vec<&Arc<Backend>> = all
            .iter()
            .filter(|b| {
                b.available(max_backend_connections) && !tried.iter().any(|t| Arc::ptr_eq(t, b))
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        // A retry takes the next candidate without moving the rotation, so a dead backend
        // does not shift every later client's turn.
        let turn = if tried.is_empty() {
            self.next.fetch_add(1, Ordering::Relaxed)
        } else {
            self.next.load(Ordering::Relaxed)
        };
        let index = match method {
            Method::Roundrobin => turn % candidates.len(),
            Method::WeightedRoundrobin => self.smooth_weighted(&candidates),
            Method::Leastconn => (0..candidates.len())
                .map(|offset| (turn + offset) % candidates.len())
                .min_by(|&a, &b| load_order(candidates[a], candidates[b]))
                .unwrap_or(0),
            Method::Random => {
                let mut rng = rand::rng();
                let a = rng.random_range(0..candidates.len());
                let b = rng.random_range(0..candidates.len());
                if load_order(candidates[b], candidates[a]).is_lt() {
                    b
                } else {
                    a
                }
            }
            Method::Source => (hash_of(&client) % candidates.len() as u64) as usize,
            Method::Maglev => self.maglev_lookup(&candidates, client),
        };
        Some(candidates[index].clone())
    }

    fn smooth_weighted(&self, candidates: &[&Arc<Backend>]) -> usize {
        let mut current = self
            .smooth
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.len() > candidates.len() * 2 + 16 {
            current.retain(|name, _| candidates.iter().any(|b| &b.name == name));
        }
        let total: i64 = candidates.iter().map(|b| i64::from(b.weight())).sum();
        let mut best = 0;
        let mut best_weight = i64::MIN;
        for (index, backend) in candidates.iter().enumerate() {
            let weight = current.entry(backend.name.clone()).or_insert(0);
            *weight += i64::from(backend.weight());
            if *weight > best_weight {
                best_weight = *weight;
                best = index;
            }
        }
        if let Some(weight) = current.get_mut(&candidates[best].name) {
            *weight -= total;
        }
        best
    }

    fn maglev_lookup(&self, candidates: &[&Arc<Backend>], client: IpAddr) -> usize {
        let mut cached = self
            .maglev
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let names: Vec<&str> = candidates.iter().map(|b| b.name.as_str()).collect();
        if cached.as_ref().is_none_or(|table| table.names != names) {
            *cached = Some(Maglev::new(&names));
        }
        cached
            .as_ref()
            .map_or(0, |table| table.lookup(hash_of(&client)))
    }
}

/// Fewer open connections per unit of weight first.
fn load_order(a: &Backend, b: &Backend) -> std::cmp::Ordering {
    let (wa, wb) = (u128::from(a.weight().max(1)), u128::from(b.weight().max(1)));
    (a.active() as u128 * wb).cmp(&(b.active() as u128 * wa))
}

/// A stable hash: the same input gives the same value in every process and release.
fn hash_of(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Maglev lookup table (Eisenbud et al., NSDI 2016): each backend fills slots in its own
/// permutation order, so a change in the set of backends moves few slots.
#[derive(Debug)]
struct Maglev {
    names: Vec<String>,
    slots: Vec<u32>,
}

/// A prime well above the backend count, as the paper asks.
const MAGLEV_TABLE_SIZE: u64 = 65_537;

impl Maglev {
    fn new(names: &[&str]) -> Self {
        let size = MAGLEV_TABLE_SIZE;
        let permutations: Vec<(u64, u64)> = names
            .iter()
            .map(|name| {
                let offset = hash_of(&(name, 0u8)) % size;
                let skip = hash_of(&(name, 1u8)) % (size - 1) + 1;
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; names.len()];
        let mut slots = vec![u32::MAX; size as usize];
        let mut filled = 0;
        'fill: loop {
            for (index, &(offset, skip)) in permutations.iter().enumerate() {
                let mut slot = (offset + next[index] * skip) % size;
                while slots[slot as usize] != u32::MAX {
                    next[index] += 1;
                    slot = (offset + next[index] * skip) % size;
                }
                slots[slot as usize] = index as u32;
                next[index] += 1;
                filled += 1;
                if filled == size {
                    break 'fill;
                }
            }
        }
        Self {
            names: names.iter().map(|name| (*name).to_owned()).collect(),
            slots,
        }
    }

    fn lookup(&self, hash: u64) -> usize {
        self.slots[(hash % MAGLEV_TABLE_SIZE) as usize] as usize
    }
}

/// Source-address persistence: client address → backend name, forgotten after a while.
#[derive(Debug, Default)]
pub struct StickyTable {
    entries: Mutex<HashMap<IpAddr, (String, Instant)>>,
}

impl StickyTable {
    /// The backend this client was last sent to, if it was within `timeout`.
    pub fn get(&self, client: IpAddr, timeout: Duration) -> Option<String> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(&client)
            .filter(|(_, seen)| seen.elapsed() < timeout)
            .map(|(name, _)| name.clone())
    }

    pub fn remember(&self, client: IpAddr, backend: &str, timeout: Duration) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Expired entries are dropped as the table grows, so it stays bounded by the clients
        // seen within one timeout.
        if entries.len() >= 1024 && entries.len().is_power_of_two() {
            entries.retain(|_, (_, seen)| seen.elapsed() < timeout);
        }
        entries.insert(client, (backend.to_owned(), Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn pool(weights: &[(&str, u32)]) -> Pool {
        let metrics = Metrics::default();
        let pool = Pool::default();
        pool.replace(
            weights
                .iter()
                .map(|(name, weight)| {
                    Arc::new(Backend::new(
                        &BackendConfig {
                            name: (*name).to_owned(),
                            address: "127.0.0.1".to_owned(),
                            port: 1,
                            weight: *weight,
                        },
                        metrics.for_backend("t", name),
                    ))
                })
                .collect(),
        );
        pool
    }

    fn picks(pool: &Pool, method: Method, count: usize) -> Vec<String> {
        let client = IpAddr::from([10, 0, 0, 1]);
        (0..count)
            .map(|_| {
                pool.pick(method, client, &[], 0)
                    .expect("a backend")
                    .name
                    .clone()
            })
            .collect()
    }

    #[test]
    fn smooth_weighted_round_robin_spreads_the_heavy_backend() {
        let pool = pool(&[("a", 5), ("b", 1), ("c", 1)]);
        // nginx's documented sequence for weights 5, 1, 1.
        assert_eq!(
            picks(&pool, Method::WeightedRoundrobin, 7),
            ["a", "a", "b", "a", "c", "a", "a"]
        );
    }

    #[test]
    fn round_robin_skips_unavailable_backends() {
        let pool = pool(&[("a", 1), ("b", 1), ("c", 1)]);
        pool.find("b").unwrap().drain();
        pool.find("c").unwrap().set_weight(0);
        assert_eq!(picks(&pool, Method::Roundrobin, 3), ["a", "a", "a"]);
        pool.find("a").unwrap().set_healthy(false, None);
        assert!(
            pool.pick(Method::Roundrobin, IpAddr::from([1, 1, 1, 1]), &[], 0)
                .is_none()
        );
    }

    #[test]
    fn leastconn_prefers_the_idle_backend_by_weight() {
        let pool = pool(&[("a", 100), ("b", 200)]);
        let a = pool.find("a").unwrap();
        let b = pool.find("b").unwrap();
        let _one_on_a = a.open();
        let _two_on_b = (b.open(), b.open());
        // a: 1 per 100, b: 2 per 200: a tie; one more on b tips it.
        let _three_on_b = b.open();
        assert_eq!(picks(&pool, Method::Leastconn, 1), ["a"]);
    }

    #[test]
    fn passive_failures_eject_then_time_out() {
        let pool = pool(&[("a", 1)]);
        let a = pool.find("a").unwrap();
        assert!(!a.record_failure(2, Duration::from_millis(50)));
        assert!(a.record_failure(2, Duration::from_millis(50)));
        assert!(!a.available(0));
        std::thread::sleep(Duration::from_millis(80));
        assert!(a.available(0));
    }

    #[test]
    fn maglev_moves_few_clients_when_a_backend_goes() {
        let names: Vec<String> = (0..10).map(|i| format!("b{i}")).collect();
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let before = Maglev::new(&all);
        let fewer: Vec<&str> = all.iter().copied().filter(|n| *n != "b3").collect();
        let after = Maglev::new(&fewer);
        let clients = 10_000u64;
        let moved = (0..clients)
            .filter(|client| {
                let hash = hash_of(client);
                let old = all[before.lookup(hash)];
                let new = fewer[after.lookup(hash)];
                old != "b3" && old != new
            })
            .count();
        // Only b3's clients must move; Maglev's tables are near-minimal, so allow a little.
        assert!(moved < clients as usize / 50, "{moved} clients moved");
        // And the table is balanced: each backend owns about a tenth.
        let owned = before.slots.iter().filter(|&&slot| slot == 0).count();
        assert!((6_000..7_100).contains(&owned), "b0 owns {owned} slots");
    }

    #[test]
    fn source_hash_keeps_a_client_on_one_backend() {
        let pool = pool(&[("a", 1), ("b", 1), ("c", 1)]);
        let first = picks(&pool, Method::Source, 1);
        assert_eq!(picks(&pool, Method::Source, 20), vec![first[0].clone(); 20]);
    }
}
