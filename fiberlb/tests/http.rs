//! The L7 proxy against real HTTP backends: forwarding headers, HTTP/2, methods' shares,
//! cookie persistence, health-check ejection and rejoin, draining, limits and bad requests,
//! HTTP/1 framing (pipelining, chunked both ways, 100 Continue) and backends that close idle
//! connections.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn backends(names: &[&str]) -> Vec<HttpBackend> {
    let mut started = Vec::new();
    for name in names {
        started.push(HttpBackend::start(name).await);
    }
    started
}

fn weighted<'a>(backends: &'a [HttpBackend], weights: &[u32]) -> Vec<(&'a str, SocketAddr, u32)> {
    backends
        .iter()
        .zip(weights)
        .map(|(b, w)| (b.name.as_str(), b.addr, *w))
        .collect()
}

#[tokio::test]
async fn requests_reach_backends_with_forwarding_headers_over_http1_and_h2c() {
    let pool = backends(&["web-1", "web-2"]).await;
    let (lb, port) = start_lb("web", "http", "", &weighted(&pool, &[100, 100])).await;
    let url = format!("http://127.0.0.1:{port}/some/path?q=1");

    let response = reqwest::Client::new()
        .get(&url)
        .header("connection", "x-private")
        .header("x-private", "must not pass")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: serde_json::Value = response.json().await.unwrap();
    let headers = &seen["headers"];
    assert_eq!(seen["path"], "/some/path");
    assert_eq!(headers["host"], format!("127.0.0.1:{port}"));
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], format!("127.0.0.1:{port}"));
    assert_eq!(
        headers["forwarded"],
        format!("for=127.0.0.1;proto=http;host=\"127.0.0.1:{port}\"")
    );
    assert!(headers.get("x-private").is_none(), "{headers}");

    // h2c with prior knowledge, and round robin across the two.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut names = Vec::new();
    for _ in 0..4 {
        let response = h2.get(&url).send().await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        let seen: serde_json::Value = response.json().await.unwrap();
        names.push(seen["backend"].as_str().unwrap().to_owned());
    }
    assert_eq!(count(&names).values().copied().collect::<Vec<_>>(), [2, 2]);

    let metrics = lb.metrics().await;
    assert!(
        metrics.contains(
            "photon_fiberlb_http_requests_total{lb=\"web\",backend=\"web-1\",code=\"2xx\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("photon_fiberlb_backend_up{lb=\"web\",backend=\"web-2\"} 1"));
}

#[tokio::test]
async fn each_method_shares_requests_as_documented() {
    let pool = backends(&["a", "b"]).await;
    let client = reqwest::Client::new();
    for (method, weights, expected) in [
        ("roundrobin", [300, 100], [20, 20]),
        ("weighted_roundrobin", [300, 100], [30, 10]),
    ] {
        let (_lb, port) = start_lb(
            "m",
            "http",
            &format!("method = \"{method}\""),
            &weighted(&pool, &weights),
        )
        .await;
        let mut names = Vec::new();
        for _ in 0..40 {
            names.push(who(&client, &format!("http://127.0.0.1:{port}/")).await.1);
        }
        let counts = count(&names);
        assert_eq!([counts["a"], counts["b"]], expected, "{method}");
    }

    // Two random choices, with nothing in flight, spreads requests over both.
    let (_lb, port) = start_lb(
        "m",
        "http",
        "method = \"random\"",
        &weighted(&pool, &[100, 100]),
    )
    .await;
    let mut names = Vec::new();
    for _ in 0..40 {
        names.push(who(&client, &format!("http://127.0.0.1:{port}/")).await.1);
    }
    let counts = count(&names);
    assert!(
        counts.len() == 2 && counts.values().all(|&n| n >= 5),
        "{counts:?}"
    );
    drop(_lb);

    // Source hashing and Maglev keep one client on one backend.
    for method in ["source", "maglev"] {
        let (_lb, port) = start_lb(
            "m",
            "http",
            &format!("method = \"{method}\""),
            &weighted(&pool, &[100, 100]),
        )
        .await;
        let mut names = Vec::new();
        for _ in 0..10 {
            names.push(who(&client, &format!("http://127.0.0.1:{port}/")).await.1);
        }
        assert_eq!(count(&names).len(), 1, "{method}: {names:?}");
    }
}

