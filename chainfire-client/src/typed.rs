use std::marker::PhantomData;

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// Keys fetched per request when listing, so a large prefix is not one huge response.
const LIST_PAGE: i64 = 1000;

/// JSON values of type `T` stored under a key prefix (readable with `etcdctl get`).
#[derive(Clone)]
pub struct TypedKv<T> {
    client: etcd_client::Client,
    prefix: String,
    _values: PhantomData<fn() -> T>,
}

/// A value with the revision it was last modified at, for compare-and-swap.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub mod_revision: i64,
}

impl<T: Serialize + DeserializeOwned> TypedKv<T> {
    pub(crate) fn new(client: etcd_client::Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_owned(),
            _values: PhantomData,
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn encode(&self, key: &str, value: &T) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(value).map_err(|err| Error::Encode {
            key: self.full_key(key),
            reason: err.to_string(),
        })
    }

    fn decode(key: &[u8], bytes: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|err| Error::Decode {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: err.to_string(),
        })
    }

    pub async fn get(&self, key: &str) -> Result<Option<Versioned<T>>, Error> {
        let response = self.client.clone().get(self.full_key(key), None).await?;
        match response.kvs().first() {
            Some(kv) => Ok(Some(Versioned {
                value: Self::decode(kv.key(), kv.value())?,
                mod_revision: kv.mod_revision(),
            })),
            None => Ok(None),
        }
    }

    /// Writes unconditionally; returns the revision of the write.
    pub async fn put(&self, key: &str, value: &T) -> Result<i64, Error> {
        let bytes = self.encode(key, value)?;
        let response = self
            .client
            .clone()
            .put(self.full_key(key), bytes, None)
            .await?;
        Ok(response.header().map_or(0, |header| header.revision()))
    }

    /// Writes only if the key does not exist; `false` when it does.
    pub async fn create(&self, key: &str, value: &T) -> Result<bool, Error> {
        let full = self.full_key(key);
        let txn = Txn::new()
            .when([Compare::version(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, self.encode(key, value)?, None)]);
        Ok(self.client.clone().txn(txn).await?.succeeded())
    }

    /// Writes only if the key is still at `mod_revision` (compare-and-swap); `false` when
    /// someone changed or deleted it since.
    pub async fn update(&self, key: &str, value: &T, mod_revision: i64) -> Result<bool, Error> {
        let full = self.full_key(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                mod_revision,
            )])
            .and_then([TxnOp::put(full, self.encode(key, value)?, None)]);
        Ok(self.client.clone().txn(txn).await?.succeeded())
    }

    /// `true` when the key existed.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        let response = self.client.clone().delete(self.full_key(key), None).await?;
        Ok(response.deleted() > 0)
    }

    /// Every entry under the prefix, keys without the prefix, in key order, read page by page
    /// at one revision so the listing is consistent. Returns the revision too, to watch from.
    pub async fn list(&self) -> Result<(Vec<(String, T)>, i64), Error> {
        let mut client = self.client.clone();
        let range_end = prefix_end(self.prefix.as_bytes());
        let mut entries = Vec::new();
        let mut start = self.prefix.clone().into_bytes();
        let mut revision = 0;
        loop {
            let mut options = GetOptions::new()
                .with_range(range_end.clone())
                .with_limit(LIST_PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let response = client.get(start.clone(), Some(options)).await?;
            if revision == 0 {
                revision = response.header().map_or(0, |header| header.revision());
            }
            for kv in response.kvs() {
                let key = String::from_utf8_lossy(&kv.key()[self.prefix.len()..]).into_owned();
                entries.push((key, Self::decode(kv.key(), kv.value())?));
            }
            match response.kvs().last() {
                Some(last) if response.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => return Ok((entries, revision)),
            }
        }
    }
}

/// The end of the range of keys that start with `prefix` (etcd's prefix rule).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
