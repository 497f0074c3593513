//! DNS messages on the wire: decoding a query (hickory-server's question reader, hickory-proto's
//! record reader) and writing an answer RRset by RRset, so that a response that does not fit
//! is cut at an RRset boundary and flagged TC (RFC 2181 9).

use hickory_proto::op::{Header, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::zone_handler::Queries;

use crate::zone::{Answer, Owner, Placed, Zone};

/// The most a DNS client without EDNS accepts over UDP (RFC 1035 4.2.1).
pub const CLASSIC_UDP_SIZE: u16 = 512;
/// A response over TCP is limited only by the 16-bit length prefix.
pub const TCP_MESSAGE_SIZE: u16 = u16::MAX;
/// The question sits right after the 12-byte header; owners equal to it point there.
const QUESTION_POINTER: u16 = 0xC000 | 12;
/// An OPT record with no options: root name, type, class, TTL, RDLENGTH.
const OPT_RECORD_SIZE: usize = 11;

/// What the client said about EDNS (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientEdns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// A query we can answer.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: u16,
    pub op_code: OpCode,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    /// The question as the client spelt it.
    pub query: Query,
    pub edns: Option<ClientEdns>,
}

impl Request {
    pub fn qname(&self) -> &Name {
        self.query.name()
    }

    pub fn qtype(&self) -> RecordType {
        self.query.query_type()
    }

    /// The response size this client accepts over UDP, capped at ours.
    pub fn udp_limit(&self, max_udp_payload: u16) -> u16 {
        match self.edns {
            Some(edns) => edns.payload.clamp(CLASSIC_UDP_SIZE, max_udp_payload),
            None => CLASSIC_UDP_SIZE,
        }
    }
}

/// The outcome of decoding a packet.
#[derive(Debug)]
pub enum Decoded {
    Query(Request),
    /// Answer at once with this error (FORMERR, NOTIMP, BADVERS); the question is echoed when
    /// it could be read.
    Reject {
        head: ResponseHead,
        query: Option<Query>,
        edns: Option<ClientEdns>,
    },
    /// Not a query (too short to have a header, or a response): no answer at all, so that we
    /// cannot be made to reflect traffic.
    Ignore,
}

pub fn decode(packet: &[u8]) -> Decoded {
    let mut decoder = BinDecoder::new(packet);
    let Ok(header) = Header::read(&mut decoder) else {
        return Decoded::Ignore;
    };
    let meta = header.metadata;
    if meta.message_type != MessageType::Query {
        return Decoded::Ignore;
    }
    let reject = |query: Option<Query>, edns: Option<ClientEdns>, rcode| Decoded::Reject {
        head: ResponseHead {
            id: meta.id,
            op_code: meta.op_code,
            authoritative: false,
            recursion_desired: meta.recursion_desired,
            checking_disabled: meta.checking_disabled,
            rcode,
        },
        query,
        edns,
    };
    let counts = header.counts;
    if counts.queries != 1 {
        return reject(None, None, ResponseCode::FormErr);
    }
    let query = match Queries::read(&mut decoder, 1) {
        Ok(queries) => queries.queries()[0].original().clone(),
        Err(_) => return reject(None, None, ResponseCode::FormErr),
    };
    let op = meta.op_code;
    let mut edns = None;
    for (count, is_additional) in [
        (counts.answers, false),
        (counts.authorities, false),
        (counts.additionals, true),
    ] {
        match hickory_proto::op::Message::read_records(
            &mut decoder,
            usize::from(count),
            is_additional,
            op,
        ) {
            Ok((_, found, _)) => edns = edns.or(found),
            Err(_) => return reject(Some(query), None, ResponseCode::FormErr),
        }
    }
    let edns = edns.map(|edns| ClientEdns {
        payload: edns.max_payload(),
        version: edns.version(),
        dnssec_ok: edns.flags().dnssec_ok,
    });
    if op != OpCode::Query {
        return reject(Some(query), edns, ResponseCode::NotImp);
    }
    if edns.is_some_and(|edns| edns.version > 0) {
        return reject(Some(query), edns, ResponseCode::BADVERS);
    }
    Decoded::Query(Request {
        id: meta.id,
        op_code: op,
        recursion_desired: meta.recursion_desired,
        checking_disabled: meta.checking_disabled,
        query,
        edns,
    })
}

