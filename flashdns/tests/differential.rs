//! The same zone served by flashdns and by Knot DNS (Debian's `knot`), the same queries sent
//! to both, the answers compared section by section: rcode, flags, and every RRset.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

struct Knot {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Knot {
    async fn start(zone_file: &Path) -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let addr = free_dns_addr();
        let config = format!(
            "server:\n  listen: {ip}@{port}\n  rundir: {run}\n\
             database:\n  storage: {run}/db\n\
             zone:\n  - domain: example.test\n    file: {zone}\n\
             log:\n  - target: stderr\n    any: warning\n",
            ip = addr.ip(),
            port = addr.port(),
            run = dir.path().display(),
            zone = zone_file.display(),
        );
        let config_path = dir.path().join("knot.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("knotd")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("knotd runs (Debian package `knot`; scripts/test.sh installs it)");
        let knot = Self {
            addr,
            child,
            _dir: dir,
        };
        let probe = query_message(1, "example.test.", RecordType::SOA, None)
            .to_vec()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while udp_exchange(addr, &probe, Duration::from_millis(200))
            .await
            .is_none()
        {
            assert!(Instant::now() < deadline, "knotd did not come up");
        }
        knot
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything an answer says that two correct servers must agree on. Names are compared
/// without case (servers may compress against the question's spelling or not); the question
/// itself must come back exactly as asked.
fn comparable(message: &Message) -> String {
    let flags = &message.metadata;
    let mut text = format!(
        "rcode={:?} aa={} tc={} rd={} question={:?}\n",
        u16::from(flags.response_code),
        flags.authoritative,
        flags.truncation,
        flags.recursion_desired,
        message
            .queries
            .iter()
            .map(|query| query.to_string())
            .collect::<Vec<_>>(),
    );
    for (title, records) in [
        ("answer", &message.answers),
        ("authority", &message.authorities),
        ("additional", &message.additionals),
    ] {
        text.push_str(&format!("{title}: {:#?}\n", section(records)));
    }
    text
}

fn corpus() -> Vec<(String, RecordType, Option<u16>)> {
    let zone_names = [
        "example.test.",
        "ns1",
        "ns2",
        "mail",
        "web",
        "_443._tcp.web",
        "www",
        "chain1",
        "chain2",
        "ext",
        "dangling",
        "svc",
        "_sip._tcp",
        "sip",
        "ptr",
        "esc",
        "MixedCase",
        "*.wild",
        "exists.wild",
        "ent.wild",
        "a.ent.wild",
        "*.cnwild",
        "sub",
        "ns1.sub",
        "big",
        // Names that do not exist: plain, under wildcards, under an empty non-terminal,
        // under a delegation, and deeper than anything.
        "nope",
        "x.wild",
        "a.b.c.wild",
        "b.ent.wild",
        "foo.cnwild",
        "x.sub",
        "deep.x.sub",
        "a.b.c.d.nope",
        "WwW",
        "wEb",
        "Ns1.SuB",
    ];
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::NS,
        RecordType::SOA,
        RecordType::CNAME,
        RecordType::SRV,
        RecordType::PTR,
        RecordType::CAA,
        RecordType::SSHFP,
        RecordType::TLSA,
        RecordType::HTTPS,
        RecordType::DS,
        RecordType::ANY,
    ];
    let mut queries = Vec::new();
    for name in zone_names {
        let qname = if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.example.test.")
        };
        for rtype in types {
            queries.push((qname.clone(), rtype, Some(1232)));
        }
        queries.push((qname, RecordType::A, None));
    }
    // Outside the zone, truncation without EDNS, and a small EDNS buffer.
    queries.push(("www.example.org.".into(), RecordType::A, Some(1232)));
    queries.push(("big.example.test.".into(), RecordType::TXT, None));
    queries.push(("big.example.test.".into(), RecordType::TXT, Some(512)));
    queries
}

#[tokio::test]
async fn flashdns_and_knot_answer_alike() {
    let zone_file = test_zones().join("example.test.zone");
    let knot = Knot::start(&zone_file).await;
    let flashdns = Flashdns::start(&[]).await;
    let mut differences = Vec::new();
    let queries = corpus();
    for (id, (qname, qtype, payload)) in queries.iter().enumerate() {
        let message = query_message(id as u16, qname, *qtype, *payload);
        let theirs = comparable(&udp_query(knot.addr, &message).await);
        let ours = comparable(&udp_query(flashdns.dns_addr, &message).await);
        if theirs != ours {
            differences.push(format!(
                "{qname} {qtype} edns={payload:?}\nknot:\n{theirs}flashdns:\n{ours}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} answers differ:\n{}",
        differences.len(),
        queries.len(),
        differences.join("\n")
    );
}
