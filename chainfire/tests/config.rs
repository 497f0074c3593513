//! chainfire's configuration: the shipped example, defaults and refusals.

use std::path::{Path, PathBuf};

use chainfire::config::ChainfireSections;
use photon_config::{Error, Sources, load};

fn sources(file: Option<PathBuf>, env: &[(&str, &str)]) -> Sources {
    Sources {
        component: "chainfire".into(),
        explicit_file: file,
        file_candidates: Vec::new(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        overrides: Vec::new(),
    }
}

#[test]
fn the_shipped_example_loads_and_states_the_defaults() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/chainfire/config.toml");
    let loaded = load::<ChainfireSections>(&sources(Some(example), &[])).unwrap();
    let defaults = ChainfireSections::default();
    // The example writes every default out; if a default changes, the example must follow.
    assert_eq!(
        toml::to_string(&loaded.sections).unwrap(),
        toml::to_string(&defaults).unwrap()
    );
}

#[test]
fn environment_sets_chainfire_keys() {
    let loaded = load::<ChainfireSections>(&sources(
        None,
        &[
            ("PHOTON_COMPONENT_ID", "cf"),
            ("PHOTON_SERVER__CLIENT_ADDR", "0.0.0.0:12379"),
            ("PHOTON_LIMITS__MAX_TXN_OPS", "64"),
        ],
    ))
    .unwrap();
    assert_eq!(loaded.sections.server.client_addr.port(), 12379);
    assert_eq!(loaded.sections.limits.max_txn_ops, 64);
    assert_eq!(
        loaded.sections.advertised_client_url(),
        "http://127.0.0.1:12379"
    );
}

#[test]
fn typos_and_bad_values_are_refused_by_name() {
    let dir = tempfile::TempDir::new().unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        "[photon]\ncomponent_id = \"cf\"\n[storage]\ndata_dri = \"/x\"\n",
    )
    .unwrap();
    let message = load::<ChainfireSections>(&sources(Some(typo), &[]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("storage.data_dri"), "{message}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[photon]\ncomponent_id = \"cf\"\n[raft]\nheartbeat_interval_ms = 600\n",
    )
    .unwrap();
    match load::<ChainfireSections>(&sources(Some(bad), &[])).unwrap_err() {
        Error::Invalid { key, reason, .. } => {
            assert_eq!(key, "raft.election_timeout_ms");
            assert!(reason.contains("twice"), "{reason}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn cluster_settings_come_from_lists_or_comma_separated_strings() {
    let loaded = load::<ChainfireSections>(&sources(
        None,
        &[
            ("PHOTON_COMPONENT_ID", "cf1"),
            ("PHOTON_CLUSTER__ENABLED", "true"),
            ("PHOTON_CLUSTER__PEER_ADDR", "10.0.0.1:2380"),
            (
                "PHOTON_CLUSTER__INITIAL_CLUSTER",
                "cf1=http://10.0.0.1:2380, cf2=http://10.0.0.2:2380",
            ),
        ],
    ))
    .unwrap();
    let cluster = &loaded.sections.cluster;
    let members = cluster.initial_members().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[1].name, "cf2");
    assert_eq!(members[1].peer_url, "http://10.0.0.2:2380");
    assert_eq!(cluster.advertised_peer_url(), "http://10.0.0.1:2380");
}

#[test]
fn malformed_cluster_settings_are_refused_by_name() {
    let refused = |settings: &[(&str, &str)]| {
        let mut env = vec![("PHOTON_COMPONENT_ID", "cf1")];
        env.extend_from_slice(settings);
        match load::<ChainfireSections>(&sources(None, &env)).unwrap_err() {
            Error::Invalid { key, reason, .. } => (key, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    };
    let (key, reason) = refused(&[
        ("PHOTON_CLUSTER__ENABLED", "true"),
        (
            "PHOTON_CLUSTER__INITIAL_CLUSTER",
            "cf1=http://a:2380,cf1=http://b:2380",
        ),
    ]);
    assert_eq!(key, "cluster.initial_cluster");
    assert!(reason.contains("repeats"), "{reason}");

    let (key, reason) = refused(&[
        ("PHOTON_CLUSTER__ENABLED", "true"),
        ("PHOTON_CLUSTER__INITIAL_CLUSTER", "cf1"),
    ]);
    assert_eq!(key, "cluster.initial_cluster");
    assert!(reason.contains("NAME=PEER_URL"), "{reason}");

    let (key, _) = refused(&[
        ("PHOTON_CLUSTER__ENABLED", "true"),
        ("PHOTON_CLUSTER__JOIN", "10.0.0.1:2379"),
    ]);
    assert_eq!(key, "cluster.join");

    // Cluster settings without cluster mode are a mistake, not something to ignore.
    let (key, _) = refused(&[("PHOTON_CLUSTER__JOIN", "http://10.0.0.1:2379")]);
    assert_eq!(key, "cluster.enabled");
}
