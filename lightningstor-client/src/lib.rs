//! The lightningstor admin API (gRPC on the spec's `grpc_addr`).
//!
//! lightningstor serves it; photonctl and other tools call it. Both sides use the code generated
//! here from `proto/admin.proto`, so they cannot drift apart.

/// Messages, the `admin_client::AdminClient` and the `admin_server::Admin` trait.
pub mod admin {
    tonic::include_proto!("photon.lightningstor.admin.v1");
}
