//! A load generator for any S3 server (lightningstor, Garage, MinIO): concurrent PUTs or GETs of
//! objects of one size through the AWS SDK for Rust with its default settings, so every server
//! pays the same client costs (SigV4, CRC32). Prints one `key=value` line.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use photon_bench::Latencies;

#[derive(Debug, Parser)]
#[command(name = "s3-load")]
struct Args {
    /// S3 endpoint, e.g. http://127.0.0.1:9001
    #[arg(long)]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    /// The region the server signs for (Garage: its s3_region)
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// An existing bucket
    #[arg(long)]
    bucket: String,
    #[arg(long, value_enum)]
    mode: Mode,
    /// Object size in bytes
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Requests in flight at once
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Requests in total (GET reads the objects a PUT run of the same count wrote)
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Create the bucket first (an existing one is fine)
    #[arg(long)]
    create_bucket: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Put,
    Get,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.requests == 0 {
        bail!("need at least one request and a concurrency of at least one");
    }
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(args.region.clone()))
        .endpoint_url(&args.endpoint)
        .credentials_provider(Credentials::new(
            &args.access_key,
            &args.secret_key,
            None,
            None,
            "s3-load",
        ))
        .force_path_style(true)
        .build();
    let client = Client::from_conf(config);
    if args.create_bucket
        && let Err(err) = client.create_bucket().bucket(&args.bucket).send().await
    {
        let code = err.as_service_error().and_then(|err| err.meta().code());
        if !matches!(
            code,
            Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
        ) {
            return Err(err).context("creating the bucket");
        }
    }
    let body = Bytes::from((0..args.size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let (client, body, next, args) = (
            client.clone(),
            body.clone(),
            next.clone(),
            (args.bucket.clone(), args.mode, args.requests, args.size),
        );
        workers.push(tokio::spawn(async move {
            let (bucket, mode, requests, size) = args;
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= requests {
                    break;
                }
                let key = format!("bench/{size}/{index:08}");
                let sent = Instant::now();
                match mode {
                    Mode::Put => {
                        client
                            .put_object()
                            .bucket(&bucket)
                            .key(&key)
                            .body(ByteStream::from(body.clone()))
                            .send()
                            .await
                            .with_context(|| format!("PUT {key}"))?;
                    }
                    Mode::Get => {
                        let object = client
                            .get_object()
                            .bucket(&bucket)
                            .key(&key)
                            .send()
                            .await
                            .with_context(|| format!("GET {key}"))?;
                        let bytes = object.body.collect().await?.into_bytes();
                        if bytes.len() != size {
                            bail!("GET {key}: {} bytes, expected {size}", bytes.len());
                        }
                    }
                }
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(args.requests);
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    let latencies = Latencies::new(latencies);
    let mib_per_sec =
        (latencies.len() * args.size) as f64 / elapsed.as_secs_f64() / (1 << 20) as f64;
    println!(
        "mode={:?} size={} requests={} concurrency={} mib_per_sec={mib_per_sec:.1} {}",
        args.mode,
        args.size,
        latencies.len(),
        args.concurrency,
        latencies.summary(elapsed),
    );
    Ok(())
}
