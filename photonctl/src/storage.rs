//! `photonctl storage`: lightningstor's admin gRPC API, printed as tables or JSON.

use anyhow::Context;
use lightningstor_client::admin::admin_client::AdminClient;
use lightningstor_client::admin::{ListBucketsRequest, ServerInfoRequest};
use serde_json::json;
use tonic::transport::Channel;

use crate::cli::{Lightningstor, Output, StorageCommand};

async fn connect(target: &Lightningstor) -> anyhow::Result<AdminClient<Channel>> {
    AdminClient::connect(target.endpoint.clone())
        .await
        .with_context(|| {
            format!(
                "lightningstor admin API at {} did not answer",
                target.endpoint
            )
        })
}

pub async fn run(command: StorageCommand) -> anyhow::Result<()> {
    match command {
        StorageCommand::Buckets { target } => {
            let buckets = connect(&target)
                .await?
                .list_buckets(ListBucketsRequest {})
                .await
                .context("listing buckets")?
                .into_inner()
                .buckets;
            match target.output {
                Output::Json => {
                    let rows: Vec<_> = buckets
                        .iter()
                        .map(|bucket| {
                            json!({
                                "name": bucket.name,
                                "objects": bucket.objects,
                                "bytes": bucket.bytes,
                                "created_unix": bucket.created_unix,
                                "public_read": bucket.public_read,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                }
                Output::Table => {
                    println!("{:<40} {:>12} {:>14}  ACCESS", "BUCKET", "OBJECTS", "BYTES");
                    for bucket in &buckets {
                        let access = if bucket.public_read {
                            "public-read"
                        } else {
                            "private"
                        };
                        println!(
                            "{:<40} {:>12} {:>14}  {access}",
                            bucket.name, bucket.objects, bucket.bytes
                        );
                    }
                }
            }
        }
        StorageCommand::Usage { target } => {
            let info = connect(&target)
                .await?
                .server_info(ServerInfoRequest {})
                .await
                .context("asking for server info")?
                .into_inner();
            match target.output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "version": info.version,
                        "component_id": info.component_id,
                        "s3_endpoint": info.s3_endpoint,
                        "region": info.region,
                        "data_dir": info.data_dir,
                        "uptime_seconds": info.uptime_seconds,
                        "buckets": info.buckets,
                        "objects": info.objects,
                        "bytes": info.bytes,
                        "multipart_uploads": info.multipart_uploads,
                    }))?
                ),
                Output::Table => {
                    println!("lightningstor {} ({})", info.version, info.component_id);
                    println!(
                        "S3 endpoint:       {} (region {})",
                        info.s3_endpoint, info.region
                    );
                    println!("data directory:    {}", info.data_dir);
                    println!("uptime:            {}s", info.uptime_seconds);
                    println!("buckets:           {}", info.buckets);
                    println!("objects:           {}", info.objects);
                    println!("bytes:             {}", info.bytes);
                    println!("multipart uploads: {}", info.multipart_uploads);
                }
            }
        }
    }
    Ok(())
}
