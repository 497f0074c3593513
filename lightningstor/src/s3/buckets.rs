//! CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation and ListBuckets.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::meta::{Batch, BucketRecord, Op};
use crate::store::{Store, meta_error, now_ms, timestamp};

impl Store {
    pub async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = req.input;
        if let Some(acl) = &input.acl
            && acl.as_str() != BucketCannedACL::PRIVATE
        {
            return Err(s3_error!(
                NotImplemented,
                "bucket ACLs are not supported; use standalone.auth.public_read_buckets for public reading"
            ));
        }
        if input.object_lock_enabled_for_bucket == Some(true) {
            return Err(s3_error!(NotImplemented, "object lock is not supported"));
        }
        let constraint = input
            .create_bucket_configuration
            .as_ref()
            .and_then(|config| config.location_constraint.as_ref())
            .map(|constraint| constraint.as_str().to_owned());
        if let Some(constraint) = constraint
            && !constraint.is_empty()
            && constraint != self.region
        {
            return Err(s3_error!(
                InvalidLocationConstraint,
                "this server's region is {}; the location constraint {constraint:?} cannot be met",
                self.region
            ));
        }
        let _changes = self.bucket_changes().await;
        if self
            .meta
            .get_bucket(&input.bucket)
            .await
            .map_err(meta_error)?
            .is_some()
        {
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        let mut batch = Batch::default();
        batch.push(Op::PutBucket(
            input.bucket.clone(),
            BucketRecord {
                created_ms: now_ms(),
            },
        ));
        self.commit(batch).await?;
        tracing::info!(bucket = %input.bucket, "bucket created");
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", input.bucket)),
        }))
    }

    pub async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        let _changes = self.bucket_changes().await;
        self.require_bucket(&bucket).await?;
        if !self
            .meta
            .bucket_is_empty(&bucket)
            .await
            .map_err(meta_error)?
        {
            return Err(s3_error!(
                BucketNotEmpty,
                "The bucket you tried to delete is not empty (objects or multipart uploads remain)"
            ));
        }
        let mut batch = Batch::default();
        batch.push(Op::DeleteBucket(bucket.clone()));
        self.commit(batch).await?;
        tracing::info!(%bucket, "bucket deleted");
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..Default::default()
        }))
    }

    pub async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        // AWS answers an empty constraint for us-east-1.
        let location_constraint = (self.region != "us-east-1")
            .then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint,
        }))
    }

    pub async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let input = req.input;
        let mut buckets = self.meta.list_buckets().await.map_err(meta_error)?;
        if let Some(prefix) = &input.prefix {
            buckets.retain(|(name, _)| name.starts_with(prefix.as_str()));
        }
        if let Some(token) = &input.continuation_token {
            buckets.retain(|(name, _)| name.as_str() > token.as_str());
        }
        let limit = input.max_buckets.map_or(usize::MAX, |max| {
            usize::try_from(max.clamp(1, 10_000)).unwrap_or(1)
        });
        let truncated = buckets.len() > limit;
        buckets.truncate(limit);
        let continuation_token = truncated
            .then(|| buckets.last().map(|(name, _)| name.clone()))
            .flatten();
        let buckets = buckets
            .into_iter()
            .map(|(name, record)| Bucket {
                bucket_region: Some(self.region.clone()),
                creation_date: Some(timestamp(record.created_ms)),
                name: Some(name),
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            continuation_token,
            owner: Some(self.owner()),
            prefix: input.prefix,
        }))
    }

    pub fn owner(&self) -> Owner {
        Owner {
            display_name: Some(self.owner_id.clone()),
            id: Some(self.owner_id.clone()),
        }
    }
}
