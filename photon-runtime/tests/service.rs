//! A service launched in-process on ephemeral ports, examined over real HTTP.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use photon_config::{NoSections, Sources};
use photon_runtime::{Component, Launch, ServerArgs, Service, launch_with};
use prometheus_client::metrics::counter::Counter;

const COMPONENT: Component = Component {
    name: "testcomp",
    version: "9.9.9",
    default_admin_addr: "127.0.0.1:0",
};

fn sources(file: Option<std::path::PathBuf>, env: &[(&str, &str)]) -> Sources {
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("PHOTON_COMPONENT_ID".into(), "test-01".into()));
    Sources {
        component: COMPONENT.name.into(),
        explicit_file: file,
        file_candidates: Vec::new(),
        env,
        overrides: Vec::new(),
    }
}

async fn start(args: &ServerArgs, sources: Sources) -> Service<NoSections> {
    match launch_with::<NoSections>(&COMPONENT, args, sources).await {
        Launch::Run(service) => *service,
        Launch::Exit(code) => panic!("launch exited with {code:?}"),
    }
}

async fn get_health(addr: SocketAddr) -> (StatusCode, serde_json::Value) {
    let response = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn health_reports_a_mode_set_by_the_environment() {
    let service = start(
        &ServerArgs::default(),
        sources(None, &[("PHOTON_MODE", "integrated")]),
    )
    .await;
    let addr = service.serve_admin(Router::new()).await.unwrap();
    let (status, body) = get_health(addr).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["mode"], "integrated");
    assert_eq!(body["mode_source"], "env");
    assert_eq!(body["component"], "testcomp");
    assert_eq!(body["component_id"], "test-01");
    assert_eq!(body["version"], "9.9.9");
    assert_eq!(body["checks"]["shutdown"], "ok");
}

#[tokio::test]
async fn health_reports_a_mode_set_by_the_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[photon]\nmode = \"hybrid\"\n").unwrap();
    let service = start(&ServerArgs::default(), sources(Some(path), &[])).await;
    let addr = service.serve_admin(Router::new()).await.unwrap();
    let (_, body) = get_health(addr).await;
    assert_eq!(body["mode"], "hybrid");
    assert_eq!(body["mode_source"], "file");
}

#[tokio::test]
async fn health_reports_a_mode_found_by_probing_the_control_plane() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cp = listener.local_addr().unwrap();
    let app = Router::new().route("/health", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let endpoint = format!("http://{cp}");
    let service = start(
        &ServerArgs::default(),
        sources(None, &[("PHOTON_CONTROL_PLANE_ENDPOINT", &endpoint)]),
    )
    .await;
    let addr = service.serve_admin(Router::new()).await.unwrap();
    let (_, body) = get_health(addr).await;
    assert_eq!(body["mode"], "integrated");
    assert_eq!(body["mode_source"], "probe");
}

#[tokio::test]
async fn health_reports_the_default_mode_and_the_command_line_mode() {
    let service = start(&ServerArgs::default(), sources(None, &[])).await;
    let addr = service.serve_admin(Router::new()).await.unwrap();
    let (_, body) = get_health(addr).await;
    assert_eq!(body["mode"], "standalone");
    assert_eq!(body["mode_source"], "default");

    let args = ServerArgs {
        mode: Some(photon_config::Mode::Integrated),
        ..ServerArgs::default()
    };
    let mut from_flags = sources(None, &[("PHOTON_MODE", "standalone")]);
    from_flags.overrides = args.overrides().unwrap();
    let service = start(&args, from_flags).await;
    let addr = service.serve_admin(Router::new()).await.unwrap();
    let (_, body) = get_health(addr).await;
    assert_eq!(body["mode"], "integrated");
    assert_eq!(body["mode_source"], "cli");
}

#[tokio::test]
async fn a_failing_check_makes_health_503_with_its_message() {
    let service = start(&ServerArgs::default(), sources(None, &[])).await;
    service
        .health
        .add_check("storage", || async { Err("disk /data is full".to_owned()) });
    service.health.add_check("metadata", || async { Ok(()) });
    let addr = service.serve_admin(Router::new()).await.unwrap();
    let (status, body) = get_health(addr).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["checks"]["storage"], "disk /data is full");
    assert_eq!(body["checks"]["metadata"], "ok");
}

#[tokio::test]
async fn metrics_expose_process_build_and_component_metrics() {
    let service = start(&ServerArgs::default(), sources(None, &[])).await;
    let requests = Counter::<u64>::default();
    service.register_metrics(|registry| {
        registry.register("requests", "Requests served", requests.clone());
    });
    requests.inc_by(3);
    let addr = service.serve_admin(Router::new()).await.unwrap();
    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("photon_testcomp_requests_total 3"), "{body}");
    assert!(
        body.contains(
            r#"photon_build_info{component="testcomp",version="9.9.9",mode="standalone"} 1"#
        ),
        "{body}"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
}

#[tokio::test]
async fn disabled_metrics_answer_404_and_health_stays() {
    let mut sources = sources(None, &[]);
    sources.overrides = vec![("photon.metrics.enabled".into(), "false".into())];
    let service = start(&ServerArgs::default(), sources).await;
    let addr = service.serve_admin(Router::new()).await.unwrap();
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(get_health(addr).await.0, StatusCode::OK);
}

#[tokio::test]
async fn component_routes_are_served_beside_health() {
    let service = start(&ServerArgs::default(), sources(None, &[])).await;
    let extra = Router::new().route("/api/v1/zones", get(|| async { "[]" }));
    let addr = service.serve_admin(extra).await.unwrap();
    let body = reqwest::get(format!("http://{addr}/api/v1/zones"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "[]");
}

#[tokio::test]
async fn shutdown_drains_work_and_stops_the_admin_server() {
    let service = start(&ServerArgs::default(), sources(None, &[])).await;
    let addr = service.serve_admin(Router::new()).await.unwrap();
    let token = service.shutdown.token();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    service.shutdown.tracker().spawn(async move {
        token.cancelled().await;
        // In-flight work finishing after the request to stop.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = done_tx.send(());
    });

    let shutdown = service.shutdown.clone();
    let running = tokio::spawn(service.run_until_shutdown());
    shutdown.trigger();
    let code = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(done_rx.await.is_ok(), "tracked work finished before exit");
    assert!(
        reqwest::get(format!("http://{addr}/health")).await.is_err(),
        "admin server no longer accepts"
    );
}

#[tokio::test]
async fn check_and_print_config_exit_without_starting() {
    for args in [
        ServerArgs {
            check_config: true,
            ..ServerArgs::default()
        },
        ServerArgs {
            print_config: true,
            ..ServerArgs::default()
        },
    ] {
        match launch_with::<NoSections>(&COMPONENT, &args, sources(None, &[])).await {
            Launch::Exit(code) => assert_eq!(code, ExitCode::SUCCESS),
            Launch::Run(_) => panic!("should not run"),
        }
    }
    let refused = sources(None, &[("PHOTON_MODE", "sideways")]);
    match launch_with::<NoSections>(&COMPONENT, &ServerArgs::default(), refused).await {
        Launch::Exit(code) => assert_eq!(code, ExitCode::FAILURE),
        Launch::Run(_) => panic!("a bad mode must be refused"),
    }
}
