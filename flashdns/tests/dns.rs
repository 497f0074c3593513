//! The real flashdns binary answering real DNS clients: hickory's client over UDP and TCP, and
//! raw packets for what clients never send.

mod common;

use std::time::Duration;

use common::*;
use hickory_net::client::ClientHandle;
use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio_stream::StreamExt;

/// What one answer must hold: rcode, AA, and each section as `name ttl type data` lines.
struct Expect {
    qname: &'static str,
    qtype: RecordType,
    rcode: ResponseCode,
    authoritative: bool,
    answer: &'static [&'static str],
    authority: &'static [&'static str],
    additional: &'static [&'static str],
}

const SOA_NEGATIVE: &str = "example.test. 300 SOA ns1.example.test. hostmaster.example.test. 2024010101 3600 1800 604800 300";

fn cases() -> Vec<Expect> {
    use RecordType::*;
    use ResponseCode::*;
    let e = |qname, qtype, rcode, authoritative, answer, authority, additional| Expect {
        qname,
        qtype,
        rcode,
        authoritative,
        answer,
        authority,
        additional,
    };
    vec![
        e(
            "web.example.test.",
            A,
            NoError,
            true,
            &["web.example.test. 3600 A 192.0.2.80"],
            &[],
            &[],
        ),
        // NODATA: the name exists, the type does not; SOA with the SOA-minimum TTL.
        e(
            "web.example.test.",
            MX,
            NoError,
            true,
            &[],
            &[SOA_NEGATIVE],
            &[],
        ),
        e(
            "nope.example.test.",
            A,
            NXDomain,
            true,
            &[],
            &[SOA_NEGATIVE],
            &[],
        ),
        // A CNAME chain followed inside the zone.
        e(
            "chain1.example.test.",
            A,
            NoError,
            true,
            &[
                "chain1.example.test. 3600 CNAME chain2.example.test.",
                "chain2.example.test. 3600 CNAME www.example.test.",
                "web.example.test. 3600 A 192.0.2.80",
                "www.example.test. 3600 CNAME web.example.test.",
            ],
            &[],
            &[],
        ),
        // A CNAME out of the zone is answered as it stands; one to a missing name is NXDOMAIN.
        e(
            "ext.example.test.",
            A,
            NoError,
            true,
            &["ext.example.test. 3600 CNAME www.example.org."],
            &[],
            &[],
        ),
        e(
            "dangling.example.test.",
            A,
            NXDomain,
            true,
            &["dangling.example.test. 3600 CNAME missing.example.test."],
            &[SOA_NEGATIVE],
            &[],
        ),
        // Wildcards: synthesis at any depth, blocked by an existing name and by an empty
        // non-terminal.
        e(
            "x.wild.example.test.",
            A,
            NoError,
            true,
            &["x.wild.example.test. 3600 A 192.0.2.100"],
            &[],
            &[],
        ),
        e(
            "a.b.wild.example.test.",
            TXT,
            NoError,
            true,
            &["a.b.wild.example.test. 3600 TXT from the wildcard"],
            &[],
            &[],
        ),
        e(
            "x.wild.example.test.",
            MX,
            NoError,
            true,
            &[],
            &[SOA_NEGATIVE],
            &[],
        ),
        e(
            "exists.wild.example.test.",
            TXT,
            NoError,
            true,
            &[],
            &[SOA_NEGATIVE],
            &[],
        ),
        e(
            "ent.wild.example.test.",
            A,
            NoError,
            true,
            &[],
            &[SOA_NEGATIVE],
            &[],
        ),
        e(
            "b.ent.wild.example.test.",
            A,
            NXDomain,
            true,
            &[],
            &[SOA_NEGATIVE],
            &[],
        ),
        e(
            "foo.cnwild.example.test.",
            AAAA,
            NoError,
            true,
            &[
                "foo.cnwild.example.test. 3600 CNAME web.example.test.",
                "web.example.test. 3600 AAAA 2001:db8::80",
            ],
            &[],
            &[],
        ),
        // A referral: AA clear, the child's NS, glue for the in-zone server.
        e(
            "host.sub.example.test.",
            A,
            NoError,
            false,
            &[],
            &[
                "sub.example.test. 3600 NS ns.elsewhere.example.",
                "sub.example.test. 3600 NS ns1.sub.example.test.",
            ],
            &["ns1.sub.example.test. 3600 A 192.0.2.200"],
        ),
        // DS is the parent's: answered with authority at the cut.
        e(
            "sub.example.test.",
            DS,
            NoError,
            true,
            &[
                "sub.example.test. 3600 DS 12345 13 2 3E4A5CF2D6C1C4AC28C6A8E3E7F3B1B39D0C7A4E5F6A7B8C9D0E1F2A3B4C5D6E",
            ],
            &[],
            &[],
        ),
        // Additional addresses for MX and SRV targets.
        e(
            "example.test.",
            MX,
            NoError,
            true,
            &["example.test. 3600 MX 10 mail.example.test."],
            &[],
            &["mail.example.test. 3600 A 192.0.2.25"],
        ),
        e(
            "_sip._tcp.example.test.",
            SRV,
            NoError,
            true,
            &["_sip._tcp.example.test. 3600 SRV 10 60 5060 sip.example.test."],
            &[],
            &["sip.example.test. 3600 A 192.0.2.60"],
        ),
        e(
            "mixedcase.example.test.",
            A,
            NoError,
            true,
            &["mixedcase.example.test. 3600 A 192.0.2.7"],
            &[],
            &[],
        ),
        e(
            "example.test.",
            CAA,
            NoError,
            true,
            &["example.test. 3600 CAA 0 issue \"letsencrypt.org\""],
            &[],
            &[],
        ),
        e(
            "svc.example.test.",
            HTTPS,
            NoError,
            true,
            &["svc.example.test. 3600 HTTPS 1 . alpn=h2,"],
            &[],
            &[],
        ),
        e(
            "esc.example.test.",
            TXT,
            NoError,
            true,
            &["esc.example.test. 3600 TXT a \"quoted\" string; not a commentsecond string"],
            &[],
            &[],
        ),
        // Not ours: REFUSED, not authoritative.
        e("www.example.org.", A, Refused, false, &[], &[], &[]),
    ]
}

