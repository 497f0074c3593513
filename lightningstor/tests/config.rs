//! lightningstor's configuration: the shipped example, and refusals that name the key.

use std::path::{Path, PathBuf};

use lightningstor::config::LightningstorSections;
use photon_config::{Error, Sources, load};

fn sources(file: Option<PathBuf>, overrides: &[(&str, &str)]) -> Sources {
    Sources {
        component: "lightningstor".into(),
        explicit_file: file,
        file_candidates: Vec::new(),
        env: vec![("PHOTON_COMPONENT_ID".into(), "store".into())],
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn the_shipped_example_loads_and_states_the_defaults() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/lightningstor/config.toml");
    let loaded = load::<LightningstorSections>(&sources(Some(example), &[])).unwrap();
    // The example writes every default out; if a default changes, the example must follow.
    assert_eq!(
        toml::to_string(&loaded.sections).unwrap(),
        toml::to_string(&LightningstorSections::default()).unwrap()
    );
}

fn refusal(overrides: &[(&str, &str)]) -> (String, String) {
    match load::<LightningstorSections>(&sources(None, overrides)) {
        Err(Error::Invalid { key, reason, .. }) => (key, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn bad_values_are_refused_by_name() {
    let (key, reason) = refusal(&[("standalone.features.lifecycle", "true")]);
    assert_eq!(key, "standalone.features.lifecycle");
    assert!(reason.contains("not available"), "{reason}");
    let (key, reason) = refusal(&[("standalone.auth.access_key", "AKIAONLY")]);
    assert_eq!(key, "standalone.auth.secret_key");
    assert!(reason.contains("without secret_key"), "{reason}");
    let (key, reason) = refusal(&[
        ("standalone.auth.access_key", "AKIA/SLASH"),
        ("standalone.auth.secret_key", "long-enough-secret"),
    ]);
    assert_eq!(key, "standalone.auth.access_key");
    assert!(reason.contains("'/'"), "{reason}");
    let (key, _) = refusal(&[("standalone.auth.type", "iam")]);
    assert_eq!(key, "standalone.auth.type");
    let (key, _) = refusal(&[("standalone.auth.public_read_buckets", "Not_A_Bucket")]);
    assert_eq!(key, "standalone.auth.public_read_buckets");
    let (key, reason) = refusal(&[("standalone.server.grpc_addr", "127.0.0.1:9001")]);
    assert_eq!(key, "standalone.server.grpc_addr");
    assert!(reason.contains("standalone.server.s3_addr"), "{reason}");
    let (key, reason) = refusal(&[("standalone.server.log_level", "debug")]);
    assert_eq!(key, "standalone.server.log_level");
    assert!(reason.contains("photon.logging.level"), "{reason}");
    let (key, _) = refusal(&[("standalone.storage.inline_threshold_bytes", "10000000")]);
    assert_eq!(key, "standalone.storage.inline_threshold_bytes");
    let (key, reason) = refusal(&[("photon.metrics.endpoint", "127.0.0.1:9999")]);
    assert_eq!(key, "photon.metrics.endpoint");
    assert!(reason.contains("admin_api_addr"), "{reason}");
}
