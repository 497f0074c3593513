//! fiberlb's own configuration: the spec's `[standalone.server]`, `[standalone.dataplane]` and
//! `[[standalone.loadbalancers]]` (beside the common `[photon]`).
//!
//! The same [`LoadBalancer`] type is read from the file, from the REST API (as JSON) and written
//! back to the file, and one function ([`check_loadbalancers`]) checks it wherever it comes from.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use photon_config::{Invalid, PhotonSection, Sections};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiberlbSections {
    #[serde(default)]
    pub standalone: StandaloneSections,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandaloneSections {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub dataplane: DataplaneSection,
    #[serde(default)]
    pub loadbalancers: Vec<LoadBalancer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The gRPC management API (not served by this build; the key is accepted so the spec's
    /// example loads).
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: SocketAddr,
    /// The REST API; also `/health` and `/metrics` unless `metrics_addr` moves them.
    #[serde(default = "default_admin_api_addr")]
    pub admin_api_addr: SocketAddr,
    /// `/health` and `/metrics` on their own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
    /// When set, the REST API's changing calls need `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// How often TLS certificate files are checked for changes (0 = only on SIGHUP).
    #[serde(default = "default_cert_reload_interval_sec")]
    pub cert_reload_interval_sec: u64,
    /// Data-plane threads, each serving every listener (0 = one per core).
    #[serde(default)]
    pub workers: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            grpc_addr: default_grpc_addr(),
            admin_api_addr: default_admin_api_addr(),
            metrics_addr: None,
            admin_token: None,
            cert_reload_interval_sec: default_cert_reload_interval_sec(),
            workers: 0,
        }
    }
}

fn default_grpc_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 50052))
}

pub(crate) fn default_admin_api_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 8081))
}

fn default_cert_reload_interval_sec() -> u64 {
    10
}

