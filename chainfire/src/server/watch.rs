//! Watch streams: many watches multiplexed on one bidirectional stream. Each watch keeps the
//! next revision it owes the client and catches up from the hub's memory or from storage, so
//! events arrive in revision order, never lost or duplicated.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use etcd_client::proto::{
    PbEvent, PbWatchRequest, PbWatchRequestUnion, PbWatchResponse, PbWatchService,
};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::node::Node;
use crate::store::mvcc::KeyRange;
use crate::store::types::Change;
use crate::store::watch_hub::Catchup;

const FILTER_NOPUT: i32 = 0;
const FILTER_NODELETE: i32 = 1;
const EVENT_PUT: i32 = 0;
const EVENT_DELETE: i32 = 1;
/// etcd's id for responses that concern the whole stream (progress).
const STREAM_WIDE_ID: i64 = -1;

pub struct WatchApi {
    node: Arc<Node>,
}

impl WatchApi {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<PbWatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PbWatchService for WatchApi {
    type WatchStream = ResponseStream;

    async fn watch(
        &self,
        request: Request<Streaming<PbWatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (sender, receiver) = mpsc::channel(64);
        let stream = WatchStream {
            node: self.node.clone(),
            sender,
            watches: BTreeMap::new(),
            next_id: 1,
        };
        tokio::spawn(stream.run(request.into_inner()));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

struct Watch {
    range: KeyRange,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    progress_notify: bool,
    /// The first revision not yet sent.
    next_revision: i64,
    last_sent: Instant,
}

struct WatchStream {
    node: Arc<Node>,
    sender: mpsc::Sender<Result<PbWatchResponse, Status>>,
    watches: BTreeMap<i64, Watch>,
    next_id: i64,
}

/// The client went away: stop serving the stream.
struct Gone;

impl WatchStream {
    async fn run(mut self, mut inbound: Streaming<PbWatchRequest>) {
        let mut progress = self.node.store.hub.subscribe();
        let mut ticker = tokio::time::interval(self.node.progress_notify_interval);
        loop {
            let step = tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(request)) => self.handle(request).await,
                    Ok(None) | Err(_) => Err(Gone),
                },
                changed = progress.changed() => match changed {
                    Ok(()) => self.deliver_all().await,
                    Err(_) => Err(Gone),
                },
                _ = ticker.tick() => self.notify_progress().await,
            };
            if step.is_err() {
                self.node
                    .api_metrics
                    .watches
                    .dec_by(self.watches.len() as i64);
                return;
            }
        }
    }

    /// Forgets a watch; `false` when there was none with that id.
    fn remove(&mut self, id: i64) -> bool {
        let removed = self.watches.remove(&id).is_some();
        if removed {
            self.node.api_metrics.watches.dec();
        }
        removed
    }

    async fn send(&self, response: PbWatchResponse) -> Result<(), Gone> {
        self.sender.send(Ok(response)).await.map_err(|_| Gone)
    }

    fn response(&self, watch_id: i64) -> PbWatchResponse {
        PbWatchResponse {
            header: self.node.header(self.node.store.hub.progress().revision),
            watch_id,
            ..Default::default()
        }
    }

    async fn handle(&mut self, request: PbWatchRequest) -> Result<(), Gone> {
        match request.request_union {
            Some(PbWatchRequestUnion::CreateRequest(create)) => {
                let id = if create.watch_id != 0 {
                    create.watch_id
                } else {
                    while self.watches.contains_key(&self.next_id) {
                        self.next_id += 1;
                    }
                    self.next_id
                };
                if self.watches.contains_key(&id) || id < 0 {
                    let mut refused = self.response(id);
                    refused.created = true;
                    refused.canceled = true;
                    refused.cancel_reason =
                        "mvcc: duplicate watch ID provided on the WatchStream".into();
                    return self.send(refused).await;
                }
                let now = self.node.store.hub.progress();
                let watch = Watch {
                    range: KeyRange::new(&create.key, &create.range_end),
                    no_put: create.filters.contains(&FILTER_NOPUT),
                    no_delete: create.filters.contains(&FILTER_NODELETE),
                    prev_kv: create.prev_kv,
                    progress_notify: create.progress_notify,
                    next_revision: if create.start_revision > 0 {
                        create.start_revision
                    } else {
                        now.revision + 1
                    },
                    last_sent: Instant::now(),
                };
                let mut created = self.response(id);
                created.created = true;
                self.send(created).await?;
                self.watches.insert(id, watch);
                self.node.api_metrics.watches.inc();
                self.deliver(id).await
            }
            Some(PbWatchRequestUnion::CancelRequest(cancel)) => {
                if self.remove(cancel.watch_id) {
                    let mut canceled = self.response(cancel.watch_id);
                    canceled.canceled = true;
                    self.send(canceled).await?;
                }
                Ok(())
            }
            Some(PbWatchRequestUnion::ProgressRequest(_)) => {
                let progress = self.response(STREAM_WIDE_ID);
                self.send(progress).await
            }
            None => Ok(()),
        }
    }

