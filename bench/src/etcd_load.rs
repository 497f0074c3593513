//! A load generator for any etcd v3 server (etcd or chainfire): many connections, each sending
//! requests back to back; prints throughput and latency percentiles as one line of `key=value`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use etcd_client::{Client, GetOptions};
use photon_bench::Latencies;

#[derive(Debug, Parser)]
#[command(name = "etcd-load")]
struct Args {
    /// Server addresses, comma-separated (e.g. 127.0.0.1:2379); connections are spread over
    /// them in turn, as clients of a cluster would be
    #[arg(long, value_delimiter = ',', required = true)]
    endpoint: Vec<String>,
    #[arg(long, value_enum)]
    mode: Mode,
    /// Concurrent connections, one client each
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Requests in total
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Distinct keys written and read
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    #[arg(long, default_value_t = 256)]
    value_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Put requests
    Put,
    /// Linearizable Range (get) requests on keys written first
    Get,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.clients == 0 || args.requests < args.clients || args.keys == 0 {
        bail!("need at least one client, one key, and as many requests as clients");
    }
    let value = vec![b'v'; args.value_size];
    if args.mode == Mode::Get {
        let mut client = Client::connect([args.endpoint[0].as_str()], None)
            .await
            .context("connecting to fill the keys")?;
        for key in 0..args.keys {
            client.put(key_name(key), value.clone(), None).await?;
        }
    }

    let per_client = args.requests / args.clients;
    let mut workers = Vec::with_capacity(args.clients);
    let started = Instant::now();
    for worker in 0..args.clients {
        let endpoint = &args.endpoint[worker % args.endpoint.len()];
        let mut client = Client::connect([endpoint.as_str()], None)
            .await
            .with_context(|| format!("connection {worker} to {endpoint}"))?;
        let value = value.clone();
        let (mode, keys) = (args.mode, args.keys);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let key = key_name((worker * per_client + i) % keys);
                let sent = Instant::now();
                match mode {
                    Mode::Put => {
                        client.put(key, value.clone(), None).await?;
                    }
                    Mode::Get => {
                        client.get(key, Some(GetOptions::new())).await?;
                    }
                }
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(args.requests);
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    let latencies = Latencies::new(latencies);
    println!(
        "mode={:?} requests={} clients={} {}",
        args.mode,
        latencies.len(),
        args.clients,
        latencies.summary(elapsed),
    );
    Ok(())
}

fn key_name(index: usize) -> String {
    format!("bench/{index:08}")
}
