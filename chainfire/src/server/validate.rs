//! Checks made before a request is proposed, with etcd's errors.

use std::collections::BTreeSet;

use etcd_client::proto::{PbTxnOpRequest, PbTxnRequest};
use prost::Message;
use tonic::Status;

use crate::store::mvcc::KeyRange;

pub fn size(request: &impl Message, max_request_bytes: usize) -> Result<(), Status> {
    if request.encoded_len() > max_request_bytes {
        return Err(Status::invalid_argument("etcdserver: request is too large"));
    }
    Ok(())
}

pub fn key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument("etcdserver: key is not provided"));
    }
    Ok(())
}

pub fn put(
    key: &[u8],
    value: &[u8],
    lease: i64,
    ignore_value: bool,
    ignore_lease: bool,
) -> Result<(), Status> {
    self::key(key)?;
    if ignore_value && !value.is_empty() {
        return Err(Status::invalid_argument("etcdserver: value is provided"));
    }
    if ignore_lease && lease != 0 {
        return Err(Status::invalid_argument("etcdserver: lease is provided"));
    }
    Ok(())
}

pub fn txn(request: &PbTxnRequest, max_txn_ops: usize) -> Result<(), Status> {
    if request.compare.len() > max_txn_ops
        || request.success.len() > max_txn_ops
        || request.failure.len() > max_txn_ops
    {
        return Err(Status::invalid_argument(
            "etcdserver: too many operations in txn request",
        ));
    }
    for compare in &request.compare {
        key(&compare.key)?;
    }
    for op in request.success.iter().chain(&request.failure) {
        match &op.request {
            Some(PbTxnOpRequest::RequestRange(range)) => key(&range.key)?,
            Some(PbTxnOpRequest::RequestPut(p)) => {
                put(&p.key, &p.value, p.lease, p.ignore_value, p.ignore_lease)?
            }
            Some(PbTxnOpRequest::RequestDeleteRange(delete)) => key(&delete.key)?,
            Some(PbTxnOpRequest::RequestTxn(nested)) => txn(nested, max_txn_ops)?,
            None => {
                return Err(Status::invalid_argument(
                    "etcdserver: a txn operation is empty",
                ));
            }
        }
    }
    branch_writes(&request.success)?;
    branch_writes(&request.failure)?;
    Ok(())
}

fn duplicate() -> Status {
    Status::invalid_argument("etcdserver: duplicate key given in txn request")
}

/// The keys a branch puts and the ranges it deletes; a key put twice, or put and deleted, in
/// one branch is refused (as etcd does).
fn branch_writes(
    ops: &[etcd_client::proto::PbTxnRequestOp],
) -> Result<(BTreeSet<Vec<u8>>, Vec<KeyRange>), Status> {
    let mut puts = BTreeSet::new();
    let mut deletes = Vec::new();
    for op in ops {
        match &op.request {
            Some(PbTxnOpRequest::RequestPut(put)) => {
                let first_time = puts.insert(put.key.clone());
                if !first_time {
                    return Err(duplicate());
                }
            }
            Some(PbTxnOpRequest::RequestDeleteRange(delete)) => {
                deletes.push(KeyRange::new(&delete.key, &delete.range_end));
            }
            Some(PbTxnOpRequest::RequestTxn(nested)) => {
                // Either nested branch may run: neither may touch what this branch puts.
                let (success_puts, success_deletes) = branch_writes(&nested.success)?;
                let (failure_puts, failure_deletes) = branch_writes(&nested.failure)?;
                let nested_puts: BTreeSet<Vec<u8>> =
                    success_puts.into_iter().chain(failure_puts).collect();
                if nested_puts.iter().any(|key| puts.contains(key)) {
                    return Err(duplicate());
                }
                puts.extend(nested_puts);
                deletes.extend(success_deletes);
                deletes.extend(failure_deletes);
            }
            _ => {}
        }
    }
    if deletes
        .iter()
        .any(|range| puts.iter().any(|key| range.contains(key)))
    {
        return Err(duplicate());
    }
    Ok((puts, deletes))
}
