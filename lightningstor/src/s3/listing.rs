//! ListObjectsV2 and ListObjects (v1).
//!
//! A page is read from the metadata store a bounded batch at a time, and a common prefix is
//! skipped with one seek past it, so listing a million keys never holds more than a page.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::integrity::Algorithm;
use crate::meta::ObjectRecord;
use crate::meta::rocks::prefix_end;
use crate::store::{MAX_LIST_KEYS, Store, meta_error, timestamp};

/// Entries fetched from the metadata store per read.
const FETCH_BATCH: usize = 256;

/// S3's `encoding-type=url`: everything but unreserved characters and `/` is escaped, `+`
/// included (clients decode with form rules).
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

struct Page {
    objects: Vec<(String, ObjectRecord)>,
    prefixes: Vec<String>,
    truncated: bool,
    /// The last key or common prefix returned: where the next page starts (exclusive).
    last: Option<String>,
}

struct Query<'a> {
    bucket: &'a str,
    prefix: &'a str,
    delimiter: Option<&'a str>,
    after: Option<&'a str>,
    max_keys: usize,
}

impl Store {
    async fn list_page(&self, query: &Query<'_>) -> S3Result<Page> {
        self.require_bucket(query.bucket).await?;
        let mut page = Page {
            objects: Vec::new(),
            prefixes: Vec::new(),
            truncated: false,
            last: None,
        };
        if query.max_keys == 0 {
            return Ok(page);
        }
        let prefix = query.prefix;
        let common_prefix_of = |key: &str| -> Option<String> {
            let delimiter = query.delimiter.filter(|delimiter| !delimiter.is_empty())?;
            let rest = key.strip_prefix(prefix)?;
            rest.find(delimiter)
                .map(|at| key[..prefix.len() + at + delimiter.len()].to_owned())
        };
        // Where to read from, and whether that key itself is included.
        let mut cursor: Vec<u8> = prefix.as_bytes().to_vec();
        let mut inclusive = true;
        if let Some(after) = query.after
            && after >= prefix
        {
            match common_prefix_of(after) {
                // Resuming after a common prefix skips every key under it.
                Some(common) if common == after => match prefix_end(common.as_bytes()) {
                    Some(end) => cursor = end,
                    None => return Ok(page),
                },
                _ => {
                    cursor = after.as_bytes().to_vec();
                    inclusive = false;
                }
            }
        }
        let count = |page: &Page| page.objects.len() + page.prefixes.len();
        'fetch: loop {
            let batch = self
                .meta
                .list_objects(query.bucket, &cursor, inclusive, FETCH_BATCH)
                .await
                .map_err(meta_error)?;
            let exhausted = batch.len() < FETCH_BATCH;
            for (key, record) in batch {
                if !key.starts_with(prefix) {
                    break 'fetch;
                }
                if count(&page) == query.max_keys {
                    page.truncated = true;
                    break 'fetch;
                }
                if let Some(common) = common_prefix_of(&key) {
                    let end = prefix_end(common.as_bytes());
                    page.prefixes.push(common.clone());
                    page.last = Some(common);
                    match end {
                        Some(end) => {
                            cursor = end;
                            inclusive = true;
                            continue 'fetch;
                        }
                        None => break 'fetch,
                    }
                }
                cursor = key.as_bytes().to_vec();
                inclusive = false;
                page.last = Some(key.clone());
                page.objects.push((key, record));
            }
            if exhausted {
                break;
            }
        }
        Ok(page)
    }

    fn listed_object(
        &self,
        key: String,
        record: &ObjectRecord,
        with_owner: bool,
        url: bool,
    ) -> Object {
        let algorithms: Vec<ChecksumAlgorithm> = Algorithm::ALL
            .into_iter()
            .filter(|algorithm| algorithm.get(&record.checksums).is_some())
            .map(|algorithm| ChecksumAlgorithm::from(algorithm.name().to_owned()))
            .collect();
        Object {
            checksum_algorithm: (!algorithms.is_empty()).then_some(algorithms),
            checksum_type: record
                .checksums
                .checksum_type
                .clone()
                .map(ChecksumType::from),
            e_tag: Some(ETag::Strong(record.etag.clone())),
            key: Some(encode_if(url, key)),
            last_modified: Some(timestamp(record.last_modified_ms)),
            owner: with_owner.then(|| self.owner()),
            size: i64::try_from(record.size).ok(),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            restore_status: None,
        }
    }

    pub async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let url = url_encoding(input.encoding_type.as_ref())?;
        let token_key = input
            .continuation_token
            .as_deref()
            .map(|token| {
                TOKEN
                    .decode(token)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| {
                        s3_error!(
                            InvalidArgument,
                            "The continuation token provided is incorrect"
                        )
                    })
            })
            .transpose()?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let query = Query {
            bucket: &input.bucket,
            prefix: &prefix,
            delimiter: input.delimiter.as_deref(),
            after: token_key.as_deref().or(input.start_after.as_deref()),
            max_keys: max_keys(input.max_keys)?,
        };
        let page = self.list_page(&query).await?;
        let with_owner = input.fetch_owner.unwrap_or(false);
        let key_count = i32::try_from(page.objects.len() + page.prefixes.len()).unwrap_or(i32::MAX);
        let next_continuation_token = page
            .truncated
            .then(|| page.last.as_ref().map(|last| TOKEN.encode(last)))
            .flatten();
        let contents = page
            .objects
            .into_iter()
            .map(|(key, record)| self.listed_object(key, &record, with_owner, url))
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encode_if(url, prefix)),
            max_keys: Some(query_max(input.max_keys)),
            key_count: Some(key_count),
            continuation_token: input.continuation_token,
            is_truncated: Some(page.truncated),
            next_continuation_token,
            contents: Some(contents),
            common_prefixes: Some(common_prefixes(page.prefixes, url)),
            delimiter: input.delimiter.map(|delimiter| encode_if(url, delimiter)),
            encoding_type: input.encoding_type,
            start_after: input.start_after.map(|start| encode_if(url, start)),
            request_charged: None,
        }))
    }

    pub async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let url = url_encoding(input.encoding_type.as_ref())?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let query = Query {
            bucket: &input.bucket,
            prefix: &prefix,
            delimiter: input.delimiter.as_deref(),
            after: input.marker.as_deref(),
            max_keys: max_keys(input.max_keys)?,
        };
        let page = self.list_page(&query).await?;
        let next_marker = page
            .truncated
            .then(|| page.last.clone().map(|last| encode_if(url, last)))
            .flatten();
        let contents = page
            .objects
            .into_iter()
            .map(|(key, record)| self.listed_object(key, &record, true, url))
            .collect();
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encode_if(url, prefix)),
            marker: Some(
                input
                    .marker
                    .map_or_else(String::new, |marker| encode_if(url, marker)),
            ),
            max_keys: Some(query_max(input.max_keys)),
            is_truncated: Some(page.truncated),
            contents: Some(contents),
            common_prefixes: Some(common_prefixes(page.prefixes, url)),
            delimiter: input.delimiter.map(|delimiter| encode_if(url, delimiter)),
            next_marker,
            encoding_type: input.encoding_type,
            request_charged: None,
        }))
    }
}

