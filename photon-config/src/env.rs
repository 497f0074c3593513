//! Environment variables as a configuration layer.
//!
//! Three kinds of names are understood, later ones winning for the same key:
//! 1. the names the spec's compose files use (`CHAINFIRE_ENDPOINT`, `AUTH_ENDPOINT`, ...);
//! 2. the spec's short names (section 5.2: `PHOTON_MODE`, `PHOTON_LOG_LEVEL`, ...);
//! 3. the general form `PHOTON_<SECTION>__<KEY>`, `__` between nested keys
//!    (`PHOTON_STANDALONE__SERVER__S3_ADDR` sets `standalone.server.s3_addr`).
//!
//! Any other `PHOTON_` variable is refused: a misspelt variable must not be silently ignored.

use std::collections::BTreeMap;

use config::{Map, Source, Value, ValueKind};

use crate::Error;

/// Prefix of the general form and of the short names.
const PREFIX: &str = "PHOTON_";

/// Variables with the prefix that are read elsewhere (by the command-line parser), not here.
const CONSUMED_ELSEWHERE: &[&str] = &["PHOTON_CONFIG"];

/// Fixed names and the keys they set, in increasing precedence.
const NAMED_VARIABLES: &[(&str, &str)] = &[
    // The spec's compose files (section 4).
    (
        "CHAINFIRE_ENDPOINT",
        "photon.integrated.chainfire_endpoints",
    ),
    (
        "CHAINFIRE_ENDPOINTS",
        "photon.integrated.chainfire_endpoints",
    ),
    ("AUTH_ENDPOINT", "photon.integrated.auth_service_endpoint"),
    ("EVENT_BUS", "photon.integrated.event_bus_endpoint"),
    (
        "RESOURCE_MANAGER",
        "photon.integrated.resource_manager_endpoint",
    ),
    // The spec's section 5.2.
    ("PHOTON_MODE", "photon.mode"),
    ("PHOTON_COMPONENT_ID", "photon.component_id"),
    ("PHOTON_CLUSTER_ID", "photon.cluster_id"),
    ("PHOTON_LOG_LEVEL", "photon.logging.level"),
    ("PHOTON_LOG_FORMAT", "photon.logging.format"),
    (
        "PHOTON_CONTROL_PLANE_ENDPOINT",
        "photon.integrated.control_plane_endpoint",
    ),
    (
        "PHOTON_CHAINFIRE_ENDPOINTS",
        "photon.integrated.chainfire_endpoints",
    ),
    (
        "PHOTON_AUTH_ENDPOINT",
        "photon.integrated.auth_service_endpoint",
    ),
];

/// The origin recorded on values that came from the environment.
pub(crate) fn origin_of(variable: &str) -> String {
    format!("environment variable {variable}")
}

pub(crate) fn is_environment_origin(origin: &str) -> bool {
    origin.starts_with("environment variable ")
}

/// The configuration keys set by an environment, each with the variable that set it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvironmentLayer {
    settings: BTreeMap<String, (String, String)>,
}

impl EnvironmentLayer {
    pub(crate) fn from_vars<I, K, V>(vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let mut settings = BTreeMap::new();

        for (name, key) in NAMED_VARIABLES {
            if let Some(value) = vars.get(*name) {
                settings.insert((*key).to_owned(), ((*name).to_owned(), value.clone()));
            }
        }

        for (name, value) in &vars {
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            if NAMED_VARIABLES.iter().any(|(named, _)| named == name)
                || CONSUMED_ELSEWHERE.contains(&name.as_str())
            {
                continue;
            }
            let key = nested_key(rest).ok_or_else(|| Error::UnknownEnvironmentVariable {
                name: name.clone(),
                accepted: accepted_names(),
            })?;
            settings.insert(key, (name.clone(), value.clone()));
        }

        Ok(Self { settings })
    }

    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(|(_, value)| value.as_str())
    }
}

/// `STANDALONE__SERVER__S3_ADDR` → `standalone.server.s3_addr`; `None` without a `__`.
fn nested_key(rest: &str) -> Option<String> {
    if !rest.contains("__") {
        return None;
    }
    let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    let well_formed = parts.iter().all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    well_formed.then(|| parts.join("."))
}