fn check(expect: &Expect, message: &Message) {
    let what = format!("{} {}", expect.qname, expect.qtype);
    assert_eq!(
        message.metadata.response_code, expect.rcode,
        "{what}: rcode"
    );
    assert_eq!(
        message.metadata.authoritative, expect.authoritative,
        "{what}: AA"
    );
    assert!(!message.metadata.truncation, "{what}: TC");
    let expected = |lines: &[&str]| {
        let mut lines: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
        lines.sort();
        lines
    };
    assert_eq!(
        section(&message.answers),
        expected(expect.answer),
        "{what}: answer"
    );
    assert_eq!(
        section(&message.authorities),
        expected(expect.authority),
        "{what}: authority"
    );
    assert_eq!(
        section(&message.additionals),
        expected(expect.additional),
        "{what}: additional"
    );
}

#[tokio::test]
async fn answers_follow_the_authoritative_rules_over_udp_and_tcp() {
    let server = Flashdns::start(&[]).await;
    let mut udp = server.udp_client().await;
    let mut tcp = server.tcp_client().await;
    for expect in cases() {
        check(&expect, &ask(&mut udp, expect.qname, expect.qtype).await);
        check(&expect, &ask(&mut tcp, expect.qname, expect.qtype).await);
    }
}

#[tokio::test]
async fn names_match_whatever_their_case_and_the_question_keeps_its_own() {
    let server = Flashdns::start(&[]).await;
    let answer = udp_query(
        server.dns_addr,
        &query_message(7, "WwW.ExAmPlE.TeSt.", RecordType::A, None),
    )
    .await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer.queries[0].name().to_string(), "WwW.ExAmPlE.TeSt.");
    assert_eq!(answer.answers[0].name.to_string(), "WwW.ExAmPlE.TeSt.");
    assert_eq!(answer.answers.len(), 2, "CNAME and its target");
}

