//! The `[photon]` section every component shares (the spec's sections 3.2, 5.1, 6.4 and 7.2).
//!
//! Every struct denies unknown keys: a typo in a config file must be refused, never ignored.
//! Defaults live here, in `Default` impls, so `--print-config` shows the effective values.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The config versions this build understands.
pub const SUPPORTED_CONFIG_VERSIONS: &[&str] = &["1.0"];

crate::keyword_enum! {
    /// How a component runs: alone, joined to the platform, or per backend (the spec's 6.4).
    pub enum Mode {
        Standalone => "standalone",
        Integrated => "integrated",
        Hybrid => "hybrid",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotonSection {
    /// Unset means "detect": environment, then probe of the control plane, then standalone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Required: the component's unique name in the platform.
    #[serde(default)]
    pub component_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<String>,
    /// How long shutdown waits for in-flight work before exiting anyway.
    #[serde(default = "default_shutdown_timeout_sec")]
    pub shutdown_timeout_sec: u64,
    #[serde(default)]
    pub logging: LoggingSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub standalone: StandaloneSection,
    #[serde(default)]
    pub integrated: IntegratedSection,
    #[serde(default)]
    pub hybrid: HybridSection,
}

fn default_shutdown_timeout_sec() -> u64 {
    30
}

crate::keyword_enum! {
    #[derive(Default)]
    pub enum LogLevel {
        Trace => "trace",
        Debug => "debug",
        #[default]
        Info => "info",
        Warn => "warn",
        Error => "error",
    }
}

crate::keyword_enum! {
    #[derive(Default)]
    pub enum LogFormat {
        Json => "json",
        #[default]
        Text => "text",
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSection {
    #[serde(default)]
    pub level: LogLevel,
    #[serde(default)]
    pub format: LogFormat,
}

/// The admin HTTP server (`/health`, `/metrics`) listens on `endpoint`; each component supplies
/// its own default address so that the whole suite runs on one host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// `false` keeps `/health` but answers `/metrics` with 404.
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<SocketAddr>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            endpoint: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Backend choices for standalone operation. Each component reads the keys that concern it and
/// checks their values; the union of the spec's keys is accepted here so its examples load.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandaloneSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegratedSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<String>,
    /// Accepts a TOML list or one comma-separated string (as environment variables give it).
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub chainfire_endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_service_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bus_endpoint: Option<String>,
    /// Used by the scheduler and the API gateway (the spec's `RESOURCE_MANAGER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_manager_endpoint: Option<String>,
    #[serde(default = "default_heartbeat_interval_sec")]
    pub heartbeat_interval_sec: u64,
    #[serde(default)]
    pub fallback_to_standalone: bool,
    #[serde(default = "default_fallback_timeout_sec")]
    pub fallback_timeout_sec: u64,
    #[serde(default)]
    pub registration: RegistrationSection,
}

impl Default for IntegratedSection {
    fn default() -> Self {
        Self {
            control_plane_endpoint: None,
            chainfire_endpoints: Vec::new(),
            auth_service_endpoint: None,
            event_bus_endpoint: None,
            resource_manager_endpoint: None,
            heartbeat_interval_sec: default_heartbeat_interval_sec(),
            fallback_to_standalone: false,
            fallback_timeout_sec: default_fallback_timeout_sec(),
            registration: RegistrationSection::default(),
        }
    }
}

impl IntegratedSection {
    /// The registration's own interval when set, else the section's.
    pub fn effective_heartbeat_interval_sec(&self) -> u64 {
        self.registration
            .heartbeat_interval_sec
            .unwrap_or(self.heartbeat_interval_sec)
    }
}

fn default_heartbeat_interval_sec() -> u64 {
    30
}

fn default_fallback_timeout_sec() -> u64 {
    30
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSection {
    #[serde(default = "default_true")]
    pub auto_register: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_sec: Option<u64>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Default for RegistrationSection {
    fn default() -> Self {
        Self {
            auto_register: true,
            heartbeat_interval_sec: None,
            metadata: BTreeMap::new(),
        }
    }
}

crate::keyword_enum! {
    #[derive(Default)]
    /// Where one backend lives in hybrid mode.
    pub enum BackendChoice {
        #[default]
        Local => "local",
        Integrated => "integrated",
    }
}

/// Per-backend choices for hybrid mode (the spec's section 6.4). Endpoints given here win over
/// the same endpoints in `[photon.integrated]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridSection {
    #[serde(default)]
    pub auth_backend: BackendChoice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_endpoint: Option<String>,
    #[serde(default)]
    pub metadata_backend: BackendChoice,
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub chainfire_endpoints: Vec<String>,
    #[serde(default)]
    pub events_backend: BackendChoice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bus_endpoint: Option<String>,
}

/// The backends a component may take from the platform instead of keeping locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Auth,
    Metadata,
    Events,
}

impl PhotonSection {
    /// For components that serve `/metrics` on their own admin address (`admin_key`): refuses a
    /// `photon.metrics.endpoint` that names another address.
    pub fn metrics_on_admin_addr(
        &self,
        component: &str,
        admin_key: &str,
        admin_addr: SocketAddr,
    ) -> Option<crate::Invalid> {
        let endpoint = self.metrics.endpoint?;
        (endpoint != admin_addr).then(|| {
            crate::Invalid::new(
                "photon.metrics.endpoint",
                format!(
                    "{component} serves /metrics on {admin_key} ({admin_addr}); set only that key"
                ),
            )
        })
    }

    /// Where `backend` lives under `mode` (the resolved one, which may differ from `self.mode`).
    pub fn backend_choice(&self, mode: Mode, backend: Backend) -> BackendChoice {
        match mode {
            Mode::Standalone => BackendChoice::Local,
            Mode::Integrated => BackendChoice::Integrated,
            Mode::Hybrid => match backend {
                Backend::Auth => self.hybrid.auth_backend,
                Backend::Metadata => self.hybrid.metadata_backend,
                Backend::Events => self.hybrid.events_backend,
            },
        }
    }

    pub fn auth_endpoint(&self) -> Option<&str> {
        self.hybrid
            .auth_endpoint
            .as_deref()
            .or(self.integrated.auth_service_endpoint.as_deref())
    }

    pub fn chainfire_endpoints(&self) -> &[String] {
        if self.hybrid.chainfire_endpoints.is_empty() {
            &self.integrated.chainfire_endpoints
        } else {
            &self.hybrid.chainfire_endpoints
        }
    }

    pub fn event_bus_endpoint(&self) -> Option<&str> {
        self.hybrid
            .event_bus_endpoint
            .as_deref()
            .or(self.integrated.event_bus_endpoint.as_deref())
    }
}

/// For `#[serde(deserialize_with)]` on a list of strings: accepts a TOML list or one
/// comma-separated string (as environment variables and `--set` give it).
pub fn list_or_comma_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings or one comma-separated string of them")
        }

        fn visit_str<E: de::Error>(self, joined: &str) -> Result<Self::Value, E> {
            Ok(joined
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }
    }

    d.deserialize_any(ListVisitor)
}
