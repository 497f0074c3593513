//! The server side of the peer port.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::peers::{CLUSTER_ID_HEADER, cluster_id_value};
use crate::node::Node;
use crate::server::without_nagle;
use crate::store::db::{decode, encode};

pub mod proto {
    tonic::include_proto!("chainfire.peer");
}

use proto::Frame;
use proto::peer_server::{Peer, PeerServer};

struct PeerApi {
    node: Arc<Node>,
}

impl PeerApi {
    /// The request's payload, if it comes from a member of this cluster: a member of another
    /// cluster (a reused address, a misconfigured member list) must not touch this one's log.
    fn open<T: DeserializeOwned>(&self, request: Request<Frame>, what: &str) -> Result<T, Status> {
        let ours = self.node.identity.cluster_id;
        let theirs = request.metadata().get(CLUSTER_ID_HEADER);
        if theirs != Some(&cluster_id_value(ours)) {
            let theirs = theirs
                .and_then(|value| value.to_str().ok())
                .unwrap_or("none");
            return Err(Status::failed_precondition(format!(
                "this member belongs to cluster {ours:x}, the caller to cluster {theirs}"
            )));
        }
        decode_frame(request, what)
    }
}

fn decode_frame<T: DeserializeOwned>(request: Request<Frame>, what: &str) -> Result<T, Status> {
    decode(&request.into_inner().payload, what).map_err(|err| {
        Status::invalid_argument(format!(
            "undecodable {what} (do all members run the same chainfire release?): {err}"
        ))
    })
}

fn frame<T: Serialize>(answer: &T) -> Response<Frame> {
    Response::new(Frame {
        payload: encode(answer),
    })
}

#[tonic::async_trait]
impl Peer for PeerApi {
    async fn append_entries(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let rpc = self.open(request, "append-entries request")?;
        Ok(frame(&self.node.raft.append_entries(rpc).await))
    }

    async fn vote(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let rpc = self.open(request, "vote request")?;
        Ok(frame(&self.node.raft.vote(rpc).await))
    }

    async fn install_snapshot(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let rpc = self.open(request, "snapshot chunk")?;
        Ok(frame(&self.node.raft.install_snapshot(rpc).await))
    }

    async fn forward(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let forwarded = self.open(request, "forwarded request")?;
        Ok(frame(&self.node.handle_forwarded(forwarded).await))
    }
}

/// Binds the peer address, naming it in the error.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| format!("cannot listen on {addr} for peers (set cluster.peer_addr): {err}"))
}

/// Serves the peer port on `listener` until `stop` is cancelled.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    stop: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(
            PeerServer::new(PeerApi { node })
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        )
        .serve_with_incoming_shutdown(without_nagle(listener), stop.cancelled_owned())
        .await
}