photon_config::keyword_enum! {
    /// How packets are forwarded. Only the user-space proxy exists in this build.
    #[derive(Default)]
    pub enum Dataplane {
        Iptables => "iptables",
        Ipvs => "ipvs",
        Ebpf => "ebpf",
        #[default]
        Userspace => "userspace",
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneSection {
    /// Unset: `[photon.standalone] dataplane`, else `userspace`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<Dataplane>,
}

photon_config::keyword_enum! {
    pub enum Protocol {
        Tcp => "tcp",
        Udp => "udp",
        Http => "http",
        Https => "https",
    }
}

photon_config::keyword_enum! {
    /// How a backend is chosen for a new connection or request.
    #[derive(Default)]
    pub enum Method {
        /// Each backend in turn, ignoring weights.
        #[default]
        Roundrobin => "roundrobin",
        /// Smooth weighted round robin (as nginx): shares follow the weights, evenly spread.
        WeightedRoundrobin => "weighted_roundrobin",
        /// The backend with the fewest open connections for its weight.
        Leastconn => "leastconn",
        /// Two backends at random, the less loaded of them (power of two choices).
        Random => "random",
        /// A hash of the client's address over the available backends.
        Source => "source",
        /// Maglev consistent hashing of the client's address: few clients move when the set of
        /// backends changes.
        Maglev => "maglev",
    }
}

photon_config::keyword_enum! {
    #[derive(Default)]
    pub enum ProxyProtocol {
        #[default]
        None => "none",
        V1 => "v1",
        V2 => "v2",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    pub name: String,
    /// The address the listener binds.
    pub vip: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    #[serde(default)]
    pub method: Method,
    /// With `protocol = "tcp"`: terminate TLS and proxy the plain bytes (needs `[tls]`).
    /// `protocol = "https"` always terminates.
    #[serde(default)]
    pub tls_termination: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthCheckConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<PersistenceConfig>,
    /// PROXY protocol header sent to backends first (TCP listeners).
    #[serde(default)]
    pub proxy_protocol: ProxyProtocol,
    #[serde(default)]
    pub limits: Limits,
    /// Consecutive failed connections or requests that eject a backend (0 = never).
    #[serde(default = "default_passive_failures")]
    pub passive_failures: u32,
    /// How long a passively ejected backend gets no traffic.
    #[serde(default = "default_passive_eject_sec")]
    pub passive_eject_sec: u64,
}

fn default_passive_failures() -> u32 {
    5
}

fn default_passive_eject_sec() -> u64 {
    30
}

impl LoadBalancer {
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.vip, self.port)
    }

    /// Whether client connections arrive over TLS.
    pub fn terminates_tls(&self) -> bool {
        self.protocol == Protocol::Https || (self.protocol == Protocol::Tcp && self.tls_termination)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    /// An IP address or a host name (resolved at each connection).
    pub address: String,
    pub port: u16,
    /// Relative share for the weighted methods; 0 takes the backend out of rotation.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    100
}

/// The largest weight accepted (as HAProxy's 256 leaves too little room for percentages).
pub const MAX_WEIGHT: u32 = 10_000;

photon_config::keyword_enum! {
    #[derive(Default)]
    pub enum HealthCheckType {
        #[default]
        Tcp => "tcp",
        Http => "http",
        Udp => "udp",
        None => "none",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    #[serde(default, rename = "type")]
    pub kind: HealthCheckType,
    #[serde(default = "default_interval_sec")]
    pub interval_sec: u64,
    #[serde(default = "default_timeout_sec")]
    pub timeout_sec: u64,
    /// HTTP checks: the path requested.
    #[serde(default = "default_path")]
    pub path: String,
    /// HTTP checks: the status that means healthy.
    #[serde(default = "default_expected_status")]
    pub expected_status: u16,
    /// Successful checks in a row that bring a down backend back.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Failed checks in a row that take a backend down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// UDP checks: the datagram sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// UDP checks: the reply must contain this (unset: any reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            kind: HealthCheckType::default(),
            interval_sec: default_interval_sec(),
            timeout_sec: default_timeout_sec(),
            path: default_path(),
            expected_status: default_expected_status(),
            rise: default_rise(),
            fall: default_fall(),
            send: None,
            expect: None,
        }
    }
}

fn default_interval_sec() -> u64 {
    10
}

fn default_timeout_sec() -> u64 {
    5
}

fn default_path() -> String {
    "/".to_owned()
}

fn default_expected_status() -> u16 {
    200
}

fn default_rise() -> u32 {
    2
}

fn default_fall() -> u32 {
    3
}

photon_config::keyword_enum! {
    pub enum PersistenceType {
        /// HTTP(S): a cookie names the backend.
        Cookie => "cookie",
        /// Any protocol: a table from client address to backend.
        SourceIp => "source_ip",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistenceConfig {
    #[serde(rename = "type")]
    pub kind: PersistenceType,
    #[serde(default = "default_cookie_name")]
    pub cookie_name: String,
    /// source_ip: how long a client stays mapped after its last connection.
    #[serde(default = "default_persistence_timeout_sec")]
    pub timeout_sec: u64,
}

fn default_cookie_name() -> String {
    "FIBERLB".to_owned()
}

fn default_persistence_timeout_sec() -> u64 {
    1800
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Open client connections (TCP) or flows (UDP) beyond this are refused.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections to one backend beyond this make it unavailable (0 = no limit).
    #[serde(default)]
    pub max_backend_connections: usize,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// A connection (TCP) or flow (UDP) with no traffic either way for this long is closed.
    #[serde(default = "default_idle_timeout_sec")]
    pub idle_timeout_sec: u64,
    /// HTTP: a client must send its whole request head within this.
    #[serde(default = "default_header_timeout_sec")]
    pub header_timeout_sec: u64,
    /// HTTP: the largest request head accepted (431 beyond).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// HTTP: the largest request body accepted (413 beyond; 0 = no limit).
    #[serde(default)]
    pub max_body_bytes: u64,
    /// HTTP: a backend must answer (response head) within this (504 beyond).
    #[serde(default = "default_response_timeout_sec")]
    pub response_timeout_sec: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            max_backend_connections: 0,
            connect_timeout_ms: default_connect_timeout_ms(),
            idle_timeout_sec: default_idle_timeout_sec(),
            header_timeout_sec: default_header_timeout_sec(),
            max_header_bytes: default_max_header_bytes(),
            max_body_bytes: 0,
            response_timeout_sec: default_response_timeout_sec(),
        }
    }
}

fn default_max_connections() -> usize {
    10_000
}

fn default_connect_timeout_ms() -> u64 {
    3_000
}

fn default_idle_timeout_sec() -> u64 {
    300
}

fn default_header_timeout_sec() -> u64 {
    10
}

fn default_max_header_bytes() -> usize {
    65_536
}

fn default_response_timeout_sec() -> u64 {
    60
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The default certificate (PEM chain) and key (PEM, PKCS#8, PKCS#1 or SEC1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// More certificates, chosen by the name the client asks for (SNI).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateFiles>,
}

impl TlsSection {
    /// Every pair, the default first.
    pub fn pairs(&self) -> Vec<CertificateFiles> {
        let default = match (&self.cert_file, &self.key_file) {
            (Some(cert_file), Some(key_file)) => Some(CertificateFiles {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            }),
            _ => None,
        };
        default
            .into_iter()
            .chain(self.certificates.iter().cloned())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl StandaloneSections {
    /// The dataplane in force: this section's `type`, else `[photon.standalone] dataplane`.
    pub fn dataplane(&self, photon: &PhotonSection) -> Result<Dataplane, Invalid> {
        if let Some(kind) = self.dataplane.kind {
            return Ok(kind);
        }
        match &photon.standalone.dataplane {
            None => Ok(Dataplane::Userspace),
            Some(word) => word
                .parse()
                .map_err(|reason| Invalid::new("photon.standalone.dataplane", reason)),
        }
    }
}

impl Sections for FiberlbSections {
    fn validate(&self, photon: &PhotonSection) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let standalone = &self.standalone;
        match standalone.dataplane(photon) {
            Ok(Dataplane::Userspace) => {}
            Ok(other) => problems.push(Invalid::new(
                if standalone.dataplane.kind.is_some() {
                    "standalone.dataplane.type"
                } else {
                    "photon.standalone.dataplane"
                },
                format!(
                    "dataplane {other:?} is not supported by this build; accepted: \"userspace\""
                ),
            )),
            Err(problem) => problems.push(problem),
        }
        if let Some(backend) = &photon.standalone.config_backend
            && backend != "file"
        {
            problems.push(Invalid::new(
                "photon.standalone.config_backend",
                "accepted standalone: \"file\" (the REST API changes the running configuration and can write it back to the file)",
            ));
        }
        if standalone.server.admin_token.as_deref() == Some("") {
            problems.push(Invalid::new(
                "standalone.server.admin_token",
                "is empty; remove it to leave the API open, or set a token",
            ));
        }
        if let Some(metrics) = standalone.server.metrics_addr
            && metrics != standalone.server.admin_api_addr
            && photon
                .metrics
                .endpoint
                .is_some_and(|endpoint| endpoint != metrics)
        {
            problems.push(Invalid::new(
                "photon.metrics.endpoint",
                "differs from standalone.server.metrics_addr; set one of them",
            ));
        }
        problems.extend(check_loadbalancers(&standalone.loadbalancers));
        problems
    }
}

/// Checks a whole set of load balancers: each one, and that names and listen addresses are
/// unique. Keys are named as in the file (`standalone.loadbalancers[1].backends[0].port`).
pub fn check_loadbalancers(loadbalancers: &[LoadBalancer]) -> Vec<Invalid> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut listeners = BTreeSet::new();
    for (index, lb) in loadbalancers.iter().enumerate() {
        let key = format!("standalone.loadbalancers[{index}]");
        problems.extend(check_loadbalancer(&key, lb));
        if !names.insert(lb.name.as_str()) {
            problems.push(Invalid::new(
                format!("{key}.name"),
                format!("{:?} is used by another load balancer", lb.name),
            ));
        }
        // TCP and UDP may share a port number; two listeners of one transport may not.
        let transport = if lb.protocol == Protocol::Udp {
            "udp"
        } else {
            "tcp"
        };
        if !listeners.insert((transport, lb.listen_addr())) {
            problems.push(Invalid::new(
                format!("{key}.port"),
                format!(
                    "{} ({transport}) is used by another load balancer",
                    lb.listen_addr()
                ),
            ));
        }
    }
    problems
}

fn check_loadbalancer(key: &str, lb: &LoadBalancer) -> Vec<Invalid> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, reason: String| {
        problems.push(Invalid::new(format!("{key}.{field}"), reason));
    };
    if let Some(reason) = check_name(&lb.name) {
        problem("name", reason);
    }
    if lb.port == 0 {
        problem("port", "must be 1-65535".to_owned());
    }
    if lb.tls_termination && lb.protocol != Protocol::Tcp && lb.protocol != Protocol::Https {
        problem(
            "tls_termination",
            format!(
                "applies to tcp listeners only (https always terminates; {} cannot)",
                lb.protocol
            ),
        );
    }
    if lb.terminates_tls() {
        match &lb.tls {
            Some(tls) if tls.cert_file.is_some() != tls.key_file.is_some() => problem(
                "tls",
                "cert_file and key_file go together: set both or neither".to_owned(),
            ),
            Some(tls) if !tls.pairs().is_empty() => {}
            _ => problem(
                "tls",
                "TLS termination needs [tls] cert_file and key_file (or certificates)".to_owned(),
            ),
        }
    } else if lb.tls.is_some() {
        problem(
            "tls",
            "is only used when TLS is terminated: protocol = \"https\", or \"tcp\" with tls_termination = true".to_owned(),
        );
    }
    if let Some(persistence) = &lb.persistence {
        if persistence.kind == PersistenceType::Cookie
            && !matches!(lb.protocol, Protocol::Http | Protocol::Https)
        {
            problem(
                "persistence.type",
                "cookie persistence needs an http or https listener; use source_ip".to_owned(),
            );
        }
        if persistence.cookie_name.is_empty()
            || !persistence
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problem(
                "persistence.cookie_name",
                "accepted: letters, digits, '_' and '-'".to_owned(),
            );
        }
    }
    if lb.proxy_protocol != ProxyProtocol::None && lb.protocol != Protocol::Tcp {
        problem("proxy_protocol", "is sent on tcp listeners only".to_owned());
    }
    if let Some(check) = &lb.healthcheck {
        if check.interval_sec == 0 {
            problem("healthcheck.interval_sec", "must be at least 1".to_owned());
        }
        if check.timeout_sec == 0 || check.timeout_sec > check.interval_sec.max(1) {
            problem(
                "healthcheck.timeout_sec",
                "must be at least 1 and at most interval_sec".to_owned(),
            );
        }
        if check.rise == 0 || check.fall == 0 {
            problem("healthcheck", "rise and fall must be at least 1".to_owned());
        }
        if check.kind == HealthCheckType::Http && !check.path.starts_with('/') {
            problem("healthcheck.path", "must start with '/'".to_owned());
        }
        if !(100..=599).contains(&check.expected_status) {
            problem(
                "healthcheck.expected_status",
                "must be an HTTP status (100-599)".to_owned(),
            );
        }
        match (check.kind, lb.protocol) {
            (HealthCheckType::Udp, Protocol::Udp) if check.send.is_none() => problem(
                "healthcheck.send",
                "UDP checks need a datagram to send".to_owned(),
            ),
            (HealthCheckType::Udp, Protocol::Udp) | (HealthCheckType::None, _) => {}
            (HealthCheckType::Udp, _) => problem(
                "healthcheck.type",
                "udp checks are for udp listeners".to_owned(),
            ),
            (_, Protocol::Udp) => problem(
                "healthcheck.type",
                "udp listeners take udp (send/expect) or none".to_owned(),
            ),
            _ => {}
        }
    }
    let limits = &lb.limits;
    if limits.max_connections == 0 {
        problem("limits.max_connections", "must be at least 1".to_owned());
    }
    if limits.connect_timeout_ms == 0
        || limits.idle_timeout_sec == 0
        || limits.header_timeout_sec == 0
        || limits.response_timeout_sec == 0
    {
        problem(
            "limits",
            "connect_timeout_ms, idle_timeout_sec, header_timeout_sec and response_timeout_sec must be at least 1".to_owned(),
        );
    }
    if limits.max_header_bytes < 8192 {
        problem(
            "limits.max_header_bytes",
            "must be at least 8192".to_owned(),
        );
    }
    let mut backend_names = BTreeSet::new();
    for (index, backend) in lb.backends.iter().enumerate() {
        let field = format!("backends[{index}]");
        if let Some(reason) = check_name(&backend.name) {
            problem(&format!("{field}.name"), reason);
        }
        if !backend_names.insert(backend.name.as_str()) {
            problem(
                &format!("{field}.name"),
                format!(
                    "{:?} is used by another backend of this load balancer",
                    backend.name
                ),
            );
        }
        if let Some(reason) = check_address(&backend.address) {
            problem(&format!("{field}.address"), reason);
        }
        if backend.port == 0 {
            problem(&format!("{field}.port"), "must be 1-65535".to_owned());
        }
        if backend.weight > MAX_WEIGHT {
            problem(
                &format!("{field}.weight"),
                format!("must be 0-{MAX_WEIGHT}"),
            );
        }
    }
    problems
}

