//! Checks on `[photon]` that types alone cannot express.

use crate::Invalid;
use crate::schema::{BackendChoice, Mode, PhotonSection, SUPPORTED_CONFIG_VERSIONS};

pub(crate) fn validate_photon(photon: &PhotonSection) -> Vec<Invalid> {
    let mut problems = Vec::new();

    if photon.component_id.is_empty() {
        problems.push(Invalid::new(
            "photon.component_id",
            "is required: set it in the config file, with PHOTON_COMPONENT_ID or with --component-id",
        ));
    } else if !photon
        .component_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        problems.push(Invalid::new(
            "photon.component_id",
            "accepted: letters, digits, '-', '_' and '.'",
        ));
    }

    if let Some(version) = &photon.config_version
        && !SUPPORTED_CONFIG_VERSIONS.contains(&version.as_str())
    {
        problems.push(Invalid::new(
            "photon.config_version",
            format!(
                "this build understands config_version {}",
                SUPPORTED_CONFIG_VERSIONS.join(", ")
            ),
        ));
    }

    let integrated = &photon.integrated;
    let http_endpoints = [
        (
            "photon.integrated.control_plane_endpoint",
            integrated.control_plane_endpoint.as_deref(),
        ),
        (
            "photon.integrated.auth_service_endpoint",
            integrated.auth_service_endpoint.as_deref(),
        ),
        (
            "photon.integrated.resource_manager_endpoint",
            integrated.resource_manager_endpoint.as_deref(),
        ),
        (
            "photon.hybrid.auth_endpoint",
            photon.hybrid.auth_endpoint.as_deref(),
        ),
    ];
    for (key, endpoint) in http_endpoints {
        if let Some(endpoint) = endpoint {
            problems.extend(check_url(key, endpoint, &["http", "https"]));
        }
    }
    let endpoint_lists = [
        (
            "photon.integrated.chainfire_endpoints",
            &integrated.chainfire_endpoints,
        ),
        (
            "photon.hybrid.chainfire_endpoints",
            &photon.hybrid.chainfire_endpoints,
        ),
    ];
    for (key, endpoints) in endpoint_lists {
        for (index, endpoint) in endpoints.iter().enumerate() {
            problems.extend(check_url(
                &format!("{key}[{index}]"),
                endpoint,
                &["http", "https"],
            ));
        }
    }
    // NATS clients take nats:// and tls:// URLs; the spec's examples write http:// for it.
    let event_bus_schemes = ["nats", "tls", "http", "https"];
    for (key, endpoint) in [
        (
            "photon.integrated.event_bus_endpoint",
            integrated.event_bus_endpoint.as_deref(),
        ),
        (
            "photon.hybrid.event_bus_endpoint",
            photon.hybrid.event_bus_endpoint.as_deref(),
        ),
    ] {
        if let Some(endpoint) = endpoint {
            problems.extend(check_url(key, endpoint, &event_bus_schemes));
        }
    }

    for (key, seconds) in [
        (
            "photon.integrated.heartbeat_interval_sec",
            Some(integrated.heartbeat_interval_sec),
        ),
        (
            "photon.integrated.fallback_timeout_sec",
            Some(integrated.fallback_timeout_sec),
        ),
        (
            "photon.integrated.registration.heartbeat_interval_sec",
            integrated.registration.heartbeat_interval_sec,
        ),
    ] {
        if seconds == Some(0) {
            problems.push(Invalid::new(key, "must be at least 1 second"));
        }
    }

    if photon.mode == Some(Mode::Hybrid) {
        problems.extend(hybrid_endpoints_missing(photon));
    }
    problems
}

/// In hybrid mode, each backend taken from the platform needs an endpoint to reach it.
fn hybrid_endpoints_missing(photon: &PhotonSection) -> Vec<Invalid> {
    let hybrid = &photon.hybrid;
    let mut problems = Vec::new();
    if hybrid.auth_backend == BackendChoice::Integrated && photon.auth_endpoint().is_none() {
        problems.push(Invalid::new(
            "photon.hybrid.auth_backend",
            "is \"integrated\" but no auth endpoint is set: set photon.hybrid.auth_endpoint or PHOTON_AUTH_ENDPOINT",
        ));
    }
    if hybrid.metadata_backend == BackendChoice::Integrated
        && photon.chainfire_endpoints().is_empty()
    {
        problems.push(Invalid::new(
            "photon.hybrid.metadata_backend",
            "is \"integrated\" but no chainfire endpoint is set: set photon.hybrid.chainfire_endpoints or PHOTON_CHAINFIRE_ENDPOINTS",
        ));
    }
    if hybrid.events_backend == BackendChoice::Integrated && photon.event_bus_endpoint().is_none() {
        problems.push(Invalid::new(
            "photon.hybrid.events_backend",
            "is \"integrated\" but no event bus endpoint is set: set photon.hybrid.event_bus_endpoint or EVENT_BUS",
        ));
    }
    problems
}

fn check_url(key: &str, endpoint: &str, schemes: &[&str]) -> Option<Invalid> {
    match reqwest::Url::parse(endpoint) {
        Ok(url) if schemes.contains(&url.scheme()) && url.host_str().is_some() => None,
        Ok(url) if url.host_str().is_none() => Some(Invalid::new(
            key,
            "the URL has no host (e.g. http://host:port)",
        )),
        Ok(url) => Some(Invalid::new(
            key,
            format!(
                "scheme {:?} is not accepted here; accepted: {}",
                url.scheme(),
                schemes.join(", ")
            ),
        )),
        Err(err) => Some(Invalid::new(
            key,
            format!(
                "not a URL ({err}); expected e.g. {}://host:port",
                schemes[0]
            ),
        )),
    }
}
