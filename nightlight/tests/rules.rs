//! Rules against the real binary: recording rules store series, alerts go pending → firing →
//! resolved with ALERTS/ALERTS_FOR_STATE written as Prometheus writes them, a webhook receiver
//! gets exactly the firing and resolved notifications (also when it comes up late), alert state
//! survives a restart, and a bad rule file is refused while the old rules keep running.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Exporter, Nightlight, Receiver, free_port, scrape_job};
use serde_json::Value;

const RULES: &str = r#"
groups:
  - name: load
    interval: 1s
    rules:
      - record: job:load:sum
        expr: sum by (job) (load)
        labels:
          source: rule
      - alert: HighLoad
        expr: load > 3
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.host }} has load {{ $value }}"
          description: 'load is {{ printf "%.1f" $value }}'
"#;

fn exposition(a: f64, b: f64) -> String {
    format!("# TYPE load gauge\nload{{host=\"a\"}} {a}\nload{{host=\"b\"}} {b}\n")
}

/// A scrape job for `exporter`, and `[standalone.rules]` and `[standalone.alerting]` with fast
/// timings, notifying `webhook`.
fn config(rules: &Path, exporter: &Exporter, webhook: &str) -> String {
    format!(
        r#"{}
[standalone.rules]
rule_files = ["{}"]
evaluation_interval_sec = 1
for_grace_period_sec = 1

[standalone.alerting]
enabled = true
local_webhook = "{webhook}"
group_wait_sec = 1
group_interval_sec = 1
"#,
        scrape_job("node", &[exporter], ""),
        rules.display()
    )
}

/// Polls `check` until it gives a value; fails with `what` and the log after 20 s.
async fn eventually<T>(
    nightlight: &Nightlight,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened\n{}",
            nightlight.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn alert_names(nightlight_alerts: &Value) -> Vec<String> {
    nightlight_alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| {
            format!(
                "{}/{}:{}",
                alert["labels"]["alertname"].as_str().unwrap(),
                alert["labels"]["host"].as_str().unwrap_or(""),
                alert["state"].as_str().unwrap()
            )
        })
        .collect()
}

async fn wait_for_alerts(nightlight: &Nightlight, expected: &[&str]) -> Value {
    let what = format!("alerts becoming {expected:?}");
    eventually(nightlight, &what, async || {
        let (status, body) = nightlight.get("/api/v1/alerts").await;
        assert_eq!(status, 200);
        (alert_names(&body) == expected).then_some(body)
    })
    .await
}