fn max_keys(requested: Option<MaxKeys>) -> S3Result<usize> {
    match requested {
        Some(max) if max < 0 => Err(s3_error!(
            InvalidArgument,
            "max-keys must be a non-negative integer"
        )),
        Some(max) => Ok(usize::try_from(max.min(MAX_LIST_KEYS)).unwrap_or(0)),
        None => Ok(MAX_LIST_KEYS as usize),
    }
}

/// The max-keys echoed back: what was asked for, capped as applied.
fn query_max(requested: Option<MaxKeys>) -> MaxKeys {
    requested.map_or(MAX_LIST_KEYS, |max| max.min(MAX_LIST_KEYS))
}

fn url_encoding(encoding: Option<&EncodingType>) -> S3Result<bool> {
    match encoding {
        None => Ok(false),
        Some(encoding) if encoding.as_str() == EncodingType::URL => Ok(true),
        Some(other) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request: {}",
            other.as_str()
        )),
    }
}

fn encode_if(url: bool, text: String) -> String {
    if url {
        utf8_percent_encode(&text, URL_ENCODE).to_string()
    } else {
        text
    }
}

fn common_prefixes(prefixes: Vec<String>, url: bool) -> Vec<CommonPrefix> {
    prefixes
        .into_iter()
        .map(|prefix| CommonPrefix {
            prefix: Some(encode_if(url, prefix)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_escapes_what_form_decoding_would_alter() {
        assert_eq!(
            encode_if(true, "a b+c&d=e/é%".to_owned()),
            "a%20b%2Bc%26d%3De/%C3%A9%25"
        );
        assert_eq!(encode_if(false, "a b".to_owned()), "a b");
    }
}
