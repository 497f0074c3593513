//! `photonctl kv`: thin commands over chainfire-client.

use std::io::Write;

use anyhow::Context;
use chainfire_client::etcd_client::{DeleteOptions, GetOptions};
use chainfire_client::{Chainfire, WatchEventKind};
use serde::Serialize;

use crate::cli::{KvCommand, Output};

#[derive(Serialize)]
struct Entry {
    key: String,
    value: String,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
}

async fn connect(endpoints: &[String]) -> anyhow::Result<Chainfire> {
    Chainfire::connect(endpoints)
        .await
        .with_context(|| failed_at(endpoints))
}

fn failed_at(endpoints: &[String]) -> String {
    format!("chainfire at {} did not answer", endpoints.join(","))
}

pub async fn run(command: KvCommand) -> anyhow::Result<()> {
    match command {
        KvCommand::Get {
            key,
            prefix,
            target,
            output,
        } => {
            let options = prefix.then(|| GetOptions::new().with_prefix());
            let response = connect(&target.endpoints)
                .await?
                .etcd()
                .get(key, options)
                .await
                .with_context(|| failed_at(&target.endpoints))?;
            let entries: Vec<Entry> = response
                .kvs()
                .iter()
                .map(|kv| Entry {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    value: String::from_utf8_lossy(kv.value()).into_owned(),
                    create_revision: kv.create_revision(),
                    mod_revision: kv.mod_revision(),
                    version: kv.version(),
                    lease: kv.lease(),
                })
                .collect();
            match output {
                // As etcdctl prints them: key, then value, one per line.
                Output::Table => entries
                    .iter()
                    .for_each(|entry| println!("{}\n{}", entry.key, entry.value)),
                Output::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
            }
        }
        KvCommand::Put { key, value, target } => {
            connect(&target.endpoints)
                .await?
                .etcd()
                .put(key, value, None)
                .await
                .with_context(|| failed_at(&target.endpoints))?;
            println!("OK");
        }
        KvCommand::Del {
            key,
            prefix,
            target,
        } => {
            let options = prefix.then(|| DeleteOptions::new().with_prefix());
            let response = connect(&target.endpoints)
                .await?
                .etcd()
                .delete(key, options)
                .await
                .with_context(|| failed_at(&target.endpoints))?;
            println!("{}", response.deleted());
        }
        KvCommand::Watch {
            key,
            prefix,
            target,
        } => {
            let client = connect(&target.endpoints).await?;
            let mut watch = client
                .watch_prefix(&key, None)
                .await
                .with_context(|| failed_at(&target.endpoints))?;
            let mut stdout = std::io::stdout();
            loop {
                let event = watch.next().await?;
                // A key watch is a prefix watch that keeps only the exact key.
                if !prefix && !event.key.is_empty() {
                    continue;
                }
                let full_key = format!("{key}{}", event.key);
                match event.kind {
                    WatchEventKind::Put => writeln!(
                        stdout,
                        "PUT {full_key} {}",
                        String::from_utf8_lossy(&event.value)
                    )?,
                    WatchEventKind::Delete => writeln!(stdout, "DELETE {full_key}")?,
                }
                stdout.flush()?;
            }
        }
    }
    Ok(())
}
