//! Running flashdns as an operator does: reloads (timer and SIGHUP), broken zone files, the
//! REST API, /health, /metrics and the spec's example configuration.

mod common;

use std::path::Path;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const ZONE_V1: &str = "$ORIGIN reload.test.\n$TTL 60\n@ IN SOA ns1 admin 1 3600 1800 604800 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.10\n";

fn write_zone(dir: &Path, text: &str) {
    // Write then rename, as editors and deploy tools do, so a reload never reads half a file.
    let staging = dir.join("reload.test.zone.tmp");
    std::fs::write(&staging, text).unwrap();
    std::fs::rename(&staging, dir.join("reload.test.zone")).unwrap();
}

async fn a_record(server: &Flashdns, qname: &str) -> (ResponseCode, Vec<String>) {
    let answer = udp_query(
        server.dns_addr,
        &query_message(1, qname, RecordType::A, None),
    )
    .await;
    (answer.metadata.response_code, section(&answer.answers))
}

#[tokio::test]
async fn changed_zone_files_are_reloaded_and_broken_ones_keep_the_old_zone_serving() {
    let server = Flashdns::start(&["standalone.zones.reload_interval_sec=1"]).await;
    write_zone(&server.zone_dir, ZONE_V1);
    wait_for("the new zone to load", async || {
        a_record(&server, "www.reload.test.").await.0 == ResponseCode::NoError
    })
    .await;

    let v2 = ZONE_V1.replace("admin 1 ", "admin 2 ") + "new IN A 192.0.2.11\n";
    write_zone(&server.zone_dir, &v2);
    wait_for("the edit to show", async || {
        a_record(&server, "new.reload.test.").await.0 == ResponseCode::NoError
    })
    .await;

    // A syntax error on line 7: the previous zone stays in service, the file and line are
    // logged, and /health says what failed.
    let broken = v2.replace("admin 2 ", "admin 3 ") + "bad IN A 999.1.1.1\n";
    write_zone(&server.zone_dir, &broken);
    wait_for("the failed reload to show in /health", async || {
        server.get_json("/health").await.1["checks"]["last_reload"] != "ok"
    })
    .await;
    let (status, health) = server.get_json("/health").await;
    assert_eq!(status, 503);
    let reason = health["checks"]["last_reload"].as_str().unwrap().to_owned();
    assert!(reason.contains("reload.test.zone:7:"), "{reason}");
    assert!(server.log_text().contains("reload.test.zone:7:"));
    assert_eq!(
        a_record(&server, "new.reload.test.").await.0,
        ResponseCode::NoError
    );
    let (_, zones) = server.get_json("/api/v1/zones").await;
    let reload = zones
        .as_array()
        .unwrap()
        .iter()
        .find(|zone| zone["name"] == "reload.test.")
        .unwrap();
    assert_eq!(reload["serial"], 2);
    assert!(reload["error"].as_str().unwrap().contains(":7:"));

    // Fixed, but with the serial not increased: loaded, and the operator is told.
    let same_serial = v2.clone() + "later IN A 192.0.2.12\n";
    write_zone(&server.zone_dir, &same_serial);
    wait_for("the fixed file to load", async || {
        a_record(&server, "later.reload.test.").await.0 == ResponseCode::NoError
    })
    .await;
    assert!(server.log_text().contains("did not increase (2 -> 2)"));
    assert_eq!(server.get_json("/health").await.0, 200);
    assert!(
        server
            .metrics()
            .await
            .contains("\nphoton_flashdns_zone_reloads_total{result=\"failed\"}")
    );

    // A removed file: the zone is gone, its names are REFUSED.
    std::fs::remove_file(server.zone_dir.join("reload.test.zone")).unwrap();
    wait_for("the zone to be dropped", async || {
        a_record(&server, "www.reload.test.").await.0 == ResponseCode::Refused
    })
    .await;
}

#[tokio::test]
async fn sighup_reloads_at_once_when_the_timer_is_off() {
    let server = Flashdns::start(&["standalone.zones.auto_reload=false"]).await;
    write_zone(&server.zone_dir, ZONE_V1);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        a_record(&server, "www.reload.test.").await.0,
        ResponseCode::Refused
    );
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for("SIGHUP to load the zone", async || {
        a_record(&server, "www.reload.test.").await
            == (
                ResponseCode::NoError,
                vec!["www.reload.test. 60 A 192.0.2.10".to_owned()],
            )
    })
    .await;
    assert!(
        server
            .log_text()
            .contains("SIGHUP: reloading every zone file")
    );
}