    async fn deliver_all(&mut self) -> Result<(), Gone> {
        let ids: Vec<i64> = self.watches.keys().copied().collect();
        for id in ids {
            self.deliver(id).await?;
        }
        Ok(())
    }

    /// Sends the watch everything from its next revision up to the latest one.
    async fn deliver(&mut self, id: i64) -> Result<(), Gone> {
        let progress = self.node.store.hub.progress();
        let Some(watch) = self.watches.get(&id) else {
            return Ok(());
        };
        if watch.next_revision <= progress.compact_revision {
            self.remove(id);
            let mut canceled = self.response(id);
            canceled.canceled = true;
            canceled.compact_revision = progress.compact_revision;
            canceled.cancel_reason =
                "etcdserver: mvcc: required revision has been compacted".into();
            return self.send(canceled).await;
        }
        if watch.next_revision > progress.revision {
            return Ok(());
        }
        let changes = match self
            .node
            .store
            .hub
            .since(watch.next_revision, progress.revision)
        {
            Catchup::Recent(changes) => changes,
            Catchup::FromStorage => match self
                .node
                .store
                .changes_between(watch.next_revision, progress.revision)
            {
                Ok(changes) => changes,
                Err(reason) => {
                    tracing::error!("watch {id} cannot read history: {reason}");
                    self.remove(id);
                    let mut canceled = self.response(id);
                    canceled.canceled = true;
                    canceled.cancel_reason = format!("chainfire: cannot read history: {reason}");
                    return self.send(canceled).await;
                }
            },
        };
        let events: Vec<PbEvent> = changes
            .iter()
            .filter(|change| wanted(watch, change))
            .map(|change| event(change, watch.prev_kv))
            .collect();
        if let Some(watch) = self.watches.get_mut(&id) {
            watch.next_revision = progress.revision + 1;
            if !events.is_empty() {
                watch.last_sent = Instant::now();
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        let mut response = self.response(id);
        response.header = self.node.header(progress.revision);
        response.events = events;
        self.send(response).await
    }

    /// An empty response to watches that asked for progress notifications and were quiet.
    async fn notify_progress(&mut self) -> Result<(), Gone> {
        let interval = self.node.progress_notify_interval;
        let quiet: Vec<i64> = self
            .watches
            .iter()
            .filter(|(_, watch)| watch.progress_notify && watch.last_sent.elapsed() >= interval)
            .map(|(id, _)| *id)
            .collect();
        for id in quiet {
            if let Some(watch) = self.watches.get_mut(&id) {
                watch.last_sent = Instant::now();
            }
            let response = self.response(id);
            self.send(response).await?;
        }
        Ok(())
    }
}

fn wanted(watch: &Watch, change: &Change) -> bool {
    watch.range.contains(&change.record.key)
        && !(change.record.deleted && watch.no_delete)
        && (change.record.deleted || !watch.no_put)
}

fn event(change: &Change, with_prev: bool) -> PbEvent {
    PbEvent {
        r#type: if change.record.deleted {
            EVENT_DELETE
        } else {
            EVENT_PUT
        },
        kv: Some(change.record.to_pb(false)),
        prev_kv: change
            .prev
            .as_ref()
            .filter(|_| with_prev)
            .map(|prev| prev.to_pb(false)),
    }
}