fn accepted_names() -> String {
    let mut names: Vec<&str> = NAMED_VARIABLES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| name.starts_with(PREFIX))
        .chain(CONSUMED_ELSEWHERE.iter().copied())
        .collect();
    names.push("PHOTON_<SECTION>__<KEY> (e.g. PHOTON_PHOTON__LOGGING__FORMAT)");
    names.join(", ")
}

impl Source for EnvironmentLayer {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(self
            .settings
            .iter()
            .map(|(key, (variable, value))| {
                let origin = origin_of(variable);
                (
                    key.clone(),
                    Value::new(Some(&origin), ValueKind::String(value.clone())),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_map_to_the_spec_keys() {
        let layer = EnvironmentLayer::from_vars([
            ("PHOTON_MODE", "integrated"),
            ("PHOTON_COMPONENT_ID", "ls-1"),
            ("PHOTON_CLUSTER_ID", "c1"),
            ("PHOTON_LOG_LEVEL", "debug"),
            ("PHOTON_CONTROL_PLANE_ENDPOINT", "http://cp:8080"),
            ("PHOTON_CHAINFIRE_ENDPOINTS", "http://a:2379,http://b:2379"),
            ("PHOTON_AUTH_ENDPOINT", "http://auth:50051"),
        ])
        .unwrap();
        assert_eq!(layer.get("photon.mode"), Some("integrated"));
        assert_eq!(layer.get("photon.component_id"), Some("ls-1"));
        assert_eq!(layer.get("photon.cluster_id"), Some("c1"));
        assert_eq!(layer.get("photon.logging.level"), Some("debug"));
        assert_eq!(
            layer.get("photon.integrated.control_plane_endpoint"),
            Some("http://cp:8080")
        );
        assert_eq!(
            layer.get("photon.integrated.chainfire_endpoints"),
            Some("http://a:2379,http://b:2379")
        );
        assert_eq!(
            layer.get("photon.integrated.auth_service_endpoint"),
            Some("http://auth:50051")
        );
    }

    #[test]
    fn compose_names_are_understood_and_lose_to_photon_names() {
        let layer = EnvironmentLayer::from_vars([
            ("CHAINFIRE_ENDPOINT", "http://compose:2379"),
            ("EVENT_BUS", "http://events:4222"),
            ("RESOURCE_MANAGER", "http://rm:8080"),
            ("AUTH_ENDPOINT", "http://compose-auth:50051"),
            ("PHOTON_AUTH_ENDPOINT", "http://photon-auth:50051"),
        ])
        .unwrap();
        assert_eq!(
            layer.get("photon.integrated.chainfire_endpoints"),
            Some("http://compose:2379")
        );
        assert_eq!(
            layer.get("photon.integrated.event_bus_endpoint"),
            Some("http://events:4222")
        );
        assert_eq!(
            layer.get("photon.integrated.resource_manager_endpoint"),
            Some("http://rm:8080")
        );
        assert_eq!(
            layer.get("photon.integrated.auth_service_endpoint"),
            Some("http://photon-auth:50051")
        );
    }

    #[test]
    fn general_form_nests_on_double_underscores_and_beats_short_names() {
        let layer = EnvironmentLayer::from_vars([
            ("PHOTON_STANDALONE__SERVER__S3_ADDR", "127.0.0.1:1"),
            ("PHOTON_LOG_LEVEL", "debug"),
            ("PHOTON_PHOTON__LOGGING__LEVEL", "warn"),
        ])
        .unwrap();
        assert_eq!(layer.get("standalone.server.s3_addr"), Some("127.0.0.1:1"));
        assert_eq!(layer.get("photon.logging.level"), Some("warn"));
    }

    #[test]
    fn unrelated_variables_are_ignored_and_reserved_ones_skipped() {
        let layer =
            EnvironmentLayer::from_vars([("HOME", "/root"), ("PHOTON_CONFIG", "/x.toml")]).unwrap();
        assert!(layer.settings.is_empty());
    }

    #[test]
    fn unknown_photon_variable_is_refused_by_name() {
        let err = EnvironmentLayer::from_vars([("PHOTON_MOED", "integrated")]).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("PHOTON_MOED"), "{message}");
        assert!(message.contains("PHOTON_MODE"), "{message}");

        let err = EnvironmentLayer::from_vars([("PHOTON_A____B", "x")]).unwrap_err();
        assert!(err.to_string().contains("PHOTON_A____B"));
    }
}
