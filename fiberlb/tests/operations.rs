//! Running fiberlb as an operator does: the REST API and its token, writing the running
//! configuration back, SIGHUP reloads (good and broken), TLS with SNI and certificate reload,
//! and configuration refusals.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn the_api_creates_changes_and_deletes_load_balancers_behind_its_token() {
    let backend = HttpBackend::start("api-backend").await;
    let lb = Fiberlb::start("", "admin_token = \"s3cret\"").await;
    let port = free_port();
    let definition = serde_json::json!({
        "name": "made",
        "vip": "127.0.0.1",
        "port": port,
        "protocol": "http",
        "backends": [{ "name": "one", "address": "127.0.0.1", "port": backend.addr.port() }],
    });
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", lb.admin);

    // Without the token: refused, nothing changes.
    let refused = client
        .post(url("/api/v1/loadbalancers"))
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        lb.get("/api/v1/loadbalancers").await.1["loadbalancers"],
        serde_json::json!([])
    );

    let authed = |method: Method, path: &str| {
        client
            .request(method, url(path))
            .header("authorization", "Bearer s3cret")
    };
    let created = authed(Method::POST, "/api/v1/loadbalancers")
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        who(&client, &format!("http://127.0.0.1:{port}/")).await,
        (200, "api-backend".to_owned())
    );
    let again = authed(Method::POST, "/api/v1/loadbalancers")
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    // An invalid change names the key and leaves the running one alone.
    let mut broken = definition.clone();
    broken["backends"][0]["port"] = serde_json::json!(0);
    let answer = authed(Method::PUT, "/api/v1/loadbalancers/made")
        .json(&broken)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("backends[0].port"),
        "{error}"
    );
    assert_eq!(
        who(&client, &format!("http://127.0.0.1:{port}/")).await.0,
        200
    );

    let weight = authed(Method::PATCH, "/api/v1/loadbalancers/made/backends/one")
        .json(&serde_json::json!({ "weight": 7 }))
        .send()
        .await
        .unwrap();
    assert_eq!(weight.status(), 200);
    assert_eq!(
        weight.json::<serde_json::Value>().await.unwrap()["weight"],
        7
    );
    let missing = authed(Method::DELETE, "/api/v1/loadbalancers/made/backends/nope")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Written back to the file, the change survives a restart.
    let saved = authed(Method::POST, "/api/v1/config/save")
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    let text = std::fs::read_to_string(&lb.config).unwrap();
    assert!(
        text.contains("name = \"made\"") && text.contains("weight = 7"),
        "{text}"
    );
    let checked = Command::new(env!("CARGO_BIN_EXE_fiberlb"))
        .arg("--config")
        .arg(&lb.config)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");

    let deleted = authed(Method::DELETE, "/api/v1/loadbalancers/made")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sighup_applies_a_good_file_and_refuses_a_broken_one() {
    let a = HttpBackend::start("a").await;
    let b = HttpBackend::start("b").await;
    let port = free_port();
    let only_a = lb_toml("web", port, "http", "", &[("a", a.addr, 100)]);
    let lb = Fiberlb::start(&only_a, "").await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    // A keep-alive connection made before the reload keeps working after it.
    assert_eq!(who(&client, &url).await.1, "a");

    let only_b = lb_toml("web", port, "http", "", &[("b", b.addr, 100)]);
    lb.rewrite_config(&only_b, "");
    lb.signal("HUP");
    wait_for("the reload to route to b", async || {
        who(&client, &url).await.1 == "b"
    })
    .await;
    assert!(lb.log_text().contains("SIGHUP: configuration reloaded"));

    lb.rewrite_config(
        &only_b.replace("protocol = \"http\"", "protocol = \"htp\""),
        "",
    );
    lb.signal("HUP");
    wait_for("the refusal to be logged", async || {
        lb.log_text()
            .contains("refused, the running configuration stays")
    })
    .await;
    assert!(
        lb.log_text().contains("accepted: tcp, udp, http, https"),
        "{}",
        lb.log_text()
    );
    assert_eq!(who(&client, &url).await, (200, "b".to_owned()));
}

fn write_cert(dir: &Path, name: &str, host: &str) -> String {
    let certified = rcgen::generate_simple_self_signed(vec![host.to_owned()]).unwrap();
    let pem = certified.cert.pem();
    // Write then rename, so that a reload never reads half a file.
    for (suffix, text) in [
        ("crt", pem.clone()),
        ("key", certified.signing_key.serialize_pem()),
    ] {
        let staging = dir.join(format!("{name}.{suffix}.tmp"));
        std::fs::write(&staging, text).unwrap();
        std::fs::rename(&staging, dir.join(format!("{name}.{suffix}"))).unwrap();
    }
    pem
}

