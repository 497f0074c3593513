//! The S3 operations lightningstor serves. s3s parses requests, checks signatures and writes
//! responses; each operation here is a [`Store`] method. Operations not listed answer
//! NotImplemented (s3s's default), never a wrong success.

mod buckets;
mod listing;
mod multipart;
mod objects;

use std::sync::Arc;

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};

use crate::store::Store;

/// The [`S3`] face of a shared [`Store`].
#[derive(Clone)]
pub struct S3Api(pub Arc<Store>);

/// Every operation forwards to the store method of the same name.
macro_rules! forward {
    ($($operation:ident($input:ty) -> $output:ty;)*) => {
        #[async_trait::async_trait]
        impl S3 for S3Api {
            $(
                async fn $operation(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.0.$operation(req).await
                }
            )*
        }
    };
}

forward! {
    create_bucket(CreateBucketInput) -> CreateBucketOutput;
    delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
    head_bucket(HeadBucketInput) -> HeadBucketOutput;
    get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
    list_buckets(ListBucketsInput) -> ListBucketsOutput;
    put_object(PutObjectInput) -> PutObjectOutput;
    get_object(GetObjectInput) -> GetObjectOutput;
    head_object(HeadObjectInput) -> HeadObjectOutput;
    delete_object(DeleteObjectInput) -> DeleteObjectOutput;
    delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput;
    copy_object(CopyObjectInput) -> CopyObjectOutput;
    list_objects(ListObjectsInput) -> ListObjectsOutput;
    list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output;
    create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput;
    upload_part(UploadPartInput) -> UploadPartOutput;
    upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput;
    complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput;
    abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    list_parts(ListPartsInput) -> ListPartsOutput;
    list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput;
}
