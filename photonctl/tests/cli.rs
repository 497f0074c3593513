//! The real photonctl binary against real admin servers started in this process.

use std::net::SocketAddr;

use axum::Router;
use photon_config::{NoSections, Sources};
use photon_runtime::{Component, Launch, ServerArgs, launch_with};

const COMPONENT: Component = Component {
    name: "testcomp",
    version: "1.2.3",
    default_admin_addr: "127.0.0.1:0",
};

/// Starts an admin server; `failing` adds a check that fails with that message.
async fn admin_server(id: &str, failing: Option<&'static str>) -> SocketAddr {
    let sources = Sources {
        component: COMPONENT.name.into(),
        explicit_file: None,
        file_candidates: Vec::new(),
        env: vec![("PHOTON_COMPONENT_ID".into(), id.into())],
        overrides: Vec::new(),
    };
    let Launch::Run(service) =
        launch_with::<NoSections>(&COMPONENT, &ServerArgs::default(), sources).await
    else {
        panic!("service did not start");
    };
    if let Some(message) = failing {
        service
            .health
            .add_check("storage", move || async move { Err(message.to_owned()) });
    }
    let addr = service.serve_admin(Router::new()).await.unwrap();
    // Keep the service (and its shutdown token) alive for the whole test.
    Box::leak(service);
    addr
}

fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Run {
    code: i32,
    stdout: String,
}

async fn photonctl(args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_photonctl"))
        .args(args)
        .output()
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
    }
}

#[tokio::test]
async fn check_connection_to_a_healthy_component() {
    let addr = admin_server("ok-1", None).await;
    let run = photonctl(&["check-connection", "--endpoint", &format!("http://{addr}")]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("reachable: yes (HTTP 200 in"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("status:    healthy"), "{}", run.stdout);
    assert!(
        run.stdout.contains("\"component_id\": \"ok-1\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("mode standalone (decided by default)"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn check_connection_to_an_unhealthy_component() {
    let addr = admin_server("sick-1", Some("disk full")).await;
    let run = photonctl(&["check-connection", "--endpoint", &format!("http://{addr}/")]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("HTTP 503"), "{}", run.stdout);
    assert!(run.stdout.contains("storage: disk full"), "{}", run.stdout);
}

#[tokio::test]
async fn check_connection_to_nothing() {
    let endpoint = format!("http://{}", closed_port());
    let run = photonctl(&[
        "check-connection",
        "--endpoint",
        &endpoint,
        "--timeout",
        "2",
    ])
    .await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stdout.contains("reachable: no"), "{}", run.stdout);
    assert!(run.stdout.contains("cannot connect"), "{}", run.stdout);

    let run = photonctl(&["check-connection", "--endpoint", "not a url"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("is not a URL"), "{}", run.stdout);
}

#[tokio::test]
async fn status_lists_every_endpoint_in_order() {
    let healthy = admin_server("row-ok", None).await;
    let sick = admin_server("row-sick", Some("no quorum")).await;
    let down = closed_port();
    let endpoints = [healthy, sick, down].map(|addr| format!("http://{addr}"));
    let mut args = vec!["status"];
    for endpoint in &endpoints {
        args.extend(["--endpoint", endpoint]);
    }

    let run = photonctl(&args).await;
    assert_eq!(run.code, 2, "worst is unreachable:\n{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("ENDPOINT"), "{}", run.stdout);
    assert!(
        lines[1].contains("row-ok") && lines[1].contains("healthy"),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].contains("row-sick") && lines[2].contains("no quorum"),
        "{}",
        run.stdout
    );
    assert!(
        lines[3].contains(&endpoints[2]) && lines[3].contains("unreachable"),
        "{}",
        run.stdout
    );

    args.extend(["--output", "json"]);
    let run = photonctl(&args).await;
    let parsed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(parsed[0]["health"]["component_id"], "row-ok");
    assert_eq!(parsed[0]["health"]["status"], "healthy");
    assert_eq!(parsed[1]["http_status"], 503);
    assert_eq!(parsed[2]["reachable"], false);
}

#[tokio::test]
async fn status_of_healthy_components_exits_zero() {
    let a = admin_server("a", None).await;
    let b = admin_server("b", None).await;
    let run = photonctl(&[
        "status",
        "--endpoint",
        &format!("http://{a}"),
        "--endpoint",
        &format!("http://{b}"),
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[tokio::test]
async fn completions_are_generated() {
    let run = photonctl(&["completions", "bash"]).await;
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("check-connection"), "{}", run.stdout);
}
