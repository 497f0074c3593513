use std::pin::Pin;
use std::sync::Arc;

use etcd_client::proto::{
    PbAlarmRequest, PbAlarmResponse, PbDefragmentRequest, PbDefragmentResponse, PbDowngradeRequest,
    PbDowngradeResponse, PbHashKvRequest, PbHashKvResponse, PbHashRequest, PbHashResponse,
    PbMaintenanceService, PbMoveLeaderRequest, PbMoveLeaderResponse, PbSnapshotRequest,
    PbSnapshotResponse, PbStatusRequest, PbStatusResponse,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::node::Node;

/// The etcd release whose API chainfire serves; etcdctl and clients read it from Status.
pub const ETCD_COMPATIBLE_VERSION: &str = "3.5.0";

pub struct MaintenanceApi {
    node: Arc<Node>,
}

impl MaintenanceApi {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<PbSnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PbMaintenanceService for MaintenanceApi {
    async fn alarm(
        &self,
        _request: Request<PbAlarmRequest>,
    ) -> Result<Response<PbAlarmResponse>, Status> {
        // chainfire raises no alarms (no space quota yet): the list is always empty.
        Ok(Response::new(PbAlarmResponse {
            header: self.node.header(self.node.store.revision()),
            alarms: Vec::new(),
        }))
    }

    async fn status(
        &self,
        _request: Request<PbStatusRequest>,
    ) -> Result<Response<PbStatusResponse>, Status> {
        let _timer = self.node.api_metrics.time("Status");
        let metrics = self.node.raft.metrics().borrow().clone();
        let db_size = self.node.store.db().size_bytes() as i64;
        Ok(Response::new(PbStatusResponse {
            header: self.node.header(self.node.store.revision()),
            version: ETCD_COMPATIBLE_VERSION.into(),
            db_size,
            db_size_in_use: db_size,
            leader: metrics.current_leader.unwrap_or(0),
            raft_index: metrics.last_log_index.unwrap_or(0),
            raft_term: metrics.current_term,
            raft_applied_index: metrics.last_applied.map_or(0, |id| id.index),
            is_learner: self.node.is_learner(),
            ..Default::default()
        }))
    }

    async fn defragment(
        &self,
        _request: Request<PbDefragmentRequest>,
    ) -> Result<Response<PbDefragmentResponse>, Status> {
        let db = self.node.store.db().clone();
        tokio::task::spawn_blocking(move || {
            db.raw().compact_range::<&[u8], &[u8]>(None, None);
        })
        .await
        .map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(PbDefragmentResponse {
            header: self.node.header(self.node.store.revision()),
        }))
    }

    async fn hash(
        &self,
        _request: Request<PbHashRequest>,
    ) -> Result<Response<PbHashResponse>, Status> {
        Err(Status::unimplemented("chainfire: Hash is not supported"))
    }

    async fn hash_kv(
        &self,
        _request: Request<PbHashKvRequest>,
    ) -> Result<Response<PbHashKvResponse>, Status> {
        Err(Status::unimplemented(
            "chainfire: HashKV is not supported yet",
        ))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _request: Request<PbSnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(Status::unimplemented(
            "chainfire: snapshot download is not supported yet; back up the data directory instead",
        ))
    }

    async fn move_leader(
        &self,
        request: Request<PbMoveLeaderRequest>,
    ) -> Result<Response<PbMoveLeaderResponse>, Status> {
        self.node
            .move_leader(request.into_inner().target_id)
            .await?;
        Ok(Response::new(PbMoveLeaderResponse {
            header: self.node.header(self.node.store.revision()),
        }))
    }

    async fn downgrade(
        &self,
        _request: Request<PbDowngradeRequest>,
    ) -> Result<Response<PbDowngradeResponse>, Status> {
        Err(Status::unimplemented(
            "chainfire: Downgrade is not supported",
        ))
    }
}