fn trusting(pem: &str, host: &str, lb: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .resolve(host, lb)
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_picks_the_certificate_by_sni_and_reloads_it_from_disk() {
    let backend = HttpBackend::start("secure").await;
    let certs = tempfile::TempDir::new().unwrap();
    let a_pem = write_cert(certs.path(), "a", "a.test");
    let b_pem = write_cert(certs.path(), "b", "b.test");
    let dir = certs.path().display();
    let tls = format!(
        "[standalone.loadbalancers.tls]\ncert_file = \"{dir}/a.crt\"\nkey_file = \"{dir}/a.key\"\n[[standalone.loadbalancers.tls.certificates]]\ncert_file = \"{dir}/b.crt\"\nkey_file = \"{dir}/b.key\""
    );
    let (lb, port) = start_lb("tls", "https", &tls, &[("secure", backend.addr, 100)]).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // Each client trusts only its own name's certificate, so success means SNI chose it.
    for (pem, host) in [(&a_pem, "a.test"), (&b_pem, "b.test")] {
        let response = trusting(pem, host, addr)
            .get(format!("https://{host}:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.version(),
            reqwest::Version::HTTP_2,
            "ALPN offers h2"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["headers"]["x-forwarded-proto"], "https");
    }
    assert!(
        trusting(&a_pem, "b.test", addr)
            .get(format!("https://b.test:{port}/"))
            .send()
            .await
            .is_err()
    );

    // A renewed certificate is picked up without a restart.
    let renewed = write_cert(certs.path(), "a", "a.test");
    wait_for("the renewed certificate", async || {
        trusting(&renewed, "a.test", addr)
            .get(format!("https://a.test:{port}/"))
            .send()
            .await
            .is_ok()
    })
    .await;
    assert!(lb.log_text().contains("certificates reloaded from disk"));

    // A broken renewal keeps the previous certificate serving.
    std::fs::write(certs.path().join("a.crt"), "not a certificate").unwrap();
    wait_for("the failed reload to be logged", async || {
        lb.log_text().contains("certificate reload failed")
    })
    .await;
    let still = trusting(&renewed, "a.test", addr)
        .get(format!("https://a.test:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
}

#[tokio::test]
async fn tcp_with_tls_termination_proxies_the_plain_bytes() {
    let (backend, _task) = tcp_backend("plain").await;
    let certs = tempfile::TempDir::new().unwrap();
    let pem = write_cert(certs.path(), "t", "tcp.test");
    let dir = certs.path().display();
    let extra = format!(
        "tls_termination = true\n[standalone.loadbalancers.tls]\ncert_file = \"{dir}/t.crt\"\nkey_file = \"{dir}/t.key\""
    );
    let (_lb, port) = start_lb("tls-tcp", "tcp", &extra, &[("plain", backend, 100)]).await;

    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    roots.add(der).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = connector
        .connect("tcp.test".try_into().unwrap(), tcp)
        .await
        .unwrap();
    use tokio::io::AsyncReadExt;
    let mut hello = [0u8; 6];
    tls.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello, b"plain\n");
}

fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("fiberlb.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_fiberlb"))
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout),
    )
}

#[test]
fn the_specs_example_is_read_and_its_iptables_dataplane_refused_by_name() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/fiberlb.toml"),
    )
    .unwrap();
    let (ok, output) = check_config(&example);
    assert!(!ok);
    assert!(output.contains("dataplane"), "{output}");
    assert!(output.contains("not supported by this build"), "{output}");

    // With the user-space dataplane the rest of the example is accepted as written.
    let userspace = example.replace("\"iptables\"", "\"userspace\"");
    let (ok, output) = check_config(&userspace);
    assert!(ok, "{output}");
}

#[test]
fn bad_definitions_are_refused_with_the_key_and_the_reason() {
    let base = "[photon]\ncomponent_id = \"x\"\n";
    for (snippet, expected) in [
        (
            "[[standalone.loadbalancers]]\nname = \"a\"\nvip = \"127.0.0.1\"\nport = 1\nprotocol = \"https\"",
            "standalone.loadbalancers[0].tls",
        ),
        (
            "[[standalone.loadbalancers]]\nname = \"a\"\nvip = \"127.0.0.1\"\nport = 1\nprotocol = \"tcp\"\nmethod = \"fastest\"",
            "accepted: roundrobin, weighted_roundrobin, leastconn, random, source, maglev",
        ),
        (
            "[[standalone.loadbalancers]]\nname = \"a\"\nvip = \"127.0.0.1\"\nport = 1\nprotocol = \"tcp\"\ntypo_key = 1",
            "typo_key",
        ),
    ] {
        let (ok, output) = check_config(&format!("{base}{snippet}\n"));
        assert!(!ok, "{snippet}");
        assert!(output.contains(expected), "{snippet}: {output}");
    }
}

#[tokio::test]
async fn a_port_already_taken_stops_start_up_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("fiberlb.toml");
    std::fs::write(
        &path,
        format!(
            "[photon]\ncomponent_id = \"x\"\n[standalone.server]\nadmin_api_addr = \"127.0.0.1:{}\"\n{}",
            free_port(),
            lb_toml("busy", port, "tcp", "", &[])
        ),
    )
    .unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_fiberlb"))
            .arg("--config")
            .arg(&path)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn the_shipped_config_loads_and_states_the_defaults() {
    use fiberlb::config::FiberlbSections;
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/fiberlb/config.toml");
    let sources = photon_config::Sources {
        component: "fiberlb".into(),
        explicit_file: Some(shipped),
        file_candidates: Vec::new(),
        env: Vec::new(),
        overrides: Vec::new(),
    };
    let loaded = photon_config::load::<FiberlbSections>(&sources).unwrap();
    // The file writes every default out; if a default changes, the file must follow.
    assert_eq!(
        toml::to_string(&loaded.sections).unwrap(),
        toml::to_string(&FiberlbSections::default()).unwrap()
    );
}

#[tokio::test]
async fn sigterm_stops_everything_promptly_and_cleanly() {
    let backend = HttpBackend::start("b").await;
    let check = "[standalone.loadbalancers.healthcheck]\ntype = \"http\"\ninterval_sec = 1\ntimeout_sec = 1";
    let (mut lb, port) = start_lb("web", "http", check, &[("b", backend.addr, 100)]).await;
    assert_eq!(
        who(
            &reqwest::Client::new(),
            &format!("http://127.0.0.1:{port}/")
        )
        .await
        .0,
        200
    );
    lb.signal("TERM");
    let status = lb
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("fiberlb exits on SIGTERM");
    assert!(status.success());
    assert!(
        lb.log_text().contains("fiberlb stopped cleanly"),
        "{}",
        lb.log_text()
    );
}