#[tokio::test]
async fn the_rest_api_lists_zones_records_and_answers_lookups() {
    let server = Flashdns::start(&[]).await;
    let (status, zones) = server.get_json("/api/v1/zones").await;
    assert_eq!(status, 200);
    let example = &zones.as_array().unwrap()[0];
    assert_eq!(example["name"], "example.test.");
    assert_eq!(example["serial"], 2024010101);
    assert_eq!(example["records"], 45);

    let (status, records) = server.get_json("/api/v1/zones/example.test/records").await;
    assert_eq!(status, 200);
    let records = records["records"].as_array().unwrap();
    assert_eq!(records.len(), 45);
    assert_eq!(records[0]["type"], "SOA", "apex first: {records:?}");
    assert!(
        records
            .iter()
            .any(|record| record["name"] == "web.example.test."
                && record["type"] == "AAAA"
                && record["data"] == "2001:db8::80")
    );

    let (status, lookup) = server
        .get_json("/api/v1/lookup?name=x.wild.example.test&type=txt")
        .await;
    assert_eq!(status, 200);
    assert_eq!(lookup["rcode"], "NOERROR");
    assert_eq!(lookup["authoritative"], true);
    assert_eq!(lookup["answer"][0]["name"], "x.wild.example.test.");
    let (_, missing) = server
        .get_json("/api/v1/lookup?name=nope.example.test")
        .await;
    assert_eq!(missing["rcode"], "NXDOMAIN");
    assert_eq!(missing["authority"][0]["ttl"], 300);
    let (_, elsewhere) = server.get_json("/api/v1/lookup?name=example.org").await;
    assert_eq!(elsewhere["rcode"], "REFUSED");

    assert_eq!(
        server
            .get_json("/api/v1/zones/nothere.test/records")
            .await
            .0,
        404
    );
    let (status, bad) = server
        .get_json("/api/v1/lookup?name=web.example.test&type=BOGUS")
        .await;
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().contains("BOGUS"));
}

#[tokio::test]
async fn metrics_count_queries_by_type_rcode_and_transport() {
    let server = Flashdns::start(&[]).await;
    let mut udp = server.udp_client().await;
    let mut tcp = server.tcp_client().await;
    ask(&mut udp, "web.example.test.", RecordType::AAAA).await;
    ask(&mut udp, "nope.example.test.", RecordType::A).await;
    ask(&mut tcp, "web.example.test.", RecordType::A).await;
    let metrics = server.metrics().await;
    for line in [
        "\nphoton_flashdns_queries_total{qtype=\"AAAA\",rcode=\"NOERROR\",transport=\"udp\"} 1",
        "\nphoton_flashdns_queries_total{qtype=\"A\",rcode=\"NXDOMAIN\",transport=\"udp\"} 1",
        "\nphoton_flashdns_queries_total{qtype=\"A\",rcode=\"NOERROR\",transport=\"tcp\"} 1",
        "\nphoton_flashdns_query_duration_seconds_count{transport=\"udp\"} 2",
        "\nphoton_flashdns_zones 1",
        "\nphoton_flashdns_records 45",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    let (status, health) = server.get_json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["checks"]["zones"], "ok");
}

#[tokio::test]
async fn the_spec_example_configuration_runs() {
    // The spec's example, with only its paths and ports moved into this test's sandbox.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let dir = tempfile::TempDir::new().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::copy(
        example.join("zones/example.com.zone"),
        zones.join("example.com.zone"),
    )
    .unwrap();
    let config = std::fs::read_to_string(example.join("flashdns.toml"))
        .unwrap()
        .replace("/etc/flashdns/zones", &zones.display().to_string());
    let config_path = dir.path().join("flashdns.toml");
    std::fs::write(&config_path, config).unwrap();
    let server = Flashdns::start_with_config(dir, &config_path, &[]).await;

    let mut client = server.udp_client().await;
    let www = ask(&mut client, "www.example.com.", RecordType::A).await;
    assert_eq!(
        section(&www.answers),
        ["www.example.com. 3600 A 192.168.1.10"]
    );
    // internal.local's file does not exist: its names get SERVFAIL and /health says why.
    let internal = udp_query(
        server.dns_addr,
        &query_message(2, "host.internal.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(internal.metadata.response_code, ResponseCode::ServFail);
    let (status, health) = server.get_json("/health").await;
    assert_eq!(status, 503);
    assert!(
        health["checks"]["zones"]
            .as_str()
            .unwrap()
            .contains("internal.local.")
    );
    assert!(
        server
            .log_text()
            .contains("internal.local.zone: cannot read")
    );
}
