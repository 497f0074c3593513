//! flashdns's own configuration: the spec's `[standalone.server]`, `[standalone.zones]` and
//! `[standalone.features]` (beside the common `[photon]`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use photon_config::{Invalid, PhotonSection, Sections, list_or_comma_separated};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashdnsSections {
    #[serde(default)]
    pub standalone: StandaloneSections,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandaloneSections {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub zones: ZonesSection,
    #[serde(default)]
    pub features: FeaturesSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// DNS over UDP. The default port is unprivileged; port 53 needs root or
    /// CAP_NET_BIND_SERVICE.
    #[serde(default = "default_dns_addr")]
    pub dns_addr: SocketAddr,
    /// DNS over TCP (AXFR, truncated answers, clients that prefer TCP).
    #[serde(default = "default_dns_addr")]
    pub dns_tcp_addr: SocketAddr,
    /// The read-only REST API, `/health` and `/metrics`.
    #[serde(default = "default_admin_api_addr")]
    pub admin_api_addr: SocketAddr,
    /// UDP sockets sharing `dns_addr` (SO_REUSEPORT), each served on its own; 0 = one per core.
    #[serde(default)]
    pub udp_workers: usize,
    /// The largest UDP answer sent to an EDNS client, whatever buffer it offers (the DNS flag
    /// day 2020 value avoids IP fragmentation).
    #[serde(default = "default_max_udp_payload")]
    pub max_udp_payload: u16,
    /// A TCP connection with no complete query for this long is closed.
    #[serde(default = "default_tcp_idle_timeout_sec")]
    pub tcp_idle_timeout_sec: u64,
    /// Open TCP connections beyond this are closed as soon as they are accepted.
    #[serde(default = "default_max_tcp_connections")]
    pub max_tcp_connections: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            dns_addr: default_dns_addr(),
            dns_tcp_addr: default_dns_addr(),
            admin_api_addr: default_admin_api_addr(),
            udp_workers: 0,
            max_udp_payload: default_max_udp_payload(),
            tcp_idle_timeout_sec: default_tcp_idle_timeout_sec(),
            max_tcp_connections: default_max_tcp_connections(),
        }
    }
}

fn default_dns_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1053))
}

pub(crate) fn default_admin_api_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8053))
}

fn default_max_udp_payload() -> u16 {
    1232
}

fn default_tcp_idle_timeout_sec() -> u64 {
    10
}

