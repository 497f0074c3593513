//! `photonctl lb`: fiberlb's REST API, printed as tables or passed through as JSON.

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{Fiberlb, LbBackendCommand, LbCommand, Output};
use crate::rest;

async fn call(
    target: &Fiberlb,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("{}{path}", target.endpoint.trim_end_matches('/'));
    let mut request = reqwest::Client::new().request(method, &url);
    if let Some(token) = &target.token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    rest::send(request, "fiberlb", &target.endpoint, &url).await
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

pub async fn run(command: LbCommand) -> anyhow::Result<()> {
    let (target, body) = match &command {
        LbCommand::List { target } => (
            target,
            call(target, Method::GET, "/api/v1/loadbalancers", None).await?,
        ),
        LbCommand::Show { name, target } => {
            let path = format!("/api/v1/loadbalancers/{name}");
            (target, call(target, Method::GET, &path, None).await?)
        }
        LbCommand::Backend(backend) => return run_backend(backend).await,
    };
    if target.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    match command {
        LbCommand::List { .. } => {
            println!(
                "{:<20} {:<6} {:<22} {:<20} {:>8} {:>7}",
                "NAME", "PROTO", "LISTEN", "METHOD", "BACKENDS", "CLIENTS"
            );
            for lb in body["loadbalancers"].as_array().into_iter().flatten() {
                println!(
                    "{:<20} {:<6} {:<22} {:<20} {:>8} {:>7}",
                    text(&lb["name"]),
                    text(&lb["protocol"]),
                    text(&lb["listen"]),
                    text(&lb["method"]),
                    format!("{}/{}", lb["backends_up"], lb["backends"]),
                    text(&lb["active_connections"]),
                );
            }
        }
        LbCommand::Show { .. } => {
            println!(
                "{} ({} on {}, method {}): {} client connection(s)",
                text(&body["name"]),
                text(&body["protocol"]),
                text(&body["listen"]),
                text(&body["method"]),
                text(&body["active_connections"])
            );
            println!(
                "{:<16} {:<24} {:<9} {:>6} {:>7} {:>9} {:>12} {:>12}",
                "BACKEND",
                "ADDRESS",
                "STATE",
                "WEIGHT",
                "ACTIVE",
                "FAILURES",
                "BYTES IN",
                "BYTES OUT"
            );
            for backend in body["backend_status"].as_array().into_iter().flatten() {
                println!(
                    "{:<16} {:<24} {:<9} {:>6} {:>7} {:>9} {:>12} {:>12}",
                    text(&backend["name"]),
                    format!("{}:{}", text(&backend["address"]), backend["port"]),
                    text(&backend["state"]),
                    text(&backend["weight"]),
                    text(&backend["active_connections"]),
                    text(&backend["connect_failures_total"]),
                    text(&backend["bytes_in"]),
                    text(&backend["bytes_out"]),
                );
                if let Some(error) = backend["last_check_error"].as_str() {
                    println!("  last check: {error}");
                }
            }
        }
        LbCommand::Backend(_) => {}
    }
    Ok(())
}

async fn run_backend(command: &LbBackendCommand) -> anyhow::Result<()> {
    let (target, body, done) = match command {
        LbBackendCommand::Add {
            lb,
            name,
            address,
            port,
            weight,
            target,
        } => {
            let body = json!({ "name": name, "address": address, "port": port, "weight": weight });
            let path = format!("/api/v1/loadbalancers/{lb}/backends");
            (
                target,
                call(target, Method::POST, &path, Some(body)).await?,
                format!("added backend {name} to {lb}"),
            )
        }
        LbBackendCommand::Remove { lb, name, target } => {
            let path = format!("/api/v1/loadbalancers/{lb}/backends/{name}");
            (
                target,
                call(target, Method::DELETE, &path, None).await?,
                format!("removed backend {name} from {lb}; its open connections finish first"),
            )
        }
        LbBackendCommand::Drain {
            lb,
            name,
            undo,
            target,
        } => {
            let path = format!("/api/v1/loadbalancers/{lb}/backends/{name}");
            let body = call(
                target,
                Method::PATCH,
                &path,
                Some(json!({ "drain": !undo })),
            )
            .await?;
            let done = if *undo {
                format!("backend {name} of {lb} is back in rotation")
            } else {
                format!(
                    "backend {name} of {lb} is draining: no new traffic, {} open connection(s) finish",
                    text(&body["active_connections"])
                )
            };
            (target, body, done)
        }
    };
    match target.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&body)?),
        Output::Table => println!("{done}"),
    }
    Ok(())
}