#[tokio::test]
async fn leastconn_sends_new_requests_away_from_a_busy_backend() {
    let pool = backends(&["a", "b"]).await;
    let (_lb, port) = start_lb(
        "lc",
        "http",
        "method = \"leastconn\"",
        &weighted(&pool, &[100, 100]),
    )
    .await;
    let client = reqwest::Client::new();
    let slow_url = format!("http://127.0.0.1:{port}/slow");
    let slow = tokio::spawn({
        let client = client.clone();
        async move { who(&client, &slow_url).await.1 }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // While one backend holds the slow request, every quick one goes to the other.
    let mut quick = Vec::new();
    for _ in 0..5 {
        quick.push(who(&client, &format!("http://127.0.0.1:{port}/")).await.1);
    }
    let busy = slow.await.unwrap();
    assert!(
        quick.iter().all(|name| *name != busy),
        "busy {busy}, quick {quick:?}"
    );
}

#[tokio::test]
async fn a_cookie_keeps_a_client_on_its_backend() {
    let pool = backends(&["a", "b", "c"]).await;
    let (_lb, port) = start_lb(
        "sticky",
        "http",
        "[standalone.loadbalancers.persistence]\ntype = \"cookie\"\ncookie_name = \"LB\"",
        &weighted(&pool, &[100, 100, 100]),
    )
    .await;
    let url = format!("http://127.0.0.1:{port}/");
    let first = reqwest::get(&url).await.unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body: serde_json::Value = first.json().await.unwrap();
    let pinned = body["backend"].as_str().unwrap().to_owned();
    assert_eq!(cookie, format!("LB={pinned}; Path=/; HttpOnly"));

    let client = reqwest::Client::new();
    for _ in 0..9 {
        let response = client
            .get(&url)
            .header("cookie", format!("other=1; LB={pinned}"))
            .send()
            .await
            .unwrap();
        // The cookie is only set when it changes.
        assert!(response.headers().get("set-cookie").is_none());
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["backend"], pinned.as_str());
    }
    // A cookie naming a backend that is gone is replaced.
    let response = client
        .get(&url)
        .header("cookie", "LB=nonexistent")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("LB=")
    );
}

#[tokio::test]
async fn health_checks_take_a_failing_backend_out_and_bring_it_back() {
    let pool = backends(&["good", "flaky"]).await;
    let extra = "[standalone.loadbalancers.healthcheck]\ntype = \"http\"\npath = \"/health\"\ninterval_sec = 1\ntimeout_sec = 1\nfall = 2\nrise = 2";
    let (lb, port) = start_lb("hc", "http", extra, &weighted(&pool, &[100, 100])).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");

    pool[1].set_health(500);
    let started = Instant::now();
    wait_for("flaky to be marked down", async || {
        lb.backend_state("hc", "flaky").await == "down"
    })
    .await;
    // Two failed checks at one-second intervals.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    for _ in 0..10 {
        assert_eq!(who(&client, &url).await.1, "good");
    }
    let (_, detail) = lb.get("/api/v1/loadbalancers/hc").await;
    let flaky = &detail["backend_status"][1];
    assert!(
        flaky["last_check_error"]
            .as_str()
            .unwrap()
            .contains("answered 500, expected 200"),
        "{flaky}"
    );
    assert!(lb.log_text().contains("backend flaky"));
    let (status, health) = lb.get("/health").await;
    assert_eq!(status, 200, "one backend is still up: {health}");

    pool[1].set_health(200);
    wait_for("flaky to rejoin", async || {
        lb.backend_state("hc", "flaky").await == "up"
    })
    .await;
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(who(&client, &url).await.1);
    }
    assert_eq!(count(&names).len(), 2, "{names:?}");

    // Both down: /health says which load balancer has nothing to send to, clients get 503.
    pool[0].set_health(500);
    pool[1].set_health(500);
    wait_for("both down", async || lb.get("/health").await.0 == 503).await;
    let (_, health) = lb.get("/health").await;
    assert!(
        health["checks"]["backends"]
            .as_str()
            .unwrap()
            .contains("hc"),
        "{health}"
    );
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.text().await.unwrap(),
        "fiberlb: no backend available\n"
    );
}

#[tokio::test]
async fn a_dead_backend_costs_idempotent_requests_nothing_and_others_a_502() {
    let pool = backends(&["alive"]).await;
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (lb, port) = start_lb(
        "retry",
        "http",
        "passive_failures = 0",
        &[("dead", dead, 100), ("alive", pool[0].addr, 100)],
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    // Round robin lands on the dead one every other time; GETs are retried on the next.
    for _ in 0..6 {
        assert_eq!(who(&client, &url).await, (200, "alive".to_owned()));
    }
    // A POST with a body is never sent twice: it gets 502 when its backend is unreachable.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            client
                .post(&url)
                .body("payload")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 502, 502]);
    let metrics = lb.metrics().await;
    assert!(
        metrics.contains("photon_fiberlb_connect_failures_total{lb=\"retry\",backend=\"dead\"}")
    );
}

