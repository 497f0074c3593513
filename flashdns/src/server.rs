//! Answering queries, and the UDP and TCP servers that carry them.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, RecordType};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::Catalog;
use crate::config::AllowedNet;
use crate::metrics::{DnsMetrics, Transport};
use crate::wire::{self, ClientEdns, Decoded, Request, ResponseHead, TCP_MESSAGE_SIZE, Written};

/// What to send back for one packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Nothing (the packet was not a query).
    Nothing,
    /// The message now in the output buffer.
    Message,
    /// A zone transfer: these messages, in order.
    Transfer(Vec<Vec<u8>>),
}

/// The query handler both transports share.
pub struct Dns {
    catalog: Arc<Catalog>,
    metrics: DnsMetrics,
    axfr_allow: Vec<AllowedNet>,
    max_udp_payload: u16,
}

impl Dns {
    pub fn new(
        catalog: Arc<Catalog>,
        metrics: DnsMetrics,
        axfr_allow: Vec<AllowedNet>,
        max_udp_payload: u16,
    ) -> Self {
        Self {
            catalog,
            metrics,
            axfr_allow,
            max_udp_payload,
        }
    }

    /// Answers one packet from `peer`, writing a single-message answer into `out`.
    pub fn handle(
        &self,
        packet: &[u8],
        transport: Transport,
        peer: IpAddr,
        out: &mut Vec<u8>,
    ) -> Reply {
        let started = Instant::now();
        let (qtype, reply, written) = match wire::decode(packet) {
            Decoded::Ignore => {
                self.metrics.dropped(transport);
                return Reply::Nothing;
            }
            Decoded::Reject { head, query, edns } => {
                let qtype = query.as_ref().map(|query| query.query_type());
                let written = wire::write_empty(out, head, query.as_ref(), self.edns_reply(edns));
                (qtype, Reply::Message, written)
            }
            Decoded::Query(request) => {
                let (reply, written) = self.answer(&request, transport, peer, out);
                (Some(request.qtype()), reply, written)
            }
        };
        self.metrics.answered(
            transport,
            qtype,
            written.rcode,
            written.truncated,
            started.elapsed(),
        );
        reply
    }

    fn edns_reply(&self, edns: Option<ClientEdns>) -> Option<(ClientEdns, u16)> {
        edns.map(|edns| (edns, self.max_udp_payload))
    }

    fn answer(
        &self,
        request: &Request,
        transport: Transport,
        peer: IpAddr,
        out: &mut Vec<u8>,
    ) -> (Reply, Written) {
        let refuse = |out: &mut Vec<u8>, rcode: ResponseCode| {
            let written = wire::write_empty(
                out,
                ResponseHead::for_request(request, rcode),
                Some(&request.query),
                self.edns_reply(request.edns),
            );
            (Reply::Message, written)
        };
        if request.query.query_class() != DNSClass::IN {
            return refuse(out, ResponseCode::Refused);
        }
        let zones = self.catalog.zones();
        let Some(served) = zones.find(request.qname()) else {
            return refuse(out, ResponseCode::Refused);
        };
        let Some(zone) = &served.zone else {
            return refuse(out, ResponseCode::ServFail);
        };
        let qtype = request.qtype();
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            if request.qname() != zone.origin() {
                return refuse(out, ResponseCode::NotAuth);
            }
            if transport == Transport::Udp {
                if qtype == RecordType::AXFR {
                    // AXFR is defined over TCP only (RFC 5936 4.2).
                    return refuse(out, ResponseCode::Refused);
                }
                // An IXFR too large for UDP is answered with the current SOA, which tells
                // the client to retry over TCP (RFC 1995 4).
                let answer = zone.answer(zone.origin(), RecordType::SOA);
                let limit = request.udp_limit(self.max_udp_payload);
                let written =
                    wire::write_answer(out, request, &answer, self.max_udp_payload, limit);
                return (Reply::Message, written);
            }
            if !self.axfr_allow.iter().any(|net| net.contains(peer)) {
                tracing::info!(
                    "zone transfer of {} refused for {peer}: not in standalone.features.axfr_allow",
                    zone.origin()
                );
                return refuse(out, ResponseCode::Refused);
            }
            tracing::info!(
                "zone transfer of {} (serial {}) to {peer}",
                zone.origin(),
                zone.serial()
            );
            let written = Written {
                rcode: ResponseCode::NoError,
                truncated: false,
            };
            return (
                Reply::Transfer(wire::write_transfer(request, zone)),
                written,
            );
        }
        let answer = zone.answer(request.qname(), qtype);
        let limit = match transport {
            Transport::Udp => request.udp_limit(self.max_udp_payload),
            Transport::Tcp => TCP_MESSAGE_SIZE,
        };
        let written = wire::write_answer(out, request, &answer, self.max_udp_payload, limit);
        (Reply::Message, written)
    }
}

