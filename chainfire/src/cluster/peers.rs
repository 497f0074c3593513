//! The client side of the peer port: openraft's network (replication, votes, snapshot chunks)
//! and requests forwarded to the leader, over one gRPC channel per peer URL.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, Endpoint};

use super::forward::{ForwardResult, Forwarded};
use super::member::Member;
use super::service::proto::Frame;
use super::service::proto::peer_client::PeerClient;
use crate::raft::TypeConfig;
use crate::store::db::{decode, encode};
use crate::store::types::Command;

/// The gRPC metadata key that carries the sender's cluster id.
pub const CLUSTER_ID_HEADER: &str = "chainfire-cluster-id";

pub fn cluster_id_value(cluster_id: u64) -> tonic::metadata::AsciiMetadataValue {
    // Hex digits are always valid metadata.
    format!("{cluster_id:x}")
        .parse()
        .unwrap_or_else(|_| unreachable!())
}

/// How long connecting to a peer may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Client payload in one AppendEntries call at most (one entry may alone exceed it).
const MAX_APPEND_BYTES: usize = 4 * 1024 * 1024;
/// HTTP/2 pings on idle peer connections, so that a connection a partition silently broke is
/// noticed in seconds rather than after TCP's retransmission timeout.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// gRPC channels to peers, by peer URL, shared by Raft and forwarding.
#[derive(Clone, Default)]
pub struct Peers {
    /// Calls leave from the peer address's IP when it is a specific one, so that firewall rules
    /// (and the fault-injection tests) can tell members apart by address.
    local_ip: Option<IpAddr>,
    /// Sent with every call; a member of another cluster refuses it.
    cluster_id: u64,
    channels: Arc<Mutex<HashMap<String, PeerClient<Channel>>>>,
    /// Peers whose last call failed in transport, so that a change is logged once.
    unreachable: Arc<Mutex<HashSet<String>>>,
}

/// Why a peer call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The peer refused the connection: the request did not leave this member.
    #[error("peer {url} refused the connection")]
    Refused { url: String },
    /// The request may or may not have reached the peer.
    #[error("peer {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("peer {url} sent an undecodable answer: {reason}")]
    Undecodable { url: String, reason: String },
}

impl Peers {
    pub fn new(peer_addr: SocketAddr, cluster_id: u64) -> Self {
        Self {
            local_ip: Some(peer_addr.ip()).filter(|ip| !ip.is_unspecified()),
            cluster_id,
            ..Self::default()
        }
    }

    fn client(&self, url: &str) -> Result<PeerClient<Channel>, CallError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = channels.get(url) {
            return Ok(client.clone());
        }
        let endpoint =
            Endpoint::from_shared(url.to_owned()).map_err(|err| CallError::Transport {
                url: url.to_owned(),
                reason: format!("bad peer URL: {err}"),
            })?;
        let channel = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .local_address(self.local_ip)
            .connect_lazy();
        let client = PeerClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        channels.insert(url.to_owned(), client.clone());
        Ok(client)
    }

    /// Sends one call and decodes its answer, within `timeout`.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        url: &str,
        kind: Rpc,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let mut client = self.client(url)?;
        let mut request = tonic::Request::new(Frame {
            payload: encode(request),
        });
        request.set_timeout(timeout);
        request
            .metadata_mut()
            .insert(CLUSTER_ID_HEADER, cluster_id_value(self.cluster_id));
        let transport = |reason: String| CallError::Transport {
            url: url.to_owned(),
            reason,
        };
        let answer = self.note_reachability(
            url,
            tokio::time::timeout(timeout, async {
                match kind {
                    Rpc::AppendEntries => client.append_entries(request).await,
                    Rpc::Vote => client.vote(request).await,
                    Rpc::InstallSnapshot => client.install_snapshot(request).await,
                    Rpc::Forward => client.forward(request).await,
                }
            })
            .await
            .map_err(|_| transport(format!("no answer within {timeout:?}")))
            .and_then(|answer| {
                answer.map_err(|status| {
                    if connection_refused(&status) {
                        CallError::Refused {
                            url: url.to_owned(),
                        }
                    } else {
                        transport(status.message().to_owned())
                    }
                })
            }),
        )?;
        decode(&answer.into_inner().payload, "peer answer").map_err(|err| CallError::Undecodable {
            url: url.to_owned(),
            reason: err.to_string(),
        })
    }

    /// Logs when `url` stops or starts answering.
    fn note_reachability<T>(
        &self,
        url: &str,
        outcome: Result<T, CallError>,
    ) -> Result<T, CallError> {
        let mut unreachable = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
        match &outcome {
            Ok(_) if unreachable.remove(url) => tracing::info!("peer {url} is reachable again"),
            Err(err) if unreachable.insert(url.to_owned()) => tracing::warn!(
                "{err}; retrying (check that the member runs and that its peer port is reachable)"
            ),
            _ => {}
        }
        outcome
    }

    /// Hands `request` to the member at `peer_url` (the leader).
    pub async fn forward(
        &self,
        peer_url: &str,
        request: &Forwarded,
        timeout: Duration,
    ) -> Result<ForwardResult, CallError> {
        self.call(peer_url, Rpc::Forward, request, timeout).await
    }
}

#[derive(Debug, Clone, Copy)]
enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Forward,
}

impl RaftNetworkFactory<TypeConfig> for Peers {
    type Network = PeerLink;

    async fn new_client(&mut self, target: u64, member: &Member) -> PeerLink {
        PeerLink {
            peers: self.clone(),
            target,
            url: member.peer_url().map(str::to_owned),
        }
    }
}

/// openraft's connection to one member.
pub struct PeerLink {
    peers: Peers,
    target: u64,
    url: Option<String>,
}

impl PeerLink {
    async fn raft_call<Req, Resp, E>(
        &self,
        kind: Rpc,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, Member, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(url) = &self.url else {
            return Err(RPCError::Unreachable(Unreachable::new(&NoPeerUrl(
                self.target,
            ))));
        };
        // Any failure is "unreachable": openraft then backs off instead of retrying at once.
        let answer: Result<Resp, RaftError<u64, E>> = self
            .peers
            .call(url, kind, request, option.hard_ttl())
            .await
            .map_err(|err| RPCError::Unreachable(Unreachable::new(&err)))?;
        answer.map_err(|err| RPCError::RemoteError(RemoteError::new(self.target, err)))
    }
}

/// Whether the call failed because the connection was refused, which can only happen before
/// anything was sent.
fn connection_refused(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// An entry's client payload in bytes, about what it takes on the wire.
fn entry_bytes(entry: &openraft::Entry<TypeConfig>) -> usize {
    match &entry.payload {
        openraft::EntryPayload::Normal(proposal) => {
            proposal.0.iter().map(Command::encoded_bytes).sum()
        }
        _ => 0,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("member {0:x} has no peer URL")]
struct NoPeerUrl(u64);

impl RaftNetwork<TypeConfig> for PeerLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        // openraft gives each call one heartbeat interval; a follower catching up gets many
        // entries at once, and batched entries can be large, so oversized calls ask openraft
        // to send fewer entries.
        let entries = rpc.entries.len() as u64;
        if entries > 1 {
            let bytes: usize = rpc.entries.iter().map(entry_bytes).sum();
            if bytes > MAX_APPEND_BYTES {
                return Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint((entries / 2).max(1)),
                ));
            }
        }
        self.raft_call(Rpc::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, Member, RaftError<u64, InstallSnapshotError>>,
    > {
        self.raft_call(Rpc::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        self.raft_call(Rpc::Vote, &rpc, &option).await
    }
}
