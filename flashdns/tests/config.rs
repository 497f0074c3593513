//! flashdns's configuration: the shipped example, and refusals that name the key.

use std::path::{Path, PathBuf};

use flashdns::config::FlashdnsSections;
use photon_config::{Error, Sources, load};

fn sources(file: Option<PathBuf>, overrides: &[(&str, &str)]) -> Sources {
    Sources {
        component: "flashdns".into(),
        explicit_file: file,
        file_candidates: Vec::new(),
        env: vec![("PHOTON_COMPONENT_ID".into(), "dns".into())],
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn the_shipped_example_loads_and_states_the_defaults() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/flashdns/config.toml");
    let loaded = load::<FlashdnsSections>(&sources(Some(example), &[])).unwrap();
    // The example writes every default out; if a default changes, the example must follow.
    assert_eq!(
        toml::to_string(&loaded.sections).unwrap(),
        toml::to_string(&FlashdnsSections::default()).unwrap()
    );
}

fn refusal(overrides: &[(&str, &str)]) -> (String, String) {
    match load::<FlashdnsSections>(&sources(None, overrides)) {
        Err(Error::Invalid { key, reason, .. }) => (key, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn unsupported_features_and_bad_values_are_refused_by_name() {
    let (key, reason) = refusal(&[("standalone.features.dnssec", "true")]);
    assert_eq!(key, "standalone.features.dnssec");
    assert!(reason.contains("not available"), "{reason}");
    let (key, _) = refusal(&[("standalone.features.dynamic_update", "true")]);
    assert_eq!(key, "standalone.features.dynamic_update");
    let (key, reason) = refusal(&[("standalone.features.axfr_allow", "10.0.0.0/40")]);
    assert_eq!(key, "standalone.features.axfr_allow");
    assert!(reason.contains("prefix length"), "{reason}");
    let (key, _) = refusal(&[("standalone.server.max_udp_payload", "100")]);
    assert_eq!(key, "standalone.server.max_udp_payload");
    let (key, reason) = refusal(&[("photon.metrics.endpoint", "127.0.0.1:9999")]);
    assert_eq!(key, "photon.metrics.endpoint");
    assert!(reason.contains("admin_api_addr"), "{reason}");
}
