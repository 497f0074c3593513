//! A chainfire cluster of real processes for fault tests. Member `i` lives on its own loopback
//! address 127.B.(10+i).1, B chosen per cluster; other members reach its peer port through a
//! fault-injecting proxy, and its own peer calls leave from its address, so the proxies can cut
//! any member off in both directions.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::Client;
use tokio::net::TcpStream;
use tokio::sync::watch;

pub struct Member {
    pub name: String,
    pub ip: IpAddr,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Where the member itself listens for peers.
    pub peer_addr: SocketAddr,
    /// Where other members reach it (its proxy).
    pub proxy: FaultProxy,
    pub data_dir: PathBuf,
    /// Cluster flags it starts with (bootstrap, join, or cluster mode alone).
    pub flags: Vec<String>,
    extra: Vec<String>,
    child: Option<Child>,
}

/// A block of loopback addresses 127.B.*.* for one cluster: tests run in parallel, as
/// processes or threads, and one's member must never meet another's. A listener on the
/// block's claim address, held while the cluster lives, keeps others from taking it.
struct Block {
    number: u8,
    _claim: TcpListener,
}

impl Block {
    fn claim() -> Block {
        let start = std::process::id() % 250;
        (0..250)
            .map(|k| 1 + ((start + k) % 250) as u8)
            .find_map(|number| {
                TcpListener::bind((Ipv4Addr::new(127, number, 9, 1), CLAIM_PORT))
                    .ok()
                    .map(|claim| Block {
                        number,
                        _claim: claim,
                    })
            })
            .expect("a free block of loopback addresses")
    }

    /// Member `index`'s own address.
    fn member_ip(&self, index: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, self.number, 10 + index as u8, 1))
    }
}

/// Where a cluster holds its block's claim: 127.B.9.1 on this port.
const CLAIM_PORT: u16 = 21378;

/// Fixed ports on each member's own address, below the kernel's ephemeral range. Ports found
/// free by binding port 0 raced with the member's own peer calls, which leave from its address
/// on ephemeral ports: one took the admin port before the member bound it.
const CLIENT_PORT: u16 = 21379;
const PEER_PORT: u16 = 21380;
const ADMIN_PORT: u16 = 21381;
const PROXY_PORT: u16 = 21382;