/// Names appear in URLs, metric labels and cookies.
fn check_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    (!ok).then(|| format!("{name:?}: accepted: 1-64 letters, digits, '-', '_' and '.'"))
}

fn check_address(address: &str) -> Option<String> {
    if address.parse::<IpAddr>().is_ok() {
        return None;
    }
    let host_name = !address.is_empty()
        && address.len() <= 253
        && address.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    (!host_name).then(|| format!("{address:?} is neither an IP address nor a host name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb(toml_text: &str) -> LoadBalancer {
        toml::from_str(toml_text).expect("test load balancer parses")
    }

    const WEB: &str = r#"
        name = "web"
        vip = "127.0.0.1"
        port = 8000
        protocol = "http"
        [[backends]]
        name = "a"
        address = "127.0.0.1"
        port = 9000
    "#;

    #[test]
    fn a_plain_load_balancer_passes() {
        assert!(check_loadbalancers(&[lb(WEB)]).is_empty());
    }

    #[test]
    fn duplicate_names_and_listeners_are_refused() {
        let problems = check_loadbalancers(&[lb(WEB), lb(WEB)]);
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "standalone.loadbalancers[1].name",
                "standalone.loadbalancers[1].port"
            ]
        );
    }

    #[test]
    fn tls_termination_needs_certificates() {
        let mut https = lb(WEB);
        https.protocol = Protocol::Https;
        let problems = check_loadbalancers(&[https]);
        assert_eq!(problems[0].key, "standalone.loadbalancers[0].tls");
    }

    #[test]
    fn bad_backend_fields_are_named() {
        let mut bad = lb(WEB);
        bad.backends[0].address = "no spaces allowed".to_owned();
        bad.backends[0].weight = MAX_WEIGHT + 1;
        let keys: Vec<_> = check_loadbalancers(&[bad])
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            [
                "standalone.loadbalancers[0].backends[0].address",
                "standalone.loadbalancers[0].backends[0].weight"
            ]
        );
    }

    #[test]
    fn cookie_persistence_is_for_http() {
        let mut tcp = lb(WEB);
        tcp.protocol = Protocol::Tcp;
        tcp.persistence = Some(PersistenceConfig {
            kind: PersistenceType::Cookie,
            cookie_name: default_cookie_name(),
            timeout_sec: 60,
        });
        let problems = check_loadbalancers(&[tcp]);
        assert_eq!(
            problems[0].key,
            "standalone.loadbalancers[0].persistence.type"
        );
    }
}