#[tokio::test]
async fn passive_failures_eject_a_backend_for_a_while() {
    let pool = backends(&["alive"]).await;
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (lb, port) = start_lb(
        "passive",
        "http",
        "passive_failures = 2\npassive_eject_sec = 30",
        &[("dead", dead, 100), ("alive", pool[0].addr, 100)],
    )
    .await;
    let client = reqwest::Client::new();
    for _ in 0..6 {
        assert_eq!(
            who(&client, &format!("http://127.0.0.1:{port}/")).await.0,
            200
        );
    }
    assert_eq!(lb.backend_state("passive", "dead").await, "ejected");
    assert!(
        lb.log_text()
            .contains("ejected for 30s after 2 failures in a row")
    );
}

#[tokio::test]
async fn a_drained_backend_finishes_its_requests_and_gets_no_new_ones() {
    let pool = backends(&["a", "b"]).await;
    let (lb, port) = start_lb("drain", "http", "", &weighted(&pool, &[100, 100])).await;
    let client = reqwest::Client::new();
    // Find which backend a slow request lands on, and drain exactly that one mid-request.
    let slow_url = format!("http://127.0.0.1:{port}/slow");
    let slow = tokio::spawn({
        let client = client.clone();
        async move { who(&client, &slow_url).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, detail) = lb.get("/api/v1/loadbalancers/drain").await;
    let busy = detail["backend_status"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["active_connections"] == 1)
        .expect("one backend holds the slow request")["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, changed) = lb
        .api(
            reqwest::Method::PATCH,
            &format!("/api/v1/loadbalancers/drain/backends/{busy}"),
            Some(serde_json::json!({ "drain": true })),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["state"], "draining");
    for _ in 0..6 {
        assert_ne!(
            who(&client, &format!("http://127.0.0.1:{port}/")).await.1,
            busy
        );
    }
    assert_eq!(slow.await.unwrap(), (200, busy));
}

#[tokio::test]
async fn limits_and_malformed_requests_get_clear_answers() {
    let pool = backends(&["a"]).await;
    let extra = "[standalone.loadbalancers.limits]\nheader_timeout_sec = 1\nmax_header_bytes = 8192\nmax_body_bytes = 1000";
    let (_lb, port) = start_lb("limits", "http", extra, &weighted(&pool, &[100])).await;
    let addr = format!("127.0.0.1:{port}");
    let raw = async |request: Vec<u8>| {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(&request).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert!(raw(huge.into_bytes()).await.starts_with("HTTP/1.1 431"));
    assert!(
        raw(b"NOT HTTP AT ALL\r\n\r\n".to_vec())
            .await
            .starts_with("HTTP/1.1 400")
    );
    let too_long = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".to_vec();
    assert!(raw(too_long).await.starts_with("HTTP/1.1 413"));

    // A client that never finishes its request head is cut off after header_timeout_sec.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the slow client was not cut off");
    assert!(started.elapsed() < Duration::from_secs(4));
    // So is one that connects and never sends a byte.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the silent client was not cut off");
    assert!(started.elapsed() < Duration::from_secs(4));
    // The proxy still serves everyone else.
    assert_eq!(
        who(&reqwest::Client::new(), &format!("http://{addr}/"))
            .await
            .0,
        200
    );
}

/// A backend that switches protocols and then echoes, as a WebSocket server does after its
/// handshake.
async fn upgrade_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).await.is_ok() {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if !head.contains("upgrade: echo") || !head.contains("connection: upgrade") {
                    let _ = stream
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
                    .await;
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn upgrades_pass_through_both_ways() {
    let backend = upgrade_backend().await;
    let (_lb, port) = start_lb("ws", "http", "", &[("echo", backend, 100)]).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"));
    for message in ["first", "second"] {
        stream.write_all(message.as_bytes()).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, message.as_bytes());
    }
}

#[tokio::test]
async fn killing_a_backend_under_load_fails_few_requests_and_hangs_none() {
    let pool = backends(&["steady", "doomed"]).await;
    let extra = "[standalone.loadbalancers.healthcheck]\ntype = \"tcp\"\ninterval_sec = 1\ntimeout_sec = 1\nfall = 1\nrise = 1";
    let (_lb, port) = start_lb("load", "http", extra, &weighted(&pool, &[100, 100])).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let mut pool = pool;
    let doomed = pool.pop().unwrap();
    let load = tokio::spawn(async move {
        let mut failed = 0;
        let mut served = 0;
        let deadline = Instant::now() + Duration::from_secs(4);
        while Instant::now() < deadline {
            let batch = futures::future::join_all((0..8).map(|_| client.get(&url).send())).await;
            for result in batch {
                match result {
                    Ok(response) if response.status() == 200 => served += 1,
                    _ => failed += 1,
                }
            }
        }
        (served, failed)
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(doomed);
    let (served, failed) = tokio::time::timeout(Duration::from_secs(20), load)
        .await
        .expect("no request hangs")
        .unwrap();
    // GETs that meet the dead backend's closed port are retried on the other, so only the
    // requests in flight on the killed connections can fail.
    assert!(served > 100, "served {served}");
    assert!(failed <= 8, "failed {failed} of {}", served + failed);
}

/// Writes `request` on a fresh connection to `addr`; `then` (if any) goes once `wait_for` has
/// been read. Everything read until the proxy closes comes back.
async fn raw_exchange(addr: SocketAddr, request: &str, wait_for: &str, then: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    if !then.is_empty() {
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&answer).contains(wait_for) {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed before {wait_for:?}");
                answer.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "no {wait_for:?} in {:?}",
            String::from_utf8_lossy(&answer)
        );
        stream.write_all(then.as_bytes()).await.unwrap();
    }
    let closed =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the proxy kept the connection open");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn http1_framing_survives_the_proxy() {
    let pool = backends(&["a"]).await;
    let (_lb, port) = start_lb("framing", "http", "", &weighted(&pool, &[100])).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // Pipelined requests are answered in order on one connection.
    let answer = raw_exchange(
        addr,
        "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "",
        "",
    )
    .await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    let (one, two) = (answer.find("/one").unwrap(), answer.find("/two").unwrap());
    assert!(one < two, "{answer}");

    // A chunked upload arrives whole, extensions and trailers notwithstanding.
    let answer = raw_exchange(
        addr,
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
        "",
        "",
    )
    .await;
    assert!(answer.contains("\"body_bytes\":11"), "{answer}");

    // 100 Continue comes back before the body is sent.
    let answer = raw_exchange(
        addr,
        "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "hello",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"),
        "{answer}"
    );
    assert!(answer.contains("\"body_bytes\":5"), "{answer}");

    // A chunked answer stays chunked for HTTP/1.1 and is unwrapped for HTTP/1.0.
    let answer = raw_exchange(
        addr,
        "GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "",
        "",
    )
    .await;
    assert!(
        answer.contains("transfer-encoding: chunked\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("chunk-3\r\n0\r\n\r\n"), "{answer}");
    let answer = raw_exchange(addr, "GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n", "", "").await;
    assert!(
        !answer.to_ascii_lowercase().contains("transfer-encoding"),
        "{answer}"
    );
    assert!(
        answer.ends_with("\r\n\r\nchunk-1 chunk-2 chunk-3"),
        "{answer}"
    );

    // Framing that two parsers could read two ways never reaches a backend.
    let answer = raw_exchange(
        addr,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "",
        "",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

/// A backend that answers one request per connection and then closes its side (half-close,
/// as a server's keep-alive timeout does). Counts the connections accepted, and those the
/// proxy let go of afterwards (its end closed too).
async fn closing_backend() -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    let (accepted_counter, released_counter) = (accepted.clone(), released.clone());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            accepted_counter.fetch_add(1, Ordering::Relaxed);
            let released = released_counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(n @ 1..) => head.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = stream.shutdown().await;
                if let Ok(0) = stream.read(&mut buf).await {
                    released.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, accepted, released)
}

#[tokio::test]
async fn a_backend_closing_idle_connections_costs_no_request() {
    let (backend, accepted, _) = closing_backend().await;
    let (_lb, port) = start_lb("closing", "http", "", &[("closer", backend, 100)]).await;
    let url = format!("http://127.0.0.1:{port}/");
    let client = reqwest::Client::new();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::GET,
        reqwest::Method::POST,
    ] {
        let response = client.request(method.clone(), &url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{method}");
        assert_eq!(response.text().await.unwrap(), "ok");
        // Long enough for the backend to have closed the connection the proxy keeps.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn idle_connections_the_backend_closed_are_let_go_without_more_traffic() {
    let (backend, _, released) = closing_backend().await;
    let (_lb, port) = start_lb("sweep", "http", "", &[("closer", backend, 100)]).await;
    let response = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    // The pool is swept every 5 s; no request comes to make the proxy look at it.
    wait_for(
        "the proxy to let go of the connection its backend closed",
        async || released.load(Ordering::Relaxed) == 1,
    )
    .await;
}