/// Header fields of a response.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead {
    pub id: u16,
    pub op_code: OpCode,
    pub authoritative: bool,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    pub rcode: ResponseCode,
}

impl ResponseHead {
    pub fn for_request(request: &Request, rcode: ResponseCode) -> Self {
        Self {
            id: request.id,
            op_code: request.op_code,
            authoritative: false,
            recursion_desired: request.recursion_desired,
            checking_disabled: request.checking_disabled,
            rcode,
        }
    }
}

/// What a written response holds, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub rcode: ResponseCode,
    pub truncated: bool,
}

/// Writes a response with the sections of `answer` into `buffer` (cleared first), no larger
/// than `limit` bytes.
pub fn write_answer(
    buffer: &mut Vec<u8>,
    request: &Request,
    answer: &Answer<'_>,
    our_payload: u16,
    limit: u16,
) -> Written {
    let mut head = ResponseHead::for_request(request, answer.rcode);
    head.authoritative = answer.authoritative;
    let sections = [
        &answer.answer[..],
        &answer.authority[..],
        &answer.additional[..],
    ];
    write_message(
        buffer,
        head,
        Some(&request.query),
        &sections,
        request.edns.map(|edns| (edns, our_payload)),
        limit,
    )
}

/// Writes a response carrying no records (an error, or an empty answer).
pub fn write_empty(
    buffer: &mut Vec<u8>,
    head: ResponseHead,
    query: Option<&Query>,
    edns: Option<(ClientEdns, u16)>,
) -> Written {
    write_message(buffer, head, query, &[], edns, CLASSIC_UDP_SIZE)
}