impl Member {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.client_addr)
    }

    pub fn peer_url(&self) -> String {
        format!("http://{}", self.proxy.listen)
    }

    /// The member's etcd member id and its cluster's id, from Status.
    pub async fn ids(&self) -> (u64, u64) {
        let status = self.client().await.status().await.unwrap();
        let header = status.header().unwrap();
        (header.member_id(), header.cluster_id())
    }

    pub async fn client(&self) -> Client {
        Client::connect([self.endpoint()], None).await.unwrap()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chainfire"));
        command
            .arg("--component-id")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--client-addr")
            .arg(self.client_addr.to_string())
            .arg("--peer-addr")
            .arg(self.peer_addr.to_string())
            .arg("--set")
            .arg(format!("cluster.advertise_peer_url={}", self.peer_url()))
            .arg("--set")
            .arg(format!("photon.metrics.endpoint={}", self.admin_addr))
            .arg("--log-level")
            .arg("warn")
            .args(&self.flags)
            .stdin(Stdio::null());
        for setting in &self.extra {
            command.arg("--set").arg(setting);
        }
        command
    }

    fn spawn(&mut self) {
        self.child = Some(self.command().spawn().expect("chainfire binary starts"));
    }

    /// Waits until the member answers Status and knows a leader.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut client) = Client::connect([self.endpoint()], None).await
                && let Ok(status) = client.status().await
                && status.leader() != 0
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Some(exit) = child.try_wait().unwrap()
            {
                panic!("member {} exited while starting: {exit}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "member {} did not come up",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Waits for the process to exit by itself; its exit status.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "member {} still runs", self.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts on the same data directory and addresses and waits for it to exit, for a member
    /// that must refuse to start.
    pub async fn start_expecting_refusal(&self) -> std::process::Output {
        let mut command = tokio::process::Command::from(self.command());
        command.stderr(Stdio::piped()).kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .unwrap_or_else(|_| panic!("member {} started instead of refusing", self.name))
            .unwrap()
    }

    /// Starts again on the same data directory and addresses.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready().await;
    }

    /// The member's `photon_chainfire_<name>` gauge.
    pub async fn gauge(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.admin_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let metric = format!("photon_chainfire_{name} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&metric))
            .unwrap_or_else(|| panic!("no {metric} in /metrics"))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Cluster {
    pub members: Vec<Member>,
    block: Block,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Cluster {
    fn empty(extra: &[&str]) -> Self {
        Self {
            members: Vec::new(),
            block: Block::claim(),
            dir: tempfile::TempDir::new().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `size` members bootstrapped together; `extra` are `--set KEY=VALUE` settings for all.
    pub async fn bootstrap(size: usize, extra: &[&str]) -> Self {
        let mut cluster = Self::empty(extra);
        for _ in 0..size {
            cluster.prepare_member().await;
        }
        let initial: Vec<String> = cluster
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect();
        for member in &mut cluster.members {
            member.flags = vec![
                "--bootstrap-cluster".into(),
                "--initial-cluster".into(),
                initial.join(","),
            ];
            member.spawn();
        }
        for member in &mut cluster.members {
            member.wait_ready().await;
        }
        cluster
    }

    /// One member started with `flags` (none: standalone).
    pub async fn single(flags: &[&str], extra: &[&str]) -> Self {
        let mut cluster = Self::empty(extra);
        let member = cluster.prepare_member().await;
        member.flags = flags.iter().map(|s| s.to_string()).collect();
        member.spawn();
        member.wait_ready().await;
        cluster
    }

    /// Adds a member (not started) with its addresses and proxy.
    async fn prepare_member(&mut self) -> &mut Member {
        let index = self.members.len();
        let ip = self.block.member_ip(index);
        let peer_addr = SocketAddr::new(ip, PEER_PORT);
        let proxy = FaultProxy::start(SocketAddr::new(ip, PROXY_PORT), peer_addr).await;
        let name = format!("m{index}");
        self.members.push(Member {
            data_dir: self.dir.path().join(&name),
            name,
            ip,
            client_addr: SocketAddr::new(ip, CLIENT_PORT),
            admin_addr: SocketAddr::new(ip, ADMIN_PORT),
            peer_addr,
            proxy,
            flags: Vec::new(),
            extra: self.extra.clone(),
            child: None,
        });
        self.members.last_mut().unwrap()
    }

    /// Starts a new member that joins through the running members; returns its index.
    pub async fn join(&mut self) -> usize {
        let endpoints: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.is_running())
            .map(|m| m.endpoint())
            .collect();
        let member = self.prepare_member().await;
        member.flags = vec!["--join".into(), endpoints.join(",")];
        member.spawn();
        member.wait_ready().await;
        self.members.len() - 1
    }

    /// Client endpoints of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// The index of the member that `among` members agree leads, waiting for one.
    pub async fn leader_among(&self, among: &[usize]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut leaders = HashSet::new();
            for &i in among {
                let leader = match self.members[i].client().await.status().await {
                    Ok(status) => status.leader(),
                    Err(_) => 0,
                };
                leaders.insert(leader);
            }
            if leaders.len() == 1 {
                let leader = *leaders.iter().next().unwrap();
                if let Some(index) = self.index_of(leader).await
                    && among.contains(&index)
                {
                    return index;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {among:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn leader(&self) -> usize {
        let running: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].is_running())
            .collect();
        self.leader_among(&running).await
    }

    /// The index of the member with etcd id `id`.
    pub async fn index_of(&self, id: u64) -> Option<usize> {
        for (index, member) in self.members.iter().enumerate() {
            if member.is_running()
                && let Ok(status) = member.client().await.status().await
                && status.header().map(|h| h.member_id()) == Some(id)
            {
                return Some(index);
            }
        }
        None
    }

    /// Cuts member `index` off from every other member, both ways.
    pub fn isolate(&self, index: usize) {
        let others: Vec<IpAddr> = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, m)| m.ip)
            .collect();
        self.members[index].proxy.block(&others);
        for (i, member) in self.members.iter().enumerate() {
            if i != index {
                member.proxy.block(&[self.members[index].ip]);
            }
        }
    }

    pub fn heal(&self) {
        for member in &self.members {
            member.proxy.block(&[]);
        }
    }
}

/// A TCP proxy that drops connections from blocked source addresses, including open ones.
pub struct FaultProxy {
    pub listen: SocketAddr,
    blocked: watch::Sender<Arc<HashSet<IpAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let (blocked, _) = watch::channel(Arc::new(HashSet::new()));
        let rules = blocked.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, source)) = listener.accept().await else {
                    return;
                };
                let mut rules = rules.subscribe();
                if rules.borrow().contains(&source.ip()) {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (mut inbound, mut outbound) = (inbound, outbound);
                    let cut = async {
                        loop {
                            if rules.changed().await.is_err()
                                || rules.borrow().contains(&source.ip())
                            {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = cut => {}
                    }
                });
            }
        });
        Self {
            listen,
            blocked,
            task,
        }
    }

    /// Replaces the set of blocked source addresses (empty: let everything through).
    pub fn block(&self, sources: &[IpAddr]) {
        self.blocked
            .send_replace(Arc::new(sources.iter().copied().collect()));
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