/// Binds `count` UDP sockets to `addr` with SO_REUSEPORT, so the kernel spreads queries over
/// them (port 0 picks one free port for all).
pub fn bind_udp(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_port(true)?;
        // Room for bursts: a full receive buffer drops queries in the kernel. The kernel caps
        // this at net.core.rmem_max / wmem_max.
        socket.set_recv_buffer_size(UDP_SOCKET_BUFFER)?;
        socket.set_send_buffer_size(UDP_SOCKET_BUFFER)?;
        socket.bind(&addr.into())?;
        // Wake up now and then to notice shutdown.
        socket.set_read_timeout(Some(UDP_STOP_CHECK))?;
        let socket: std::net::UdpSocket = socket.into();
        addr = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

const UDP_SOCKET_BUFFER: usize = 4 << 20;

/// How often an idle UDP worker looks for shutdown.
const UDP_STOP_CHECK: Duration = Duration::from_millis(200);

/// Datagrams taken from (and answers handed to) the kernel per system call.
const UDP_BATCH: usize = 32;
/// Room for one query; a longer datagram is not a query we answer.
const UDP_QUERY_ROOM: usize = 4096;

/// Serves one UDP socket on the calling thread until `stop`. A blocking loop per socket, not an
/// async task: under load a worker goes straight from one batch to the next without the
/// scheduler's wake-ups, and recvmmsg/sendmmsg move up to `UDP_BATCH` datagrams per system
/// call, which otherwise costs more than answering.
pub fn serve_udp(socket: std::net::UdpSocket, dns: Arc<Dns>, stop: CancellationToken) {
    let fd = socket.as_raw_fd();
    let mut packets = vec![[0u8; UDP_QUERY_ROOM]; UDP_BATCH];
    let mut answers: Vec<Vec<u8>> = (0..UDP_BATCH).map(|_| Vec::with_capacity(1232)).collect();
    let mut receive_headers = MultiHeaders::<SockaddrStorage>::preallocate(UDP_BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(UDP_BATCH, None);
    let mut received: Vec<(usize, SockaddrStorage, bool)> = Vec::with_capacity(UDP_BATCH);
    while !stop.is_cancelled() {
        received.clear();
        {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> = packets
                .iter_mut()
                .map(|packet| [IoSliceMut::new(&mut packet[..])])
                .collect();
            match recvmmsg(
                fd,
                &mut receive_headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => received.extend(results.filter_map(|message| {
                    let truncated = message.flags.contains(MsgFlags::MSG_TRUNC);
                    message
                        .address
                        .map(|address| (message.bytes, address, truncated))
                })),
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(err) => {
                    // ICMP errors from earlier sends surface here on some systems; keep serving.
                    tracing::debug!("UDP receive: {err}");
                    continue;
                }
            }
        }
        let mut replies: Vec<(usize, SockaddrStorage)> = Vec::with_capacity(received.len());
        for (slot, &(length, address, truncated)) in received.iter().enumerate() {
            let Some(peer) = socket_addr(&address).filter(|peer| peer.port() != 0) else {
                continue;
            };
            if truncated {
                dns.metrics.dropped(Transport::Udp);
                continue;
            }
            let answer = &mut answers[slot];
            if dns.handle(&packets[slot][..length], Transport::Udp, peer.ip(), answer)
                == Reply::Message
            {
                replies.push((slot, address));
            }
        }
        if replies.is_empty() {
            continue;
        }
        let slices: Vec<[IoSlice<'_>; 1]> = replies
            .iter()
            .map(|&(slot, _)| [IoSlice::new(&answers[slot])])
            .collect();
        let addresses: Vec<Option<SockaddrStorage>> =
            replies.iter().map(|&(_, address)| Some(address)).collect();
        if let Err(err) = sendmmsg(
            fd,
            &mut send_headers,
            slices.iter(),
            addresses,
            [],
            MsgFlags::empty(),
        ) {
            tracing::debug!("UDP answers: {err}");
        }
    }
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

/// TCP limits: idle time per connection and open connections in all.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

pub async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Accepts TCP connections until `stop`; each is served on its own task.
pub async fn serve_tcp(
    listener: TcpListener,
    dns: Arc<Dns>,
    limits: TcpLimits,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let mut warned_full = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!("TCP accept: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            if !warned_full {
                tracing::warn!(
                    "{} TCP connections open (standalone.server.max_tcp_connections); closing new ones until some end",
                    limits.max_connections
                );
                warned_full = true;
            }
            continue;
        };
        warned_full = false;
        let dns = dns.clone();
        let stop = stop.clone();
        tracker.spawn(async move {
            tokio::select! {
                result = serve_connection(stream, peer, &dns, limits.idle_timeout) => {
                    if let Err(err) = result {
                        tracing::debug!("TCP connection from {peer}: {err}");
                    }
                }
                () = stop.cancelled() => {}
            }
            drop(permit);
        });
    }
}

/// Answers length-prefixed queries on one connection in the order they arrive (clients may
/// send several without waiting), closing it after `idle_timeout` without a complete query.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    dns: &Dns,
    idle_timeout: Duration,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut packet = Vec::new();
    let mut out = Vec::with_capacity(4096);
    loop {
        let read = async {
            let length = match reader.read_u16().await {
                Ok(length) => usize::from(length),
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(err) => return Err(err),
            };
            packet.resize(length, 0);
            reader.read_exact(&mut packet).await?;
            Ok(Some(()))
        };
        match tokio::time::timeout(idle_timeout, read).await {
            Err(_) | Ok(Ok(None)) => return Ok(()),
            Ok(Err(err)) => return Err(err),
            Ok(Ok(Some(()))) => {}
        }
        match dns.handle(&packet, Transport::Tcp, peer.ip(), &mut out) {
            Reply::Nothing => {}
            Reply::Message => write_framed(&mut writer, &out).await?,
            Reply::Transfer(messages) => {
                for message in &messages {
                    write_framed(&mut writer, message).await?;
                }
            }
        }
    }
}

async fn write_framed(writer: &mut (impl AsyncWriteExt + Unpin), message: &[u8]) -> io::Result<()> {
    let length =
        u16::try_from(message.len()).map_err(|_| io::Error::other("message over 64 KiB"))?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    writer.write_all(&framed).await
}