#[tokio::test]
async fn an_answer_too_big_for_udp_is_cut_at_an_rrset_and_flagged_for_tcp() {
    let server = Flashdns::start(&[]).await;
    // Without EDNS the limit is 512 bytes: the ten TXT records do not fit, so none are sent.
    let small = udp_query(
        server.dns_addr,
        &query_message(1, "big.example.test.", RecordType::TXT, None),
    )
    .await;
    assert!(small.metadata.truncation);
    assert!(small.answers.is_empty(), "no partial RRset");
    // EDNS with room: all ten, no TC, and our OPT says what we accept.
    let roomy = udp_query(
        server.dns_addr,
        &query_message(2, "big.example.test.", RecordType::TXT, Some(4096)),
    )
    .await;
    assert!(!roomy.metadata.truncation);
    assert_eq!(roomy.answers.len(), 10);
    assert_eq!(roomy.edns.as_ref().unwrap().max_payload(), 1232);
    // hickory's client retries over TCP like a resolver would, and TCP carries it all.
    let mut tcp = server.tcp_client().await;
    assert_eq!(
        ask(&mut tcp, "big.example.test.", RecordType::TXT)
            .await
            .answers
            .len(),
        10
    );
    // The additional section is optional: it is dropped before TC is set.
    let mx = udp_query(
        server.dns_addr,
        &query_message(3, "example.test.", RecordType::MX, None),
    )
    .await;
    assert!(!mx.metadata.truncation);
    assert!(
        server
            .metrics()
            .await
            .contains("\nphoton_flashdns_responses_truncated_total 1")
    );
}

#[tokio::test]
async fn queries_pipelined_on_one_tcp_connection_are_answered_in_order() {
    let server = Flashdns::start(&[]).await;
    let queries: Vec<Message> = (0..20)
        .map(|id| {
            let name = if id % 2 == 0 {
                "web.example.test."
            } else {
                "nope.example.test."
            };
            query_message(id, name, RecordType::A, None)
        })
        .collect();
    let answers = tcp_pipeline(server.dns_addr, &queries, queries.len()).await;
    for (id, answer) in answers.iter().enumerate() {
        assert_eq!(answer.metadata.id, id as u16);
        let expected = if id % 2 == 0 {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        assert_eq!(answer.metadata.response_code, expected);
    }
}

#[tokio::test]
async fn idle_tcp_connections_are_closed() {
    let server = Flashdns::start(&["standalone.server.tcp_idle_timeout_sec=1"]).await;
    let mut stream = tokio::net::TcpStream::connect(server.dns_addr)
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    use tokio::io::AsyncReadExt;
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "the server closed the idle connection: {closed:?}"
    );
}

