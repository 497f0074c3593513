//! TCP and UDP load balancing against real echo backends: distribution, half-close, retry on
//! a refused connection, source persistence, PROXY protocol, flows and their replies.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

#[tokio::test]
async fn tcp_connections_rotate_and_half_close_passes_through() {
    let mut backends = Vec::new();
    for name in ["t1", "t2", "t3"] {
        backends.push((name, tcp_backend(name).await.0, 100));
    }
    let (lb, port) = start_lb("tcp", "tcp", "", &backends).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut names = Vec::new();
    for _ in 0..6 {
        let (name, mut stream) = tcp_hello(addr).await;
        // Half-close: the backend sees end of input and still answers on the open half.
        stream.write_all(b"12345").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, format!("{name}:5"));
        names.push(name);
    }
    assert_eq!(
        count(&names).values().copied().collect::<Vec<_>>(),
        [2, 2, 2]
    );
    let metrics = lb.metrics().await;
    assert!(
        metrics.contains("photon_fiberlb_connections_total{lb=\"tcp\",backend=\"t1\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("photon_fiberlb_bytes_total{lb=\"tcp\",backend=\"t1\",direction=\"in\"} 10")
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_on_the_next_backend() {
    let alive = tcp_backend("alive").await.0;
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (lb, port) = start_lb(
        "retry",
        "tcp",
        "passive_failures = 0",
        &[("dead", dead, 100), ("alive", alive, 100)],
    )
    .await;
    for _ in 0..4 {
        assert_eq!(
            tcp_hello(format!("127.0.0.1:{port}").parse().unwrap())
                .await
                .0,
            "alive"
        );
    }
    assert!(
        lb.metrics()
            .await
            .contains("photon_fiberlb_connect_failures_total{lb=\"retry\",backend=\"dead\"} 2")
    );
}

#[tokio::test]
async fn source_persistence_keeps_a_client_on_one_backend() {
    let mut backends = Vec::new();
    for name in ["s1", "s2", "s3"] {
        backends.push((name, tcp_backend(name).await.0, 100));
    }
    let (_lb, port) = start_lb(
        "sticky",
        "tcp",
        "[standalone.loadbalancers.persistence]\ntype = \"source_ip\"\ntimeout_sec = 60",
        &backends,
    )
    .await;
    let mut names = Vec::new();
    for _ in 0..6 {
        names.push(
            tcp_hello(format!("127.0.0.1:{port}").parse().unwrap())
                .await
                .0,
        );
    }
    assert_eq!(count(&names).len(), 1, "{names:?}");
}

#[tokio::test]
async fn the_proxy_protocol_header_tells_the_backend_who_connected() {
    for (version, check) in [
        ("v1", b"PROXY TCP4 127.0.0.1 127.0.0.1 ".as_slice()),
        ("v2", b"\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c".as_slice()),
    ] {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = backend.local_addr().unwrap();
        let (_lb, port) = start_lb(
            "pp",
            "tcp",
            &format!("proxy_protocol = \"{version}\""),
            &[("b", backend_addr, 100)],
        )
        .await;
        let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        client.write_all(b"payload").await.unwrap();
        let (mut accepted, _) = backend.accept().await.unwrap();
        let mut received = vec![0u8; check.len()];
        accepted.read_exact(&mut received).await.unwrap();
        assert_eq!(received, check, "{version}");
    }
}

#[tokio::test]
async fn an_open_connection_survives_its_backend_being_removed() {
    let first = tcp_backend("first").await.0;
    let second = tcp_backend("second").await.0;
    let (lb, port) = start_lb("live", "tcp", "", &[("first", first, 100)]).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (name, mut open) = tcp_hello(addr).await;
    assert_eq!(name, "first");

    let (status, body) = lb
        .api(
            reqwest::Method::POST,
            "/api/v1/loadbalancers/live/backends",
            Some(serde_json::json!({ "name": "second", "address": "127.0.0.1", "port": second.port() })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = lb
        .api(
            reqwest::Method::DELETE,
            "/api/v1/loadbalancers/live/backends/first",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The old connection still talks to its backend; new ones go to the new backend.
    open.write_all(b"still here\n").await.unwrap();
    let mut echoed = vec![0u8; 11];
    open.read_exact(&mut echoed).await.unwrap();
    assert_eq!(echoed, b"still here\n");
    assert_eq!(tcp_hello(addr).await.0, "second");
}

/// Sends `message` from `client` to the load balancer on `port` and returns the reply.
async fn udp_ask(client: &UdpSocket, port: u16, message: &str) -> String {
    client
        .send_to(message.as_bytes(), ("127.0.0.1", port))
        .await
        .unwrap();
    let mut buffer = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(3), client.recv(&mut buffer))
        .await
        .expect("a reply")
        .unwrap();
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

#[tokio::test]
async fn udp_flows_stick_to_a_backend_and_get_their_replies() {
    let u1 = udp_backend("u1").await.0;
    let u2 = udp_backend("u2").await.0;
    let (lb, port) = start_lb(
        "udp",
        "udp",
        "[standalone.loadbalancers.limits]\nidle_timeout_sec = 1",
        &[("u1", u1, 100), ("u2", u2, 100)],
    )
    .await;
    let mut answered_by = Vec::new();
    for client_number in 0..2 {
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut backend = None;
        for datagram in 0..3 {
            let message = format!("c{client_number}-{datagram}");
            let reply = udp_ask(&client, port, &message).await;
            let (name, echoed) = reply.split_once(':').unwrap();
            assert_eq!(echoed, message);
            assert_eq!(
                *backend.get_or_insert(name.to_owned()),
                name,
                "a flow moved"
            );
        }
        answered_by.push(backend.unwrap());
    }
    answered_by.sort();
    assert_eq!(answered_by, ["u1", "u2"]);
    // Idle flows expire: the active count goes back to zero.
    wait_for("flows to expire", async || {
        lb.metrics()
            .await
            .contains("photon_fiberlb_active_connections{lb=\"udp\",backend=\"u1\"} 0")
    })
    .await;
}

#[tokio::test]
async fn a_udp_health_check_takes_a_silent_backend_out() {
    let (alive, _alive_task) = udp_backend("alive").await;
    let (doomed, doomed_task) = udp_backend("doomed").await;
    let check = "[standalone.loadbalancers.healthcheck]\ntype = \"udp\"\nsend = \"ping\"\nexpect = \":ping\"\ninterval_sec = 1\ntimeout_sec = 1\nfall = 1\nrise = 1";
    let backends = [("alive", alive, 100), ("doomed", doomed, 100)];
    let (lb, port) = start_lb("udp-hc", "udp", check, &backends).await;
    wait_for("both to pass a check", async || {
        lb.metrics()
            .await
            .contains("photon_fiberlb_health_checks_total{lb=\"udp-hc\",backend=\"doomed\",result=\"success\"}")
    })
    .await;
    doomed_task.abort();
    wait_for("the silent backend to be marked down", async || {
        lb.backend_state("udp-hc", "doomed").await == "down"
    })
    .await;
    assert_eq!(lb.backend_state("udp-hc", "alive").await, "up");
    // New flows all go to the one left.
    for client_number in 0..4 {
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let reply = udp_ask(&client, port, &format!("hello-{client_number}")).await;
        assert!(reply.starts_with("alive:"), "{reply}");
    }
}