/// Writes a message of whole RRsets: answer, authority, then additional. An RRset that would
/// pass `limit` ends the message there; TC is set when that happens before the additional
/// section (whose records are optional).
pub fn write_message(
    buffer: &mut Vec<u8>,
    head: ResponseHead,
    query: Option<&Query>,
    sections: &[&[Placed<'_>]],
    edns: Option<(ClientEdns, u16)>,
    limit: u16,
) -> Written {
    buffer.clear();
    buffer.resize(12, 0);
    let mut counts = [u16::from(query.is_some()), 0, 0, 0];
    let mut truncated = false;
    {
        let mut encoder = BinEncoder::with_offset(buffer, 12);
        let room =
            usize::from(limit).saturating_sub(if edns.is_some() { OPT_RECORD_SIZE } else { 0 });
        if let Some(query) = query {
            // A question that was read fits back, whatever its size.
            let _ = query.emit(&mut encoder);
        }
        'sections: for (index, section) in sections.iter().enumerate() {
            for placed in section.iter() {
                let mark = encoder.offset();
                let fits = emit_rrset(&mut encoder, placed).is_ok() && encoder.offset() <= room;
                if !fits {
                    encoder.set_offset(mark);
                    encoder.trim();
                    truncated = index < 2;
                    break 'sections;
                }
                counts[index + 1] += placed.rrset.rdatas.len() as u16;
            }
        }
        if let Some((client, our_payload)) = edns
            && emit_opt(&mut encoder, head.rcode, client, our_payload).is_ok()
        {
            counts[3] += 1;
        }
    }
    write_header(buffer, head, counts, truncated);
    Written {
        rcode: head.rcode,
        truncated,
    }
}

/// Fills in the 12-byte header at the start of `buffer`.
pub(crate) fn write_header(
    buffer: &mut [u8],
    head: ResponseHead,
    counts: [u16; 4],
    truncated: bool,
) {
    let mut flags: u16 = 0x8000 | (u16::from(u8::from(head.op_code)) << 11);
    if head.authoritative {
        flags |= 0x0400;
    }
    if truncated {
        flags |= 0x0200;
    }
    if head.recursion_desired {
        flags |= 0x0100;
    }
    if head.checking_disabled {
        flags |= 0x0010;
    }
    flags |= u16::from(head.rcode.low());
    buffer[0..2].copy_from_slice(&head.id.to_be_bytes());
    buffer[2..4].copy_from_slice(&flags.to_be_bytes());
    for (slot, count) in counts.iter().enumerate() {
        buffer[4 + 2 * slot..6 + 2 * slot].copy_from_slice(&count.to_be_bytes());
    }
}

/// OPT: root owner, our buffer size as class, extended RCODE, version 0, the client's DO bit
/// echoed (RFC 3225).
fn emit_opt(
    encoder: &mut BinEncoder<'_>,
    rcode: ResponseCode,
    client: ClientEdns,
    our_payload: u16,
) -> Result<(), hickory_proto::ProtoError> {
    let extended = u32::from(rcode.high()) << 24;
    let dnssec_ok = if client.dnssec_ok { 0x8000 } else { 0 };
    encoder.emit(0)?;
    encoder.emit_u16(u16::from(RecordType::OPT))?;
    encoder.emit_u16(our_payload)?;
    encoder.emit_u32(extended | dnssec_ok)?;
    encoder.emit_u16(0)
}

fn emit_rrset(
    encoder: &mut BinEncoder<'_>,
    placed: &Placed<'_>,
) -> Result<(), hickory_proto::ProtoError> {
    for rdata in &placed.rrset.rdatas {
        match placed.owner {
            Owner::Question => encoder.emit_u16(QUESTION_POINTER)?,
            Owner::Name(name) => name.emit(encoder)?,
        }
        emit_record_body(encoder, placed.rrset.rtype, placed.ttl, rdata)?;
    }
    Ok(())
}

/// Everything of a record after its owner name.
pub(crate) fn emit_record_body(
    encoder: &mut BinEncoder<'_>,
    rtype: RecordType,
    ttl: u32,
    rdata: &RData,
) -> Result<(), hickory_proto::ProtoError> {
    encoder.emit_u16(u16::from(rtype))?;
    encoder.emit_u16(u16::from(DNSClass::IN))?;
    encoder.emit_u32(ttl)?;
    let length = encoder.place::<u16>()?;
    rdata.emit(encoder)?;
    let written = encoder.len_since_place(&length);
    length.replace(encoder, written as u16)
}

/// A zone transfer answer to grow each message to before starting the next (RFC 5936 allows
/// any split; fewer, fuller messages transfer faster).
const TRANSFER_MESSAGE_SIZE: usize = 16 * 1024;

/// An AXFR response (RFC 5936): the SOA, every other record, the SOA again, over as many
/// messages as it takes. The question goes in the first message only.
pub fn write_transfer(request: &Request, zone: &Zone) -> Vec<Vec<u8>> {
    let apex = zone.apex();
    let soa = zone.soa();
    let soa_record = (&apex.name, soa.rtype, soa.ttl, &soa.rdatas[0]);
    let body = zone.nodes_in_order().into_iter().flat_map(|node| {
        node.rrsets
            .iter()
            .filter(|set| set.rtype != RecordType::SOA)
            .flat_map(move |set| {
                set.rdatas
                    .iter()
                    .map(move |rdata| (&node.name, set.rtype, set.ttl, rdata))
            })
    });
    let mut records = std::iter::once(soa_record)
        .chain(body)
        .chain(std::iter::once(soa_record))
        .peekable();
    let mut head = ResponseHead::for_request(request, ResponseCode::NoError);
    head.authoritative = true;
    let mut messages = Vec::new();
    while records.peek().is_some() {
        let first = messages.is_empty();
        let mut buffer = vec![0; 12];
        let mut count = 0u16;
        {
            let mut encoder = BinEncoder::with_offset(&mut buffer, 12);
            if first {
                let _ = request.query.emit(&mut encoder);
            }
            while let Some(&(owner, rtype, ttl, rdata)) = records.peek() {
                let mark = encoder.offset();
                let written = owner
                    .emit(&mut encoder)
                    .and_then(|()| emit_record_body(&mut encoder, rtype, ttl, rdata))
                    .is_ok();
                if count > 0 && (!written || encoder.offset() > TRANSFER_MESSAGE_SIZE) {
                    encoder.set_offset(mark);
                    encoder.trim();
                    break;
                }
                records.next();
                count += 1;
            }
        }
        write_header(&mut buffer, head, [u16::from(first), count, 0, 0], false);
        messages.push(buffer);
    }
    messages
}

/// The RCODE's mnemonic, as dig prints it.
pub fn rcode_name(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::BADVERS => "BADVERS",
        _ => "other",
    }
}
