use std::pin::Pin;
use std::sync::Arc;

use etcd_client::proto::{
    PbLeaseGrantRequest, PbLeaseGrantResponse, PbLeaseKeepAliveRequest, PbLeaseKeepAliveResponse,
    PbLeaseLeasesRequest, PbLeaseLeasesResponse, PbLeaseRevokeRequest, PbLeaseRevokeResponse,
    PbLeaseService, PbLeaseStatus, PbLeaseTimeToLiveRequest, PbLeaseTimeToLiveResponse,
};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::lease::MAX_LEASE_TTL;
use crate::node::Node;
use crate::store::types::Command;

pub struct LeaseApi {
    node: Arc<Node>,
}

impl LeaseApi {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// A positive id no lease has.
    fn fresh_id(&self) -> i64 {
        let index = self.node.store.index_guard();
        let mut rng = rand::rng();
        loop {
            let id = rng.random_range(1..i64::MAX);
            if !index.leases.contains_key(&id) {
                return id;
            }
        }
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<PbLeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PbLeaseService for LeaseApi {
    async fn lease_grant(
        &self,
        request: Request<PbLeaseGrantRequest>,
    ) -> Result<Response<PbLeaseGrantResponse>, Status> {
        let _timer = self.node.api_metrics.time("LeaseGrant");
        let request = request.into_inner();
        if request.ttl > MAX_LEASE_TTL {
            return Err(Status::out_of_range("etcdserver: too large lease TTL"));
        }
        let ttl = request.ttl.max(self.node.min_lease_ttl);
        let id = if request.id == 0 {
            self.fresh_id()
        } else {
            request.id
        };
        let (revision, _) = self.node.propose(Command::LeaseGrant { id, ttl }).await?;
        Ok(Response::new(PbLeaseGrantResponse {
            header: self.node.header(revision),
            id,
            ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        request: Request<PbLeaseRevokeRequest>,
    ) -> Result<Response<PbLeaseRevokeResponse>, Status> {
        let _timer = self.node.api_metrics.time("LeaseRevoke");
        let id = request.into_inner().id;
        let (revision, _) = self.node.propose(Command::LeaseRevoke { id }).await?;
        Ok(Response::new(PbLeaseRevokeResponse {
            header: self.node.header(revision),
        }))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<PbLeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut inbound = request.into_inner();
        let node = self.node.clone();
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok(Some(request)) = inbound.message().await {
                // An unknown (expired or revoked) lease is answered with TTL 0, as etcd does.
                let response =
                    node.keep_lease_alive(request.id)
                        .await
                        .map(|ttl| PbLeaseKeepAliveResponse {
                            header: node.header(node.store.revision()),
                            id: request.id,
                            ttl: ttl.unwrap_or(0),
                        });
                if sender.send(response).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<PbLeaseTimeToLiveRequest>,
    ) -> Result<Response<PbLeaseTimeToLiveResponse>, Status> {
        let _timer = self.node.api_metrics.time("LeaseTimeToLive");
        let request = request.into_inner();
        let remaining = self.node.lease_remaining(request.id).await?;
        let revision = self.node.store.revision();
        let Some(remaining) = remaining else {
            return Ok(Response::new(PbLeaseTimeToLiveResponse {
                header: self.node.header(revision),
                id: request.id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            }));
        };
        let keys = if request.keys {
            self.node
                .store
                .index_guard()
                .lease_keys
                .get(&request.id)
                .map(|keys| keys.iter().cloned().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(Response::new(PbLeaseTimeToLiveResponse {
            header: self.node.header(revision),
            id: request.id,
            ttl: remaining.ttl,
            granted_ttl: remaining.granted_ttl,
            keys,
        }))
    }

    async fn lease_leases(
        &self,
        _request: Request<PbLeaseLeasesRequest>,
    ) -> Result<Response<PbLeaseLeasesResponse>, Status> {
        let _timer = self.node.api_metrics.time("LeaseLeases");
        let index = self.node.store.index_guard();
        Ok(Response::new(PbLeaseLeasesResponse {
            header: self.node.header(index.revision),
            leases: index
                .leases
                .keys()
                .map(|id| PbLeaseStatus { id: *id })
                .collect(),
        }))
    }
}
