use std::sync::Arc;

use etcd_client::proto::{
    PbClusterService, PbMember, PbMemberAddRequest, PbMemberAddResponse, PbMemberListRequest,
    PbMemberListResponse, PbMemberPromoteRequest, PbMemberPromoteResponse, PbMemberRemoveRequest,
    PbMemberRemoveResponse, PbMemberUpdateRequest, PbMemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use crate::cluster::forward::{ForwardReply, Forwarded, MembershipChange};
use crate::cluster::member::Member;
use crate::node::Node;

pub struct ClusterApi {
    node: Arc<Node>,
}

impl ClusterApi {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// Has the leader make `change`; answers with the member it concerned.
    async fn change(&self, change: MembershipChange) -> Result<PbMember, Status> {
        if self.node.peer_url.is_none() {
            return Err(Status::failed_precondition(
                "chainfire: membership changes need cluster mode; restart this member with \
                 --cluster-mode (see docs/chainfire-cluster.md)",
            ));
        }
        match self.node.ask_leader(Forwarded::Membership(change)).await? {
            ForwardReply::Member { id, member } => {
                let (_, voters) = self.node.members();
                Ok(to_pb(id, &member, !voters.contains(&id)))
            }
            _ => Err(Status::internal("the leader answered a different request")),
        }
    }

    /// Every member, as this member knows the membership.
    fn member_list_now(&self) -> Vec<PbMember> {
        let (members, voters) = self.node.members();
        members
            .iter()
            .map(|(id, member)| to_pb(*id, member, !voters.contains(id)))
            .collect()
    }

    fn header(&self) -> Option<etcd_client::proto::PbResponseHeader> {
        self.node.header(self.node.store.revision())
    }
}

#[tonic::async_trait]
impl PbClusterService for ClusterApi {
    async fn member_add(
        &self,
        request: Request<PbMemberAddRequest>,
    ) -> Result<Response<PbMemberAddResponse>, Status> {
        let request = request.into_inner();
        let member = self
            .change(MembershipChange::Add {
                peer_urls: request.peer_ur_ls,
                is_learner: request.is_learner,
            })
            .await?;
        Ok(Response::new(PbMemberAddResponse {
            header: self.header(),
            member: Some(member),
            members: self.member_list_now(),
        }))
    }

    async fn member_remove(
        &self,
        request: Request<PbMemberRemoveRequest>,
    ) -> Result<Response<PbMemberRemoveResponse>, Status> {
        let id = request.into_inner().id;
        self.change(MembershipChange::Remove(id)).await?;
        Ok(Response::new(PbMemberRemoveResponse {
            header: self.header(),
            members: self.member_list_now(),
        }))
    }

    async fn member_update(
        &self,
        request: Request<PbMemberUpdateRequest>,
    ) -> Result<Response<PbMemberUpdateResponse>, Status> {
        let request = request.into_inner();
        self.change(MembershipChange::UpdatePeerUrls {
            id: request.id,
            peer_urls: request.peer_ur_ls,
        })
        .await?;
        Ok(Response::new(PbMemberUpdateResponse {
            header: self.header(),
            members: self.member_list_now(),
        }))
    }

    async fn member_list(
        &self,
        request: Request<PbMemberListRequest>,
    ) -> Result<Response<PbMemberListResponse>, Status> {
        if request.into_inner().linearizable {
            self.node.linearize().await?;
        }
        Ok(Response::new(PbMemberListResponse {
            header: self.header(),
            members: self.member_list_now(),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<PbMemberPromoteRequest>,
    ) -> Result<Response<PbMemberPromoteResponse>, Status> {
        let id = request.into_inner().id;
        self.change(MembershipChange::Promote(id)).await?;
        Ok(Response::new(PbMemberPromoteResponse {
            header: self.header(),
            members: self.member_list_now(),
        }))
    }
}

fn to_pb(id: u64, member: &Member, is_learner: bool) -> PbMember {
    PbMember {
        id,
        name: member.name.clone(),
        peer_ur_ls: member.peer_urls.clone(),
        client_ur_ls: member.client_urls.clone(),
        is_learner,
    }
}
