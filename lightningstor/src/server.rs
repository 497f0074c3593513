//! The S3 HTTP server: HTTP/1.1 and h2c on hyper, each request handed to s3s, timed and
//! counted by operation and status.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::Body;
use s3s::service::S3Service;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::OperationSlot;
use crate::metrics::S3Metrics;

/// Accepts connections until `stop`, then lets open requests finish.
pub async fn serve_s3(
    listener: TcpListener,
    service: S3Service,
    metrics: S3Metrics,
    stop: CancellationToken,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("S3 listener cannot accept a connection: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (service, metrics) = (service.clone(), metrics.clone());
        let handler = service_fn(move |request: Request<Incoming>| {
            let (service, metrics) = (service.clone(), metrics.clone());
            async move { Ok::<_, Infallible>(handle(&service, &metrics, peer, request).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), handler)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("S3 connection from {peer} ended: {err}");
            }
        });
    }
    graceful.shutdown().await;
}

async fn handle(
    service: &S3Service,
    metrics: &S3Metrics,
    peer: SocketAddr,
    mut request: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let slot = OperationSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let access_key = access_key_of(&request);
    let response = match service.call(request.map(Body::from)).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!("S3 {method} {path} from {peer} failed inside s3s: {err:?}");
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    };
    let status = response.status();
    metrics.answered(slot.name(), status.as_u16(), started.elapsed());
    if status == StatusCode::FORBIDDEN {
        // Signature failures and anonymous requests: worth one line each, never a secret.
        tracing::info!(
            "S3 {} {method} {path} from {peer} refused (403); access key {}",
            slot.name(),
            access_key.as_deref().unwrap_or("none (anonymous)")
        );
    }
    response
}

/// The access key a request claims, from the Authorization header or a presigned URL.
fn access_key_of(request: &Request<Incoming>) -> Option<String> {
    if let Some(header) = request.headers().get(hyper::header::AUTHORIZATION)
        && let Ok(header) = header.to_str()
    {
        let credential = header.split("Credential=").nth(1)?;
        return credential.split('/').next().map(str::to_owned);
    }
    let query = request.uri().query()?;
    let credential = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("X-Amz-Credential="))?;
    let decoded = percent_encoding::percent_decode_str(credential).decode_utf8_lossy();
    decoded.split('/').next().map(str::to_owned)
}