#[tokio::test]
async fn rules_record_series_and_alerts_go_pending_firing_resolved_with_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let exporter = Exporter::start(&exposition(5.0, 1.0)).await;
    let receiver = Receiver::start().await;
    let nightlight = Nightlight::start(
        &dir.path().join("data"),
        "",
        &config(&rules, &exporter, &receiver.url),
    )
    .await;

    // The recording rule's series, with its name and labels.
    nightlight
        .wait_for(r#"job:load:sum{job="node",source="rule"}"#, |v| v == 6.0)
        .await;

    // Pending first (for: 2s), then firing.
    let pending = wait_for_alerts(&nightlight, &["HighLoad/a:pending"]).await;
    let alert = &pending["data"]["alerts"][0];
    assert_eq!(alert["annotations"]["summary"], "a has load 5");
    assert_eq!(alert["annotations"]["description"], "load is 5.0");
    assert_eq!(alert["value"], "5e+00");
    assert_eq!(alert["labels"]["severity"], "page");
    let firing = wait_for_alerts(&nightlight, &["HighLoad/a:firing"]).await;
    assert_eq!(
        firing["data"]["alerts"][0]["activeAt"], alert["activeAt"],
        "firing keeps the time it became active"
    );

    let notified = receiver.wait_for(1, || nightlight.log_text()).await;
    let first = &notified[0];
    assert_eq!(first["version"], "4");
    assert_eq!(first["status"], "firing");
    assert_eq!(first["receiver"], "local_webhook");
    assert_eq!(first["groupKey"], "{}:{alertname=\"HighLoad\"}");
    assert_eq!(first["groupLabels"]["alertname"], "HighLoad");
    let sent = &first["alerts"][0];
    assert_eq!(sent["status"], "firing");
    assert_eq!(sent["labels"]["host"], "a");
    assert_eq!(sent["labels"]["job"], "node");
    assert_eq!(sent["annotations"]["summary"], "a has load 5");
    assert_eq!(sent["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(sent["startsAt"], alert["activeAt"]);
    assert!(
        sent["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/graph?g0.expr=load+%3E+3"),
        "{sent}"
    );

    // ALERTS and ALERTS_FOR_STATE as Prometheus writes them.
    let active_at = nightlight
        .value(r#"ALERTS_FOR_STATE{alertname="HighLoad",host="a",severity="page"}"#)
        .await
        .expect("ALERTS_FOR_STATE");
    let started = time::OffsetDateTime::parse(
        alert["activeAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(active_at, started.unix_timestamp() as f64);
    assert_eq!(
        nightlight
            .value(r#"ALERTS{alertname="HighLoad",alertstate="firing",host="a"}"#)
            .await,
        Some(1.0)
    );
    let (_, history) = nightlight
        .get(&format!(
            "/api/v1/query_range?query=ALERTS&start={}&end={}&step=0.5",
            started.unix_timestamp() - 1,
            started.unix_timestamp() + 10
        ))
        .await;
    let states: Vec<&str> = history["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| series["metric"]["alertstate"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["firing", "pending"], "{history}");

    // A reload that changes the alert's expression keeps its state (name and labels are the
    // same, as Prometheus matches rules): still firing since the same instant, nothing sent.
    std::fs::write(&rules, RULES.replace("load > 3", "load > 2")).unwrap();
    nightlight.hangup();
    eventually(&nightlight, "the reload", async || {
        let (_, body) = nightlight.get("/api/v1/rules?type=alert").await;
        (body["data"]["groups"][0]["rules"][0]["query"] == "load > 2").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = wait_for_alerts(&nightlight, &["HighLoad/a:firing"]).await;
    assert_eq!(still["data"]["alerts"][0]["activeAt"], alert["activeAt"]);

    // The load drops: resolved, sent once with its end time, and gone from the API.
    exporter.set(&exposition(1.0, 1.0));
    wait_for_alerts(&nightlight, &[]).await;
    let notified = receiver.wait_for(2, || nightlight.log_text()).await;
    let resolved = &notified[1];
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // Stale markers end the ALERTS series at once (not five minutes later).
    nightlight
        .wait_for(r#"count(ALERTS) or vector(0)"#, |v| v == 0.0)
        .await;

    // Nothing more: one firing and one resolved notification.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 2, "{:#?}", receiver.received());

    // /api/v1/rules reports both rules with their health.
    let (status, body) = nightlight.get("/api/v1/rules").await;
    assert_eq!(status, 200);
    let group = &body["data"]["groups"][0];
    assert_eq!(group["name"], "load");
    assert_eq!(group["interval"], 1.0);
    assert_eq!(group["file"], rules.display().to_string());
    let recording = &group["rules"][0];
    assert_eq!(recording["type"], "recording");
    assert_eq!(recording["name"], "job:load:sum");
    assert_eq!(recording["health"], "ok");
    let alerting_rule = &group["rules"][1];
    assert_eq!(alerting_rule["type"], "alerting");
    assert_eq!(alerting_rule["state"], "inactive");
    assert_eq!(alerting_rule["duration"], 2.0);
    assert_eq!(alerting_rule["query"], "load > 2");
    let (_, only_alerts) = nightlight.get("/api/v1/rules?type=alert").await;
    assert_eq!(
        only_alerts["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, bad) = nightlight.get("/api/v1/rules?type=nonsense").await;
    assert_eq!(status, 400);
    assert_eq!(bad["errorType"], "bad_data");
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_notification_when_it_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let exporter = Exporter::start(&exposition(9.0, 1.0)).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/alerts");
    let nightlight = Nightlight::start(
        &dir.path().join("data"),
        "",
        &config(&rules, &exporter, &url),
    )
    .await;
    wait_for_alerts(&nightlight, &["HighLoad/a:firing"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        nightlight
            .log_text()
            .contains("sending alerts to local_webhook"),
        "{}",
        nightlight.log_text()
    );
    // Evaluation went on meanwhile.
    exporter.set(&exposition(9.0, 2.0));
    nightlight
        .wait_for(r#"job:load:sum{job="node"}"#, |v| v == 11.0)
        .await;
    let receiver = Receiver::start_on(port).await;
    let notified = receiver.wait_for(1, || nightlight.log_text()).await;
    assert_eq!(notified[0]["status"], "firing");
    assert_eq!(notified[0]["alerts"][0]["labels"]["host"], "a");
}

#[tokio::test]
async fn alert_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES.replace("for: 2s", "for: 4s")).unwrap();
    let exporter = Exporter::start(&exposition(5.0, 1.0)).await;
    let receiver = Receiver::start().await;
    let config = config(&rules, &exporter, &receiver.url);
    let data = dir.path().join("data");
    let nightlight = Nightlight::start(&data, "", &config).await;
    let firing = wait_for_alerts(&nightlight, &["HighLoad/a:firing"]).await;
    let active_at = firing["data"]["alerts"][0]["activeAt"].clone();
    nightlight.kill_hard();

    let nightlight = Nightlight::start(&data, "", &config).await;
    // Without the restore it would be pending for another 4 s, with a new activeAt.
    let restored = wait_for_alerts(&nightlight, &["HighLoad/a:firing"]).await;
    assert_eq!(restored["data"]["alerts"][0]["activeAt"], active_at);
    assert!(
        nightlight
            .log_text()
            .contains("restored the state of 1 alerts"),
        "{}",
        nightlight.log_text()
    );
    let (_, history) = nightlight.get("/api/v1/alerts").await;
    assert_eq!(alert_names(&history), ["HighLoad/a:firing"]);

    // Without standalone.server.enable_lifecycle, /-/reload is refused as Prometheus refuses it.
    let response = reqwest::Client::new()
        .post(format!("{}/-/reload", nightlight.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_bad_rule_file_is_refused_and_the_running_rules_stay() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let exporter = Exporter::start(&exposition(1.0, 1.0)).await;
    let receiver = Receiver::start().await;
    let nightlight = Nightlight::start_with_server(
        &dir.path().join("data"),
        "enable_lifecycle = true",
        "",
        &config(&rules, &exporter, &receiver.url),
    )
    .await;
    nightlight
        .wait_for(r#"job:load:sum{job="node"}"#, |v| v == 2.0)
        .await;

    // A syntax error in the expression: refused with file, line and reason.
    std::fs::write(
        &rules,
        RULES.replace("sum by (job) (load)", "sum by (job) (load"),
    )
    .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/-/reload", nightlight.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(&format!(
            "{}:7:15: group \"load\", rule 1: could not parse expression",
            rules.display()
        )),
        "{text}"
    );
    assert!(
        nightlight
            .log_text()
            .contains("rule file refused, the running rules stay")
    );
    // The old rules still run.
    exporter.set(&exposition(2.0, 1.0));
    nightlight
        .wait_for(r#"job:load:sum{job="node"}"#, |v| v == 3.0)
        .await;

    // A good file on SIGHUP replaces them.
    std::fs::write(
        &rules,
        RULES.replace("record: job:load:sum", "record: job:load:total"),
    )
    .unwrap();
    nightlight.hangup();
    nightlight
        .wait_for(r#"job:load:total{job="node"}"#, |v| v == 3.0)
        .await;
    let (_, body) = nightlight.get("/api/v1/rules").await;
    assert_eq!(
        body["data"]["groups"][0]["rules"][0]["name"],
        "job:load:total"
    );

    // At startup, the same error stops nightlight (and --check-config says it).
    std::fs::write(
        &rules,
        "groups:\n  - name: x\n    rules:\n      - alert: A\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nightlight"))
        .arg("--config")
        .arg(dir.path().join("data.toml"))
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("standalone.rules.rule_files")
            && said
                .contains("rules.yml:4:9: group \"x\", rule 1: field 'expr' must be set in rule"),
        "{said}"
    );
}

#[tokio::test]
async fn a_failing_rule_keeps_its_series_and_a_refusing_receiver_does_not_block_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        r#"
groups:
  - name: limited
    interval: 1s
    limit: 1
    rules:
      - record: host:load:copy
        expr: load
      - alert: AnyLoad
        expr: load > 0
"#,
    )
    .unwrap();
    let exporter = Exporter::start("# TYPE load gauge\nload{host=\"a\"} 5\n").await;
    let receiver = Receiver::start().await;
    receiver.set_status(400);
    let nightlight = Nightlight::start(
        &dir.path().join("data"),
        "",
        &config(&rules, &exporter, &receiver.url),
    )
    .await;
    nightlight
        .wait_for(r#"host:load:copy{host="a"}"#, |v| v == 5.0)
        .await;

    // The receiver refuses the notification: dropped with a log line, not retried forever.
    receiver.wait_for(1, || nightlight.log_text()).await;
    eventually(&nightlight, "the refusal logged", async || {
        let log = nightlight.log_text();
        log.contains("refused 1 notifications, which are dropped")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "a refused request is not sent again"
    );

    // A second host puts the rules over the group's limit: they fail, and what they wrote
    // before stays (a stale marker would make it vanish at once).
    exporter.set("# TYPE load gauge\nload{host=\"a\"} 5\nload{host=\"b\"} 6\n");
    let rule = eventually(&nightlight, "the rule failing", async || {
        let (_, body) = nightlight.get("/api/v1/rules").await;
        let rule = body["data"]["groups"][0]["rules"][0].clone();
        (rule["health"] == "err").then_some(rule)
    })
    .await;
    assert_eq!(rule["lastError"], "exceeded limit of 1 with 2 series");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        nightlight.value(r#"host:load:copy{host="a"}"#).await,
        Some(5.0)
    );
    // Over its limit, the alerting rule shows no alerts, as in Prometheus.
    wait_for_alerts(&nightlight, &[]).await;
}
