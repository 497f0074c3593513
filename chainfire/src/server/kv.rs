use std::pin::Pin;
use std::sync::Arc;

use etcd_client::proto::{
    PbCompactionRequest, PbCompactionResponse, PbDeleteRequest, PbDeleteResponse, PbKvService,
    PbPutRequest, PbPutResponse, PbRangeRequest, PbRangeResponse, PbRangeStreamResponse,
    PbTxnRequest, PbTxnResponse,
};
use prost::Message;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::validate;
use crate::node::{Node, apply_status};
use crate::store::types::Command;

pub struct KvApi {
    node: Arc<Node>,
}

impl KvApi {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    async fn propose<M: Message + Default>(&self, command: Command) -> Result<(i64, M), Status> {
        let (revision, body) = self.node.propose(command).await?;
        let response = M::decode(body.as_slice())
            .map_err(|err| Status::internal(format!("undecodable state machine answer: {err}")))?;
        Ok((revision, response))
    }

    async fn read_range(&self, request: &PbRangeRequest) -> Result<PbRangeResponse, Status> {
        validate::size(request, self.node.max_request_bytes)?;
        validate::key(&request.key)?;
        if !request.serializable {
            self.node.linearize().await?;
        }
        let (revision, mut response) = self
            .node
            .store
            .read(|view| {
                view.range(request)
                    .map(|response| (view.revision(), response))
            })
            .map_err(|refusal| apply_status(&refusal))?;
        response.header = self.node.header(revision);
        Ok(response)
    }
}

/// Key-values per RangeStream chunk.
const RANGE_STREAM_CHUNK: usize = 1000;

type RangeChunks = Pin<Box<dyn Stream<Item = Result<PbRangeStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PbKvService for KvApi {
    async fn range(
        &self,
        request: Request<PbRangeRequest>,
    ) -> Result<Response<PbRangeResponse>, Status> {
        let _timer = self.node.api_metrics.time("Range");
        Ok(Response::new(self.read_range(&request.into_inner()).await?))
    }

    type RangeStreamStream = RangeChunks;

    /// The Range result in chunks; header, more and count come with the last one.
    async fn range_stream(
        &self,
        request: Request<PbRangeRequest>,
    ) -> Result<Response<Self::RangeStreamStream>, Status> {
        let _timer = self.node.api_metrics.time("RangeStream");
        let mut whole = self.read_range(&request.into_inner()).await?;
        let kvs = std::mem::take(&mut whole.kvs);
        let mut chunks: Vec<PbRangeResponse> = kvs
            .chunks(RANGE_STREAM_CHUNK)
            .map(|chunk| PbRangeResponse {
                kvs: chunk.to_vec(),
                ..Default::default()
            })
            .collect();
        match chunks.last_mut() {
            Some(last) => {
                last.header = whole.header;
                last.more = whole.more;
                last.count = whole.count;
            }
            None => chunks.push(whole),
        }
        let responses = chunks.into_iter().map(|chunk| {
            Ok(PbRangeStreamResponse {
                range_response: Some(chunk),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(responses))))
    }

    async fn put(&self, request: Request<PbPutRequest>) -> Result<Response<PbPutResponse>, Status> {
        let _timer = self.node.api_metrics.time("Put");
        let request = request.into_inner();
        validate::size(&request, self.node.max_request_bytes)?;
        validate::put(
            &request.key,
            &request.value,
            request.lease,
            request.ignore_value,
            request.ignore_lease,
        )?;
        let (revision, mut response): (i64, PbPutResponse) =
            self.propose(Command::Put(request.encode_to_vec())).await?;
        response.header = self.node.header(revision);
        Ok(Response::new(response))
    }

    async fn delete_range(
        &self,
        request: Request<PbDeleteRequest>,
    ) -> Result<Response<PbDeleteResponse>, Status> {
        let _timer = self.node.api_metrics.time("DeleteRange");
        let request = request.into_inner();
        validate::size(&request, self.node.max_request_bytes)?;
        validate::key(&request.key)?;
        let (revision, mut response): (i64, PbDeleteResponse) = self
            .propose(Command::DeleteRange(request.encode_to_vec()))
            .await?;
        response.header = self.node.header(revision);
        Ok(Response::new(response))
    }

    async fn txn(&self, request: Request<PbTxnRequest>) -> Result<Response<PbTxnResponse>, Status> {
        let _timer = self.node.api_metrics.time("Txn");
        let request = request.into_inner();
        validate::size(&request, self.node.max_request_bytes)?;
        validate::txn(&request, self.node.max_txn_ops)?;
        let (revision, mut response): (i64, PbTxnResponse) =
            self.propose(Command::Txn(request.encode_to_vec())).await?;
        response.header = self.node.header(revision);
        Ok(Response::new(response))
    }

    async fn compact(
        &self,
        request: Request<PbCompactionRequest>,
    ) -> Result<Response<PbCompactionResponse>, Status> {
        let _timer = self.node.api_metrics.time("Compact");
        let request = request.into_inner();
        let (revision, _) = self
            .node
            .propose(Command::Compact {
                revision: request.revision,
            })
            .await?;
        tracing::info!(
            "compacted history at and below revision {}",
            request.revision
        );
        Ok(Response::new(PbCompactionResponse {
            header: self.node.header(revision),
        }))
    }
}