fn default_max_tcp_connections() -> usize {
    1024
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZonesSection {
    /// Where zone files live: relative `file` paths resolve here, and with no `zone` entries
    /// every `*.zone` file in it is served (named after the file, `example.com.zone`).
    #[serde(default = "default_zone_dir")]
    pub zone_dir: PathBuf,
    /// Re-read zone files every `reload_interval_sec` (SIGHUP always reloads).
    #[serde(default = "default_auto_reload")]
    pub auto_reload: bool,
    #[serde(default = "default_reload_interval_sec")]
    pub reload_interval_sec: u64,
    #[serde(default)]
    pub zone: Vec<ZoneEntry>,
}

impl Default for ZonesSection {
    fn default() -> Self {
        Self {
            zone_dir: default_zone_dir(),
            auto_reload: default_auto_reload(),
            reload_interval_sec: default_reload_interval_sec(),
            zone: Vec::new(),
        }
    }
}

fn default_zone_dir() -> PathBuf {
    PathBuf::from("/etc/flashdns/zones")
}

fn default_auto_reload() -> bool {
    true
}

fn default_reload_interval_sec() -> u64 {
    300
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneEntry {
    /// The zone's apex, e.g. `example.com`.
    pub name: String,
    /// The BIND-format file; relative to `zone_dir`. Default: `<zone_dir>/<name>.zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// TTL of records that state none when the file has no `$TTL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Only primary (`master`) zones are served standalone.
    #[serde(default, rename = "type")]
    pub zone_type: ZoneType,
}

impl ZoneEntry {
    pub fn file_in(&self, zone_dir: &Path) -> PathBuf {
        match &self.file {
            Some(file) => zone_dir.join(file),
            None => zone_dir.join(format!("{}.zone", self.name.trim_end_matches('.'))),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneType {
    #[default]
    #[serde(alias = "primary")]
    Master,
}

/// TTL used for records without one when neither the file (`$TTL`) nor the zone entry sets it.
pub const DEFAULT_RECORD_TTL: u32 = 3600;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesSection {
    /// Online DNSSEC signing: not in this build; `true` is refused.
    #[serde(default)]
    pub dnssec: bool,
    /// RFC 2136 updates: not served standalone; `true` is refused.
    #[serde(default)]
    pub dynamic_update: bool,
    /// Addresses (or CIDR prefixes) that may transfer zones (AXFR over TCP).
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub axfr_allow: Vec<String>,
}

/// One `axfr_allow` entry: an address or a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedNet {
    addr: IpAddr,
    prefix_len: u8,
}

impl AllowedNet {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| {
            format!("{text:?} is not an IP address or prefix (e.g. 192.0.2.1, 10.0.0.0/8, ::1)")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= max)
                .ok_or_else(|| format!("{text:?}: prefix length must be 0..={max}"))?,
        };
        Ok(Self { addr, prefix_len })
    }

    pub fn contains(&self, candidate: IpAddr) -> bool {
        let candidate = match candidate {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(candidate, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, candidate) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_matches(
                u32::from(net).into(),
                u32::from(ip).into(),
                32,
                self.prefix_len,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(u128::from(net), u128::from(ip), 128, self.prefix_len)
            }
            _ => false,
        }
    }
}

fn prefix_matches(net: u128, ip: u128, bits: u8, prefix_len: u8) -> bool {
    if prefix_len == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix_len);
    (net >> shift) == (ip >> shift)
}

impl FeaturesSection {
    pub fn axfr_allowed(&self) -> Vec<AllowedNet> {
        // Validation has refused unparsable entries already.
        self.axfr_allow
            .iter()
            .filter_map(|entry| AllowedNet::parse(entry).ok())
            .collect()
    }
}

impl Sections for FlashdnsSections {
    fn validate(&self, photon: &PhotonSection) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let standalone = &self.standalone;
        let server = &standalone.server;
        problems.extend(photon.metrics_on_admin_addr(
            "flashdns",
            "standalone.server.admin_api_addr",
            server.admin_api_addr,
        ));
        if server.max_udp_payload < 512 {
            problems.push(Invalid::new(
                "standalone.server.max_udp_payload",
                "must be at least 512 (the DNS minimum)",
            ));
        }
        if server.tcp_idle_timeout_sec == 0 {
            problems.push(Invalid::new(
                "standalone.server.tcp_idle_timeout_sec",
                "must be at least 1",
            ));
        }
        if server.max_tcp_connections == 0 {
            problems.push(Invalid::new(
                "standalone.server.max_tcp_connections",
                "must be at least 1",
            ));
        }
        let zones = &standalone.zones;
        if zones.auto_reload && zones.reload_interval_sec == 0 {
            problems.push(Invalid::new(
                "standalone.zones.reload_interval_sec",
                "must be at least 1 when auto_reload is on",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, zone) in zones.zone.iter().enumerate() {
            let key = format!("standalone.zones.zone[{index}].name");
            match hickory_proto::rr::Name::from_utf8(&zone.name) {
                Err(err) => problems.push(Invalid::new(key, format!("{:?}: {err}", zone.name))),
                Ok(name) => {
                    if !seen.insert(
                        name.to_lowercase()
                            .to_string()
                            .trim_end_matches('.')
                            .to_owned(),
                    ) {
                        problems.push(Invalid::new(
                            key,
                            format!("zone {:?} is listed twice", zone.name),
                        ));
                    }
                }
            }
        }
        if standalone.features.dnssec {
            problems.push(Invalid::new(
                "standalone.features.dnssec",
                "online DNSSEC signing is not available in this build; set false",
            ));
        }
        if standalone.features.dynamic_update {
            problems.push(Invalid::new(
                "standalone.features.dynamic_update",
                "dynamic updates are not served in standalone mode; edit the zone file and reload (SIGHUP)",
            ));
        }
        for entry in &standalone.features.axfr_allow {
            if let Err(reason) = AllowedNet::parse(entry) {
                problems.push(Invalid::new("standalone.features.axfr_allow", reason));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_addresses_and_prefixes() {
        let one = AllowedNet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(one.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let net = AllowedNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let v6 = AllowedNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(
            AllowedNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("192.0.2.7".parse().unwrap())
        );
        assert!(AllowedNet::parse("10.0.0.0/33").is_err());
        assert!(AllowedNet::parse("localhost").is_err());
    }
}
