//! The admin gRPC API on `grpc_addr`: server info, bucket usage and access keys.

use std::sync::Arc;
use std::time::Instant;

use lightningstor_client::admin::admin_server::Admin;
use lightningstor_client::admin::*;
use tonic::{Request, Response, Status};

use crate::auth::{KeyRing, KeySource, generate_key_pair};
use crate::meta::{AccessKeyRecord, Batch, MetaError, Op};
use crate::store::{Store, now_ms};

pub struct AdminApi {
    pub store: Arc<Store>,
    pub keys: KeyRing,
    pub info: ServerInfoResponse,
    pub public_read: Vec<String>,
    pub started: Instant,
}

fn internal(err: MetaError) -> Status {
    tracing::error!("admin API: {err}");
    Status::internal(err.to_string())
}

impl AdminApi {
    async fn usage(&self) -> Result<Vec<BucketUsage>, Status> {
        let meta = &self.store.meta;
        let mut buckets = Vec::new();
        for (name, record) in meta.list_buckets().await.map_err(internal)? {
            let usage = meta.usage(&name).await.map_err(internal)?;
            buckets.push(BucketUsage {
                public_read: self.public_read.contains(&name),
                name,
                created_unix: record.created_ms / 1000,
                objects: u64::try_from(usage.objects).unwrap_or(0),
                bytes: u64::try_from(usage.bytes).unwrap_or(0),
            });
        }
        Ok(buckets)
    }
}

#[tonic::async_trait]
impl Admin for AdminApi {
    async fn server_info(
        &self,
        _request: Request<ServerInfoRequest>,
    ) -> Result<Response<ServerInfoResponse>, Status> {
        let buckets = self.usage().await?;
        let mut uploads = 0;
        for bucket in &buckets {
            uploads += self
                .store
                .meta
                .list_uploads(&bucket.name, None, usize::MAX)
                .await
                .map_err(internal)?
                .len() as u64;
        }
        Ok(Response::new(ServerInfoResponse {
            uptime_seconds: self.started.elapsed().as_secs(),
            buckets: buckets.len() as u64,
            objects: buckets.iter().map(|bucket| bucket.objects).sum(),
            bytes: buckets.iter().map(|bucket| bucket.bytes).sum(),
            multipart_uploads: uploads,
            ..self.info.clone()
        }))
    }

    async fn list_buckets(
        &self,
        _request: Request<ListBucketsRequest>,
    ) -> Result<Response<ListBucketsResponse>, Status> {
        Ok(Response::new(ListBucketsResponse {
            buckets: self.usage().await?,
        }))
    }

    async fn create_access_key(
        &self,
        request: Request<CreateAccessKeyRequest>,
    ) -> Result<Response<CreateAccessKeyResponse>, Status> {
        let description = request.into_inner().description;
        let (access_key, secret_key) = generate_key_pair();
        let mut batch = Batch::default();
        batch.push(Op::PutAccessKey(
            access_key.clone(),
            AccessKeyRecord {
                secret_key: secret_key.clone(),
                description: description.clone(),
                created_ms: now_ms(),
            },
        ));
        self.store.meta.commit(batch).await.map_err(internal)?;
        tracing::info!(%access_key, %description, "access key created through the admin API");
        Ok(Response::new(CreateAccessKeyResponse {
            access_key,
            secret_key,
        }))
    }

    async fn list_access_keys(
        &self,
        _request: Request<ListAccessKeysRequest>,
    ) -> Result<Response<ListAccessKeysResponse>, Status> {
        let mut keys: Vec<AccessKeyInfo> = self
            .keys
            .fixed_keys()
            .map(|(access_key, source)| AccessKeyInfo {
                access_key: access_key.to_owned(),
                description: String::new(),
                created_unix: 0,
                source: source.as_str().to_owned(),
            })
            .collect();
        for (access_key, record) in self.store.meta.list_access_keys().await.map_err(internal)? {
            keys.push(AccessKeyInfo {
                access_key,
                description: record.description,
                created_unix: record.created_ms / 1000,
                source: KeySource::Api.as_str().to_owned(),
            });
        }
        keys.sort_by(|a, b| a.access_key.cmp(&b.access_key));
        Ok(Response::new(ListAccessKeysResponse { keys }))
    }

    async fn delete_access_key(
        &self,
        request: Request<DeleteAccessKeyRequest>,
    ) -> Result<Response<DeleteAccessKeyResponse>, Status> {
        let access_key = request.into_inner().access_key;
        if self.keys.is_fixed(&access_key) {
            return Err(Status::failed_precondition(format!(
                "access key {access_key} comes from the config or credentials file; remove it there and restart"
            )));
        }
        let meta = &self.store.meta;
        if meta
            .get_access_key(&access_key)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err(Status::not_found(format!("no access key {access_key}")));
        }
        let mut batch = Batch::default();
        batch.push(Op::DeleteAccessKey(access_key.clone()));
        meta.commit(batch).await.map_err(internal)?;
        tracing::info!(%access_key, "access key deleted through the admin API");
        Ok(Response::new(DeleteAccessKeyResponse {}))
    }
}
