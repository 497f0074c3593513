//! Mode detection: command line > environment > file > probe of the control plane > default.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use photon_config::{Mode, ModeSource, NoSections, ResolvedMode, Sources, load};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A real HTTP server whose `/health` answers `status`.
async fn control_plane(status: StatusCode) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/health", get(move || async move { status }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An address where nothing listens.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn resolve(
    file_text: Option<&str>,
    env: &[(&str, &str)],
    overrides: &[(&str, &str)],
) -> ResolvedMode {
    let dir = tempfile::TempDir::new().unwrap();
    let file = file_text.map(|text| {
        let path = dir.path().join("mode.toml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("PHOTON_COMPONENT_ID".into(), "mode-test".into()));
    let sources = Sources {
        component: "testcomp".into(),
        explicit_file: file,
        file_candidates: Vec::new(),
        env,
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    load::<NoSections>(&sources)
        .unwrap()
        .resolve_mode(PROBE_TIMEOUT)
        .await
}

#[tokio::test]
async fn the_file_decides_when_nothing_else_does() {
    let resolved = resolve(Some("[photon]\nmode = \"integrated\"\n"), &[], &[]).await;
    assert_eq!(resolved.mode, Mode::Integrated);
    assert_eq!(resolved.source, ModeSource::File);
    assert!(resolved.detail.contains("mode.toml"), "{}", resolved.detail);
}

#[tokio::test]
async fn the_environment_beats_the_file() {
    let resolved = resolve(
        Some("[photon]\nmode = \"integrated\"\n"),
        &[("PHOTON_MODE", "hybrid")],
        &[],
    )
    .await;
    assert_eq!(resolved.mode, Mode::Hybrid);
    assert_eq!(resolved.source, ModeSource::Env);
    assert!(
        resolved.detail.contains("PHOTON_MODE"),
        "{}",
        resolved.detail
    );
}

#[tokio::test]
async fn the_command_line_beats_the_environment() {
    let resolved = resolve(
        None,
        &[("PHOTON_MODE", "integrated")],
        &[("photon.mode", "standalone")],
    )
    .await;
    assert_eq!(resolved.mode, Mode::Standalone);
    assert_eq!(resolved.source, ModeSource::Cli);
}

#[tokio::test]
async fn a_configured_mode_is_not_overruled_by_the_probe() {
    let cp = control_plane(StatusCode::OK).await;
    let resolved = resolve(
        Some("[photon]\nmode = \"standalone\"\n"),
        &[("PHOTON_CONTROL_PLANE_ENDPOINT", &format!("http://{cp}"))],
        &[],
    )
    .await;
    assert_eq!(resolved.mode, Mode::Standalone);
    assert_eq!(resolved.source, ModeSource::File);
}

#[tokio::test]
async fn a_healthy_control_plane_means_integrated() {
    let cp = control_plane(StatusCode::OK).await;
    let resolved = resolve(
        None,
        &[("PHOTON_CONTROL_PLANE_ENDPOINT", &format!("http://{cp}"))],
        &[],
    )
    .await;
    assert_eq!(resolved.mode, Mode::Integrated);
    assert_eq!(resolved.source, ModeSource::Probe);
    assert!(resolved.detail.contains("200"), "{}", resolved.detail);
}

#[tokio::test]
async fn a_failing_control_plane_means_standalone() {
    let cp = control_plane(StatusCode::INTERNAL_SERVER_ERROR).await;
    let resolved = resolve(
        None,
        &[("PHOTON_CONTROL_PLANE_ENDPOINT", &format!("http://{cp}/"))],
        &[],
    )
    .await;
    assert_eq!(resolved.mode, Mode::Standalone);
    assert_eq!(resolved.source, ModeSource::Default);
    assert!(resolved.detail.contains("500"), "{}", resolved.detail);
}

#[tokio::test]
async fn an_unreachable_control_plane_means_standalone() {
    let endpoint = format!("http://{}", closed_port());
    let resolved = resolve(None, &[("PHOTON_CONTROL_PLANE_ENDPOINT", &endpoint)], &[]).await;
    assert_eq!(resolved.mode, Mode::Standalone);
    assert_eq!(resolved.source, ModeSource::Default);
    assert!(resolved.detail.contains(&endpoint), "{}", resolved.detail);
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_probed() {
    let resolved = resolve(None, &[], &[]).await;
    assert_eq!(resolved.mode, Mode::Standalone);
    assert_eq!(resolved.source, ModeSource::Default);
    assert!(resolved.detail.contains("no control plane endpoint"));
}
