//! `photonctl metrics`: nightlight's Prometheus HTTP API, printed as tables or passed through
//! as JSON. Works against Prometheus itself too.

use serde_json::Value;

use crate::cli::{MetricsCommand, Nightlight, Output};
use crate::rest;

async fn get(target: &Nightlight, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
    let url = format!("{}{path}", target.endpoint.trim_end_matches('/'));
    let request = reqwest::Client::new().get(&url).query(query);
    rest::send(request, "nightlight", &target.endpoint, &url).await
}

/// The API's answer for a table, or `None` when it was printed as JSON (`--output json`).
async fn fetch_for_table(
    target: &Nightlight,
    path: &str,
    query: &[(&str, &str)],
) -> anyhow::Result<Option<Value>> {
    let body = get(target, path, query).await?;
    if target.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(None);
    }
    Ok(Some(body))
}

/// An RFC 3339 time to the millisecond, for a table column.
fn instant(value: &Value) -> String {
    text(value).chars().take(23).collect()
}

/// `name{a="b", c="d"}` from the API's `metric` object.
fn series_name(metric: &Value) -> String {
    let Some(labels) = metric.as_object() else {
        return "{}".into();
    };
    let name = labels.get("__name__").and_then(Value::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(key, _)| *key != "__name__")
        .map(|(key, value)| format!("{key}={}", value))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        return name.to_owned();
    }
    format!("{name}{{{}}}", rest.join(", "))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

pub async fn run(command: MetricsCommand) -> anyhow::Result<()> {
    match command {
        MetricsCommand::Query { expr, time, target } => {
            let mut query = vec![("query", expr.as_str())];
            if let Some(time) = &time {
                query.push(("time", time));
            }
            let Some(body) = fetch_for_table(&target, "/api/v1/query", &query).await? else {
                return Ok(());
            };
            let data = &body["data"];
            match data["resultType"].as_str() {
                Some("vector") => {
                    let result = data["result"].as_array().cloned().unwrap_or_default();
                    if result.is_empty() {
                        println!("(no series)");
                    }
                    for sample in result {
                        println!(
                            "{}  {}",
                            series_name(&sample["metric"]),
                            text(&sample["value"][1])
                        );
                    }
                }
                Some("matrix") => {
                    for series in data["result"].as_array().into_iter().flatten() {
                        println!("{}", series_name(&series["metric"]));
                        for point in series["values"].as_array().into_iter().flatten() {
                            println!("  @{}  {}", point[0], text(&point[1]));
                        }
                    }
                }
                Some(_) => println!("{}", text(&data["result"][1])),
                None => println!("{}", serde_json::to_string_pretty(data)?),
            }
        }
        MetricsCommand::Targets { target } => {
            let Some(body) = fetch_for_table(&target, "/api/v1/targets", &[]).await? else {
                return Ok(());
            };
            println!(
                "{:<16} {:<40} {:<7} {:<24} {:>9}  ERROR",
                "JOB", "ENDPOINT", "HEALTH", "LAST SCRAPE", "DURATION"
            );
            for active in body["data"]["activeTargets"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let duration = active["lastScrapeDuration"].as_f64().unwrap_or(0.0);
                println!(
                    "{:<16} {:<40} {:<7} {:<24} {:>8.3}s  {}",
                    text(&active["scrapePool"]),
                    text(&active["scrapeUrl"]),
                    text(&active["health"]),
                    instant(&active["lastScrape"]),
                    duration,
                    text(&active["lastError"]),
                );
            }
        }
        MetricsCommand::Alerts { target } => {
            let Some(body) = fetch_for_table(&target, "/api/v1/alerts", &[]).await? else {
                return Ok(());
            };
            let alerts = body["data"]["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if alerts.is_empty() {
                println!("(no pending or firing alerts)");
                return Ok(());
            }
            println!(
                "{:<8} {:<24} {:<12} {:<50}  SUMMARY",
                "STATE", "ACTIVE SINCE", "VALUE", "ALERT"
            );
            for alert in alerts {
                let annotations = &alert["annotations"];
                let summary = annotations
                    .get("summary")
                    .or_else(|| annotations.get("description"))
                    .map_or_else(|| "-".to_owned(), text);
                println!(
                    "{:<8} {:<24} {:<12} {:<50}  {summary}",
                    text(&alert["state"]),
                    instant(&alert["activeAt"]),
                    text(&alert["value"]),
                    alert_name(&alert["labels"]),
                );
            }
        }
        MetricsCommand::Rules { target } => {
            let Some(body) = fetch_for_table(&target, "/api/v1/rules", &[]).await? else {
                return Ok(());
            };
            let groups = body["data"]["groups"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if groups.is_empty() {
                println!("(no rule groups: set standalone.rules.rule_files)");
            }
            for group in groups {
                println!(
                    "{}  ({}, every {}s)",
                    text(&group["name"]),
                    text(&group["file"]),
                    text(&group["interval"])
                );
                for rule in group["rules"].as_array().into_iter().flatten() {
                    let kind = if rule["type"] == "alerting" {
                        "alert"
                    } else {
                        "record"
                    };
                    let state = if rule["type"] == "alerting" {
                        text(&rule["state"])
                    } else {
                        "-".to_owned()
                    };
                    println!(
                        "  {kind:<6} {:<36} {:<4} {:<8} {}",
                        text(&rule["name"]),
                        text(&rule["health"]),
                        state,
                        rule.get("lastError")
                            .map_or_else(|| text(&rule["query"]), text),
                    );
                }
            }
        }
    }
    Ok(())
}

/// `AlertName{label=value, ...}` without the alertname label repeated.
fn alert_name(labels: &Value) -> String {
    let name = labels["alertname"].as_str().unwrap_or("");
    let rest: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| *key != "alertname")
        .map(|(key, value)| format!("{key}={}", text(value)))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_print_like_promql() {
        let metric = serde_json::json!({"__name__": "up", "job": "a"});
        assert_eq!(series_name(&metric), r#"up{job="a"}"#);
        assert_eq!(series_name(&serde_json::json!({})), "{}");
        assert_eq!(series_name(&serde_json::json!({"__name__": "up"})), "up");
    }

    #[test]
    fn alerts_print_their_name_first() {
        let labels = serde_json::json!({"alertname": "Down", "instance": "a:1"});
        assert_eq!(alert_name(&labels), "Down{instance=a:1}");
    }
}
