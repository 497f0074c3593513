//! The data plane's threads: one single-threaded runtime per worker, and every listener bound
//! once per worker with SO_REUSEPORT, so the kernel spreads connections across workers and a
//! client connection, its request handling and its pooled backend connections all stay on one
//! thread (no cross-thread wake-ups on the hot path).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::runtime::Handle;

pub struct Workers {
    handles: Vec<Handle>,
}

impl Workers {
    /// Starts `count` worker threads (0 = one per core). They run for the life of the process;
    /// work spawned on them is tracked by the service's task tracker, which shutdown drains.
    pub fn start(count: usize) -> io::Result<Self> {
        let count = match count {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            count => count,
        };
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            std::thread::Builder::new()
                .name(format!("fiberlb-worker-{index}"))
                .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        }
        Ok(Self { handles })
    }

    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    pub fn count(&self) -> usize {
        self.handles.len()
    }
}

fn reuse_port_socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// `count` TCP listeners on one address; the first takes the port (an explicit 0 is resolved
/// to one port shared by all).
pub fn bind_tcp(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count {
        let socket = reuse_port_socket(bound, Type::STREAM, Protocol::TCP)?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        bound = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// `count` UDP sockets on one address; the kernel keeps each client on one of them.
pub fn bind_udp(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count {
        let socket: std::net::UdpSocket =
            reuse_port_socket(bound, Type::DGRAM, Protocol::UDP)?.into();
        bound = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}
