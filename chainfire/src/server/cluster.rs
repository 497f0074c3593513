use std::sync::Arc;

use etcd_client::proto::{
    PbClusterService, PbMember, PbMemberAddRequest, PbMemberAddResponse, PbMemberListRequest,
    PbMemberListResponse, PbMemberPromoteRequest, PbMemberPromoteResponse, PbMemberRemoveRequest,
    PbMemberRemoveResponse, PbMemberUpdateRequest, PbMemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use crate::node::Node;

pub struct ClusterApi {
    node: Arc<Node>,
}

impl ClusterApi {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

fn single_member_only() -> Status {
    Status::unimplemented(
        "chainfire: membership changes need the cluster transport, which this build does not have yet",
    )
}

#[tonic::async_trait]
impl PbClusterService for ClusterApi {
    async fn member_add(
        &self,
        _request: Request<PbMemberAddRequest>,
    ) -> Result<Response<PbMemberAddResponse>, Status> {
        Err(single_member_only())
    }

    async fn member_remove(
        &self,
        _request: Request<PbMemberRemoveRequest>,
    ) -> Result<Response<PbMemberRemoveResponse>, Status> {
        Err(single_member_only())
    }

    async fn member_update(
        &self,
        _request: Request<PbMemberUpdateRequest>,
    ) -> Result<Response<PbMemberUpdateResponse>, Status> {
        Err(single_member_only())
    }

    async fn member_list(
        &self,
        _request: Request<PbMemberListRequest>,
    ) -> Result<Response<PbMemberListResponse>, Status> {
        let metrics = self.node.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| PbMember {
                id: *id,
                name: if *id == self.node.identity.member_id {
                    self.node.name.clone()
                } else {
                    String::new()
                },
                peer_ur_ls: Vec::new(),
                client_ur_ls: vec![node.addr.clone()],
                is_learner: !voters.contains(id),
            })
            .collect();
        Ok(Response::new(PbMemberListResponse {
            header: self.node.header(self.node.store.revision()),
            members,
        }))
    }

    async fn member_promote(
        &self,
        _request: Request<PbMemberPromoteRequest>,
    ) -> Result<Response<PbMemberPromoteResponse>, Status> {
        Err(single_member_only())
    }
}