#[tokio::test]
async fn zone_transfers_go_only_to_allowed_addresses() {
    let server = Flashdns::start(&["standalone.features.axfr_allow=127.0.0.1"]).await;
    let mut client = server.tcp_client().await;
    let mut transfer = client.zone_transfer(name("example.test."), None);
    let mut records = Vec::new();
    while let Some(response) = transfer.next().await {
        let message = response.expect("transfer message").into_message();
        assert_eq!(message.metadata.response_code, ResponseCode::NoError);
        assert!(message.metadata.authoritative);
        records.extend(message.answers);
    }
    assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
    assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
    let (_, zone) = server.get_json("/api/v1/zones/example.test/records").await;
    assert_eq!(
        records.len(),
        zone["records"].as_array().unwrap().len() + 1,
        "every record, SOA twice"
    );

    // From an address outside the list (loopback answers on all of 127/8): REFUSED.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = socket.connect(server.dns_addr).await.unwrap();
    let refused = tcp_exchange_on(
        stream,
        &query_message(9, "example.test.", RecordType::AXFR, None),
    )
    .await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert!(refused.answers.is_empty());
    // Over UDP, and for a name that is not a zone apex: refused too.
    let udp = udp_query(
        server.dns_addr,
        &query_message(10, "example.test.", RecordType::AXFR, None),
    )
    .await;
    assert_eq!(udp.metadata.response_code, ResponseCode::Refused);
    let stream = tokio::net::TcpStream::connect(server.dns_addr)
        .await
        .unwrap();
    let below = tcp_exchange_on(
        stream,
        &query_message(11, "sub.example.test.", RecordType::AXFR, None),
    )
    .await;
    assert_eq!(below.metadata.response_code, ResponseCode::NotAuth);
    assert!(server.log_text().contains("refused for 127.0.0.2"));
}

async fn tcp_exchange_on(mut stream: tokio::net::TcpStream, message: &Message) -> Message {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bytes = message.to_vec().unwrap();
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&bytes).await.unwrap();
    let length = stream.read_u16().await.unwrap();
    let mut buffer = vec![0u8; usize::from(length)];
    stream.read_exact(&mut buffer).await.unwrap();
    Message::from_vec(&buffer).unwrap()
}

#[tokio::test]
async fn malformed_packets_get_formerr_or_nothing_and_the_server_keeps_answering() {
    let mut server = Flashdns::start(&[]).await;
    let wait = Duration::from_millis(300);
    let addr = server.dns_addr;
    // Shorter than a header, and responses: not answered at all.
    assert_eq!(udp_exchange(addr, &[1, 2, 3], wait).await, None);
    let mut response = query_message(5, "web.example.test.", RecordType::A, None);
    response.metadata.message_type = hickory_proto::op::MessageType::Response;
    assert_eq!(
        udp_exchange(addr, &response.to_vec().unwrap(), wait).await,
        None
    );
    // A header promising a question that is not there: FORMERR with the id.
    let header_only = [0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let answer = Message::from_vec(&udp_exchange(addr, &header_only, wait).await.unwrap()).unwrap();
    assert_eq!(
        (answer.metadata.id, answer.metadata.response_code),
        (0x1234, ResponseCode::FormErr)
    );
    // Two questions: FORMERR.
    let mut two = query_message(6, "web.example.test.", RecordType::A, None);
    two.add_query(hickory_proto::op::Query::query(
        name("www.example.test."),
        RecordType::A,
    ));
    assert_eq!(
        udp_query(addr, &two).await.metadata.response_code,
        ResponseCode::FormErr
    );
    // An opcode we do not serve: NOTIMP; an EDNS version we do not speak: BADVERS.
    let mut notify = query_message(7, "example.test.", RecordType::SOA, None);
    notify.metadata.op_code = OpCode::Notify;
    assert_eq!(
        udp_query(addr, &notify).await.metadata.response_code,
        ResponseCode::NotImp
    );
    let mut future = query_message(8, "example.test.", RecordType::SOA, None);
    let mut edns = Edns::new();
    edns.set_version(1);
    future.edns = Some(edns);
    let badvers = udp_query(addr, &future).await;
    // Extended RCODE 16 (hickory reads it as BADSIG, which shares the number).
    assert_eq!(u16::from(badvers.metadata.response_code), 16);
    // Garbage of every length, then a real query: still answered.
    let mut seed = 0x2545_f491_u32;
    for length in 0..600 {
        let packet: Vec<u8> = (0..length % 300)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(&packet, addr).unwrap();
    }
    let mut client = server.udp_client().await;
    let answer = ask(&mut client, "web.example.test.", RecordType::A).await;
    assert_eq!(answer.answers.len(), 1);
    assert!(server.is_running());
}
