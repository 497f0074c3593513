//! `photonctl dns`: flashdns's read-only REST API, printed as tables or passed through as JSON.

use serde::Deserialize;
use serde_json::Value;

use crate::cli::{DnsCommand, Flashdns, Output};
use crate::rest;

#[derive(Deserialize)]
struct Zone {
    name: String,
    serial: Option<u32>,
    records: usize,
    file: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Record {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    ttl: u32,
    data: String,
}

#[derive(Deserialize)]
struct Lookup {
    rcode: String,
    authoritative: bool,
    answer: Vec<Record>,
    authority: Vec<Record>,
    additional: Vec<Record>,
}

async fn get(target: &Flashdns, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", target.endpoint.trim_end_matches('/'));
    let request = reqwest::Client::new().get(&url);
    rest::send(request, "flashdns", &target.endpoint, &url).await
}

/// Zone-file form: `name ttl IN type data`.
fn record_line(record: &Record) -> String {
    format!(
        "{}\t{}\tIN\t{}\t{}",
        record.name, record.ttl, record.rtype, record.data
    )
}

pub async fn run(command: DnsCommand) -> anyhow::Result<()> {
    let (target, body) = match &command {
        DnsCommand::Zones { target } => (target, get(target, "/api/v1/zones").await?),
        DnsCommand::Records { zone, target } => {
            let path = format!("/api/v1/zones/{zone}/records");
            (target, get(target, &path).await?)
        }
        DnsCommand::Lookup {
            name,
            rtype,
            target,
        } => {
            let path = format!("/api/v1/lookup?name={name}&type={rtype}");
            (target, get(target, &path).await?)
        }
    };
    if target.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    match command {
        DnsCommand::Zones { .. } => {
            let zones: Vec<Zone> = serde_json::from_value(body)?;
            println!("{:<32} {:>12} {:>8}  FILE", "ZONE", "SERIAL", "RECORDS");
            for zone in zones {
                let serial = zone
                    .serial
                    .map_or("-".to_owned(), |serial| serial.to_string());
                println!(
                    "{:<32} {serial:>12} {:>8}  {}",
                    zone.name, zone.records, zone.file
                );
                if let Some(error) = zone.error {
                    println!("  not loaded: {error}");
                }
            }
        }
        DnsCommand::Records { .. } => {
            let records: Vec<Record> = serde_json::from_value(body["records"].clone())?;
            records
                .iter()
                .for_each(|record| println!("{}", record_line(record)));
        }
        DnsCommand::Lookup { .. } => {
            let lookup: Lookup = serde_json::from_value(body)?;
            let flags = if lookup.authoritative { " aa" } else { "" };
            println!("status: {}, flags:{flags}", lookup.rcode);
            for (title, records) in [
                ("ANSWER", &lookup.answer),
                ("AUTHORITY", &lookup.authority),
                ("ADDITIONAL", &lookup.additional),
            ] {
                if !records.is_empty() {
                    println!(";; {title}");
                    records
                        .iter()
                        .for_each(|record| println!("{}", record_line(record)));
                }
            }
        }
    }
    Ok(())
}
