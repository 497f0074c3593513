//! What PhotonCloud components need from chainfire (or any etcd v3 server), over the
//! `etcd-client` crate: a typed key-value store under a prefix, prefix watches that resume
//! where they left off after a reconnect, and service registration on a lease kept alive in the
//! background.

mod registration;
mod typed;
mod watch;

pub use etcd_client;
pub use registration::Registration;
pub use typed::{TypedKv, Versioned};
pub use watch::{PrefixWatch, WatchEvent, WatchEventKind};

use std::time::Duration;

/// How the client fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("chainfire: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("value of {key} is not valid JSON for this type: {reason}")]
    Decode { key: String, reason: String },
    #[error("value for {key} cannot be encoded: {reason}")]
    Encode { key: String, reason: String },
    #[error(
        "history from revision {requested} is compacted (up to {compacted}); list again and watch from the list's revision"
    )]
    Compacted { requested: i64, compacted: i64 },
}

/// A connection to chainfire, cheap to clone.
#[derive(Clone)]
pub struct Chainfire {
    client: etcd_client::Client,
}

/// Waits between attempts to reach chainfire again: from 100 ms doubling up to 5 s.
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Self(Duration::from_millis(100))
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

impl Chainfire {
    /// Connects to any of `endpoints` (`http://host:port` or `host:port`).
    pub async fn connect(endpoints: &[String]) -> Result<Self, Error> {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = etcd_client::Client::connect(endpoints, Some(options)).await?;
        Ok(Self { client })
    }

    /// The underlying etcd client, for anything this crate does not cover.
    pub fn etcd(&self) -> etcd_client::Client {
        self.client.clone()
    }

    /// JSON values of type `T` under `prefix`.
    pub fn typed<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> TypedKv<T> {
        TypedKv::new(self.client.clone(), prefix)
    }

    /// Changes under `prefix` from `from_revision` (or from now when `None`), resuming after
    /// reconnects without losing or repeating an event.
    pub async fn watch_prefix(
        &self,
        prefix: &str,
        from_revision: Option<i64>,
    ) -> Result<PrefixWatch, Error> {
        PrefixWatch::start(self.client.clone(), prefix, from_revision).await
    }

    /// Puts `key = value` on a lease of `ttl_secs` and keeps it alive until the registration is
    /// stopped (or dropped); re-registers if the lease is lost while chainfire was unreachable.
    pub async fn register(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl_secs: i64,
    ) -> Result<Registration, Error> {
        Registration::start(self.client.clone(), key, value, ttl_secs).await
    }
}
