//! The loader against real files, environments and command-line settings.

use std::path::{Path, PathBuf};

use photon_config::{
    Backend, BackendChoice, Error, LogFormat, LogLevel, Mode, NoSections, Sources, load,
};
use tempfile::TempDir;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples")
}

/// Sources with nothing from this machine: no default file lookup, only the given environment.
fn sources(file: Option<&Path>, env: &[(&str, &str)], overrides: &[(&str, &str)]) -> Sources {
    Sources {
        component: "testcomp".into(),
        explicit_file: file.map(Path::to_path_buf),
        file_candidates: Vec::new(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn invalid(err: Error) -> (String, String, Option<String>, String) {
    match err {
        Error::Invalid {
            origin,
            key,
            value,
            reason,
        } => (origin, key, value, reason),
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

#[test]
fn every_spec_example_loads_unchanged() {
    let examples = [
        "lightningstor.toml",
        "flashdns.toml",
        "fiberlb.toml",
        "nightlight.toml",
        "standalone.toml",
        "integrated.toml",
        "common.toml",
    ];
    for name in examples {
        let path = examples_dir().join(name);
        let loaded = load::<toml::Table>(&sources(Some(&path), &[], &[]))
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(!loaded.photon.component_id.is_empty(), "{name}");
    }

    let lightningstor = load::<toml::Table>(&sources(
        Some(&examples_dir().join("lightningstor.toml")),
        &[],
        &[],
    ))
    .unwrap();
    assert_eq!(lightningstor.photon.component_id, "lightningstor-01");
    assert_eq!(
        lightningstor.photon.standalone.metadata_backend.as_deref(),
        Some("rocksdb")
    );
    assert_eq!(
        lightningstor.sections["standalone"]["server"]["s3_addr"].as_str(),
        Some("0.0.0.0:9001")
    );

    let integrated = load::<toml::Table>(&sources(
        Some(&examples_dir().join("integrated.toml")),
        &[],
        &[],
    ))
    .unwrap();
    let section = &integrated.photon.integrated;
    assert_eq!(integrated.photon.mode, Some(Mode::Integrated));
    assert_eq!(section.chainfire_endpoints, vec!["http://chainfire:2379"]);
    assert_eq!(section.registration.metadata["region"], "tokyo");
    assert_eq!(section.effective_heartbeat_interval_sec(), 30);

    // The spec's hybrid example is a fragment without component_id: an operator supplies it.
    let hybrid = load::<toml::Table>(&sources(
        Some(&examples_dir().join("hybrid.toml")),
        &[("PHOTON_COMPONENT_ID", "hybrid-01")],
        &[],
    ))
    .unwrap();
    let photon = &hybrid.photon;
    assert_eq!(
        photon.backend_choice(Mode::Hybrid, Backend::Auth),
        BackendChoice::Integrated
    );
    assert_eq!(
        photon.backend_choice(Mode::Hybrid, Backend::Metadata),
        BackendChoice::Local
    );
    assert_eq!(
        photon.backend_choice(Mode::Hybrid, Backend::Events),
        BackendChoice::Integrated
    );
    assert_eq!(photon.auth_endpoint(), Some("http://photonauth:50051"));
    assert_eq!(
        photon.backend_choice(Mode::Standalone, Backend::Auth),
        BackendChoice::Local
    );
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let loaded = load::<NoSections>(&sources(None, &[("PHOTON_COMPONENT_ID", "x")], &[])).unwrap();
    let photon = &loaded.photon;
    assert_eq!(photon.mode, None);
    assert_eq!(photon.logging.level, LogLevel::Info);
    assert_eq!(photon.logging.format, LogFormat::Text);
    assert!(photon.metrics.enabled);
    assert_eq!(photon.integrated.heartbeat_interval_sec, 30);
    assert_eq!(photon.integrated.fallback_timeout_sec, 30);
    assert!(!photon.integrated.fallback_to_standalone);
    assert!(photon.integrated.registration.auto_register);
    assert_eq!(loaded.file, None);
}

#[test]
fn command_line_beats_environment_beats_file_beats_defaults() {
    let dir = TempDir::new().unwrap();
    let file = write(
        &dir,
        "c.toml",
        r#"
        [photon]
        component_id = "from-file"
        cluster_id = "file-cluster"
        [photon.logging]
        level = "warn"
        format = "json"
        "#,
    );

    let file_only = load::<NoSections>(&sources(Some(&file), &[], &[])).unwrap();
    assert_eq!(file_only.photon.logging.level, LogLevel::Warn);
    assert_eq!(file_only.photon.logging.format, LogFormat::Json);
    assert_eq!(file_only.photon.shutdown_timeout_sec, 30, "default kept");

    let env = [
        ("PHOTON_LOG_LEVEL", "error"),
        ("PHOTON_CLUSTER_ID", "env-cluster"),
    ];
    let with_env = load::<NoSections>(&sources(Some(&file), &env, &[])).unwrap();
    assert_eq!(with_env.photon.logging.level, LogLevel::Error);
    assert_eq!(with_env.photon.cluster_id.as_deref(), Some("env-cluster"));
    assert_eq!(
        with_env.photon.logging.format,
        LogFormat::Json,
        "file value kept where env is silent"
    );

    let with_cli = load::<NoSections>(&sources(
        Some(&file),
        &env,
        &[("photon.logging.level", "debug")],
    ))
    .unwrap();
    assert_eq!(with_cli.photon.logging.level, LogLevel::Debug);
    assert_eq!(with_cli.photon.cluster_id.as_deref(), Some("env-cluster"));
    assert_eq!(with_cli.photon.component_id, "from-file");
}

#[test]
fn print_config_shows_effective_values_and_hides_secrets() {
    let dir = TempDir::new().unwrap();
    let file = write(
        &dir,
        "c.toml",
        r#"
        [photon]
        component_id = "p1"
        [photon.logging]
        level = "warn"
        [standalone.auth]
        access_key = "AKIAEXAMPLE"
        secret_key = "very-secret"
        "#,
    );
    let loaded =
        load::<toml::Table>(&sources(Some(&file), &[("PHOTON_LOG_LEVEL", "error")], &[])).unwrap();
    let shown = loaded.to_redacted_toml();
    let parsed: toml::Table = toml::from_str(&shown).unwrap();
    assert_eq!(parsed["photon"]["logging"]["level"].as_str(), Some("error"));
    assert_eq!(
        parsed["photon"]["shutdown_timeout_sec"].as_integer(),
        Some(30)
    );
    assert_eq!(
        parsed["standalone"]["auth"]["access_key"].as_str(),
        Some("AKIAEXAMPLE")
    );
    assert_eq!(
        parsed["standalone"]["auth"]["secret_key"].as_str(),
        Some("<redacted>")
    );
    assert!(!shown.contains("very-secret"));
}

#[test]
fn an_explicit_file_that_is_missing_is_an_error() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = load::<NoSections>(&sources(Some(&missing), &[], &[])).unwrap_err();
    assert!(matches!(err, Error::FileNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.toml"));
}

#[test]
fn the_first_existing_candidate_file_is_used() {
    let dir = TempDir::new().unwrap();
    let second = write(&dir, "second.toml", "[photon]\ncomponent_id = \"second\"\n");
    let mut sources = sources(None, &[], &[]);
    sources.file_candidates = vec![dir.path().join("first-missing.toml"), second.clone()];
    let loaded = load::<NoSections>(&sources).unwrap();
    assert_eq!(loaded.photon.component_id, "second");
    assert_eq!(loaded.file, Some(second));
}

#[test]
fn a_typo_in_a_key_is_refused_with_its_name_and_file() {
    let dir = TempDir::new().unwrap();
    let file = write(
        &dir,
        "typo.toml",
        "[photon]\ncomponent_id = \"t\"\n[photon.logging]\nlevl = \"debug\"\n",
    );
    let err = load::<NoSections>(&sources(Some(&file), &[], &[])).unwrap_err();
    let message = err.to_string();
    let (origin, key, _, reason) = invalid(err);
    assert!(origin.contains("typo.toml"), "{message}");
    assert_eq!(key, "photon.logging.levl", "{message}");
    assert!(reason.contains("level"), "accepted keys listed: {message}");
}

#[test]
fn an_unknown_top_level_section_is_refused() {
    let dir = TempDir::new().unwrap();
    let file = write(
        &dir,
        "extra.toml",
        "[photon]\ncomponent_id = \"t\"\n[standalon.server]\nx = 1\n",
    );
    let err = load::<NoSections>(&sources(Some(&file), &[], &[])).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("standalon"), "{message}");
    assert!(message.contains("extra.toml"), "{message}");
}

#[test]
fn a_bad_value_names_file_key_value_and_what_is_accepted() {
    let dir = TempDir::new().unwrap();
    let file = write(
        &dir,
        "bad.toml",
        "[photon]\ncomponent_id = \"t\"\nmode = \"clustered\"\n",
    );
    let err = load::<NoSections>(&sources(Some(&file), &[], &[])).unwrap_err();
    let message = err.to_string();
    let (origin, key, value, reason) = invalid(err);
    assert_eq!(origin, format!("config file {}", file.display()));
    assert_eq!(key, "photon.mode");
    assert_eq!(value.as_deref(), Some("\"clustered\""));
    for accepted in ["standalone", "integrated", "hybrid"] {
        assert!(reason.contains(accepted), "{message}");
    }
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let err = load::<NoSections>(&sources(
        None,
        &[("PHOTON_COMPONENT_ID", "t"), ("PHOTON_LOG_LEVEL", "loud")],
        &[],
    ))
    .unwrap_err();
    let (origin, key, value, reason) = invalid(err);
    assert_eq!(origin, "environment variable PHOTON_LOG_LEVEL");
    assert_eq!(key, "photon.logging.level");
    assert_eq!(value.as_deref(), Some("\"loud\""));
    assert!(reason.contains("debug"), "{reason}");
}

#[test]
fn a_bad_type_is_refused() {
    let err = load::<NoSections>(&sources(
        None,
        &[("PHOTON_COMPONENT_ID", "t")],
        &[("photon.integrated.heartbeat_interval_sec", "often")],
    ))
    .unwrap_err();
    let (origin, key, value, _) = invalid(err);
    assert_eq!(origin, "command line");
    assert_eq!(key, "photon.integrated.heartbeat_interval_sec");
    assert_eq!(value.as_deref(), Some("\"often\""));
}

#[test]
fn component_id_is_required() {
    let err = load::<NoSections>(&sources(None, &[], &[])).unwrap_err();
    let (_, key, _, reason) = invalid(err);
    assert_eq!(key, "photon.component_id");
    assert!(reason.contains("PHOTON_COMPONENT_ID"), "{reason}");
}

#[test]
fn an_unknown_config_version_is_refused() {
    let dir = TempDir::new().unwrap();
    let file = write(
        &dir,
        "v.toml",
        "[photon]\ncomponent_id = \"t\"\nconfig_version = \"2.0\"\n",
    );
    let err = load::<NoSections>(&sources(Some(&file), &[], &[])).unwrap_err();
    let (origin, key, value, reason) = invalid(err);
    assert!(origin.contains("v.toml"));
    assert_eq!(key, "photon.config_version");
    assert_eq!(value.as_deref(), Some("\"2.0\""));
    assert!(reason.contains("1.0"), "{reason}");

    let ok = write(
        &dir,
        "v1.toml",
        "[photon]\ncomponent_id = \"t\"\nconfig_version = \"1.0\"\n",
    );
    load::<NoSections>(&sources(Some(&ok), &[], &[])).unwrap();
}

#[test]
fn broken_toml_is_refused_with_its_location() {
    let dir = TempDir::new().unwrap();
    let file = write(
        &dir,
        "broken.toml",
        "[photon]\ncomponent_id = \"t\nmode = 1\n",
    );
    let err = load::<NoSections>(&sources(Some(&file), &[], &[])).unwrap_err();
    assert!(matches!(err, Error::FileUnusable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("broken.toml"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn endpoints_must_be_urls() {
    let err = load::<NoSections>(&sources(
        None,
        &[
            ("PHOTON_COMPONENT_ID", "t"),
            ("PHOTON_CHAINFIRE_ENDPOINTS", "http://a:2379,b:2379"),
        ],
        &[],
    ))
    .unwrap_err();
    let message = err.to_string();
    let (origin, key, _, _) = invalid(err);
    assert_eq!(key, "photon.integrated.chainfire_endpoints[1]", "{message}");
    assert_eq!(origin, "environment variable PHOTON_CHAINFIRE_ENDPOINTS");
}

#[test]
fn comma_separated_endpoints_from_the_environment_become_a_list() {
    let loaded = load::<NoSections>(&sources(
        None,
        &[
            ("PHOTON_COMPONENT_ID", "t"),
            ("CHAINFIRE_ENDPOINTS", "http://a:2379, http://b:2379"),
        ],
        &[],
    ))
    .unwrap();
    assert_eq!(
        loaded.photon.integrated.chainfire_endpoints,
        vec!["http://a:2379", "http://b:2379"]
    );
}

#[test]
fn hybrid_mode_needs_an_endpoint_for_each_integrated_backend() {
    let err = load::<NoSections>(&sources(
        None,
        &[("PHOTON_COMPONENT_ID", "t"), ("PHOTON_MODE", "hybrid")],
        &[("photon.hybrid.metadata_backend", "integrated")],
    ))
    .unwrap_err();
    let (_, key, _, reason) = invalid(err);
    assert_eq!(key, "photon.hybrid.metadata_backend");
    assert!(reason.contains("chainfire"), "{reason}");
}

#[test]
fn a_malformed_override_key_is_refused() {
    let err = load::<NoSections>(&sources(
        None,
        &[("PHOTON_COMPONENT_ID", "t")],
        &[("photon..mode", "x")],
    ))
    .unwrap_err();
    assert!(matches!(err, Error::MalformedOverride { .. }), "{err:?}");
}
