//! The `/health` document every PhotonCloud server answers (the spec's section 7.2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mode::ModeSource;
use crate::schema::Mode;

/// A check's value when it passed; anything else is the failure's message.
pub const CHECK_OK: &str = "ok";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    pub status: HealthStatus,
    pub mode: Mode,
    pub mode_source: ModeSource,
    /// The component's kind, e.g. `lightningstor`.
    pub component: String,
    pub component_id: String,
    pub version: String,
    /// Check name → `"ok"` or what failed.
    pub checks: BTreeMap<String, String>,
}

/// `http://host:port` → `http://host:port/health`; a URL already ending in `/health` is kept.
pub fn health_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/health") {
        base.to_owned()
    } else {
        format!("{base}/health")
    }
}
