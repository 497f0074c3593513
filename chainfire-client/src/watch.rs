use std::collections::VecDeque;

use etcd_client::{EventType, GetOptions, WatchOptions, WatchStream};

use crate::typed::prefix_end;
use crate::{Backoff, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventKind {
    Put,
    Delete,
}

/// One change under the watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: WatchEventKind,
    /// The key without the prefix.
    pub key: String,
    /// Empty for a delete.
    pub value: Vec<u8>,
    pub revision: i64,
}

/// A watch on a prefix that survives chainfire restarts and lost connections: it reconnects
/// with backoff and resumes from the revision after the last event it returned.
pub struct PrefixWatch {
    client: etcd_client::Client,
    prefix: String,
    next_revision: i64,
    stream: Option<WatchStream>,
    pending: VecDeque<WatchEvent>,
}

impl PrefixWatch {
    pub(crate) async fn start(
        client: etcd_client::Client,
        prefix: &str,
        from_revision: Option<i64>,
    ) -> Result<Self, Error> {
        let next_revision = match from_revision {
            Some(revision) => revision,
            None => {
                // Pin "now" to a revision so that a reconnect before the first event resumes
                // from the right place.
                let options = GetOptions::new().with_prefix().with_count_only();
                let response = client.clone().get(prefix, Some(options)).await?;
                response.header().map_or(0, |header| header.revision()) + 1
            }
        };
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            next_revision,
            stream: None,
            pending: VecDeque::new(),
        })
    }

    /// The revision the next event will be at or after.
    pub fn next_revision(&self) -> i64 {
        self.next_revision
    }

    /// Waits for the next change. Fails only when the history to resume from is compacted.
    pub async fn next(&mut self) -> Result<WatchEvent, Error> {
        let mut backoff = Backoff::new();
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            let Some(stream) = self.stream.as_mut() else {
                let options = WatchOptions::new()
                    .with_range(prefix_end(self.prefix.as_bytes()))
                    .with_start_revision(self.next_revision);
                match self.client.watch(self.prefix.clone(), Some(options)).await {
                    Ok(stream) => self.stream = Some(stream),
                    Err(err) => {
                        tracing::debug!("watch on {} cannot start yet: {err}", self.prefix);
                        backoff.wait().await;
                    }
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(response)) => {
                    if response.canceled() {
                        self.stream = None;
                        if response.compact_revision() > 0 {
                            return Err(Error::Compacted {
                                requested: self.next_revision,
                                compacted: response.compact_revision(),
                            });
                        }
                        continue;
                    }
                    backoff = Backoff::new();
                    for event in response.events() {
                        let Some(kv) = event.kv() else { continue };
                        self.next_revision = kv.mod_revision() + 1;
                        self.pending.push_back(WatchEvent {
                            kind: match event.event_type() {
                                EventType::Put => WatchEventKind::Put,
                                EventType::Delete => WatchEventKind::Delete,
                            },
                            key: String::from_utf8_lossy(
                                kv.key().get(self.prefix.len()..).unwrap_or_default(),
                            )
                            .into_owned(),
                            value: kv.value().to_vec(),
                            revision: kv.mod_revision(),
                        });
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::debug!(
                        "watch on {} lost its stream; resuming from revision {}",
                        self.prefix,
                        self.next_revision
                    );
                    self.stream = None;
                    backoff.wait().await;
                }
            }
        }
    }
}
