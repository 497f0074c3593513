//! The shipped config file and the spec's example.

use std::path::Path;

use nightlight::config::NightlightSections;

fn load(path: &Path) -> NightlightSections {
    let sources = photon_config::Sources {
        component: "nightlight".into(),
        explicit_file: Some(path.to_owned()),
        file_candidates: Vec::new(),
        env: Vec::new(),
        overrides: Vec::new(),
    };
    photon_config::load::<NightlightSections>(&sources)
        .unwrap()
        .sections
}

#[test]
fn the_shipped_config_loads_and_states_the_defaults() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nightlight/config.toml");
    // The file writes every default out; if a default changes, the file must follow.
    assert_eq!(
        toml::to_string(&load(&shipped)).unwrap(),
        toml::to_string(&NightlightSections::default()).unwrap()
    );
}

#[test]
fn the_specs_example_loads_unchanged() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/nightlight.toml");
    let sections = load(&example);
    assert_eq!(sections.standalone.storage.retention_days, 30);
    assert_eq!(
        sections.standalone.scrape_targets[0].static_configs,
        ["localhost:9090"]
    );
}

#[test]
fn a_bad_config_is_refused_with_the_key_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    for (config, key, reason) in [
        (
            "[standalone.collection]\nscrape_interval_sec = 5\nscrape_timeout_sec = 10",
            "standalone.collection.scrape_timeout_sec",
            "must be between 1 and the scrape interval (5 s)",
        ),
        (
            "[[standalone.scrape_targets]]\nname = \"a\"\nstatic_configs = [\"http://host:1/metrics\"]",
            "standalone.scrape_targets[0].static_configs[0]",
            "is not HOST:PORT",
        ),
        (
            "[standalone.storage]\ntype = \"chainfire\"",
            "standalone.storage.type",
            "accepted: \"local\"",
        ),
    ] {
        std::fs::write(&path, format!("[photon]\ncomponent_id = \"x\"\n{config}\n")).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_nightlight"))
            .arg("--config")
            .arg(&path)
            .arg("--check-config")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{config}");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            said.contains(key) && said.contains(reason),
            "{config}: {said}"
        );
    }
}
