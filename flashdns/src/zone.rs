//! A loaded zone and the authoritative answer rules (RFC 1034 4.3.2, RFC 2181, RFC 2308,
//! RFC 4592): exact matches, CNAME chains inside the zone, referrals at zone cuts, wildcard
//! synthesis and negative answers.

use std::collections::HashSet;

use rustc_hash::FxHashMap;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// CNAME hops followed inside a zone before the answer is sent as it stands.
const MAX_CNAME_CHAIN: usize = 16;

/// The records of one name and type.
#[derive(Debug, Clone)]
pub struct RRset {
    pub rtype: RecordType,
    pub ttl: u32,
    pub rdatas: Vec<RData>,
}

/// A name in the zone; a node without records is an empty non-terminal.
#[derive(Debug, Clone)]
pub struct Node {
    /// The owner name as the zone file spells it.
    pub name: Name,
    pub rrsets: Vec<RRset>,
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets.iter().find(|set| set.rtype == rtype)
    }
}

/// A zone ready to answer from. Names compare case-insensitively (hickory's `Name` hashes and
/// compares that way).
#[derive(Debug, Clone)]
pub struct Zone {
    origin: Name,
    origin_labels: usize,
    /// Keyed by name; Fx hashing, since names are hashed byte by byte on every query.
    nodes: FxHashMap<Name, Node>,
    serial: u32,
    negative_ttl: u32,
    record_count: usize,
}

/// Why records cannot form a zone.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZoneError {
    #[error("no SOA record at the zone apex {0}")]
    MissingSoa(Name),
    #[error("{0} has more than one SOA record")]
    SeveralSoa(Name),
    #[error("SOA record at {0}, which is not the zone apex")]
    SoaBelowApex(Name),
    #[error("{0} has a CNAME and other records (RFC 1034 3.6.2 allows only one or the other)")]
    CnameAndOtherData(Name),
    #[error("{0} has more than one CNAME record")]
    SeveralCnames(Name),
    #[error("CNAME at the zone apex {0}")]
    CnameAtApex(Name),
}

/// Who a section entry's owner name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'z> {
    /// The question's name, written as the client spelt it.
    Question,
    Name(&'z Name),
}

/// One RRset placed in a response section.
#[derive(Debug, Clone, Copy)]
pub struct Placed<'z> {
    pub owner: Owner<'z>,
    pub rrset: &'z RRset,
    /// The TTL to send (differs from the RRset's for the SOA of a negative answer).
    pub ttl: u32,
}

impl<'z> Placed<'z> {
    fn new(owner: Owner<'z>, rrset: &'z RRset) -> Self {
        Self {
            owner,
            rrset,
            ttl: rrset.ttl,
        }
    }
}

/// An authoritative answer, section by section.
#[derive(Debug, Clone)]
pub struct Answer<'z> {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answer: Vec<Placed<'z>>,
    pub authority: Vec<Placed<'z>>,
    pub additional: Vec<Placed<'z>>,
}

enum Found<'z> {
    /// The name (or a wildcard standing in for it) exists here.
    Node(&'z Node),
    /// The name is at or below a delegation to another server.
    Cut(&'z Node),
    NoSuchName,
}

impl Zone {
    /// Builds a zone from parsed records. Records outside the zone are left out and reported.
    pub fn new(
        origin: Name,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<(Self, Vec<String>), ZoneError> {
        let mut origin = origin;
        origin.set_fqdn(true);
        let origin_labels = origin.iter().count();
        let mut warnings = Vec::new();
        let mut nodes: FxHashMap<Name, Node> = FxHashMap::default();
        let mut record_count = 0;
        for record in records {
            if !origin.zone_of(&record.name) {
                warnings.push(format!(
                    "{} {} is outside the zone {origin}; left out",
                    record.name,
                    record.record_type()
                ));
                continue;
            }
            let node = nodes.entry(record.name.clone()).or_insert_with(|| Node {
                name: record.name.clone(),
                rrsets: Vec::new(),
            });
            let rtype = record.record_type();
            match node.rrsets.iter_mut().find(|set| set.rtype == rtype) {
                Some(set) => {
                    if set.rdatas.contains(&record.data) {
                        continue;
                    }
                    if set.ttl != record.ttl {
                        warnings.push(format!(
                            "{} {rtype} has records with different TTLs; all are served with {} (RFC 2181 5.2)",
                            record.name, set.ttl
                        ));
                    }
                    set.rdatas.push(record.data);
                }
                None => node.rrsets.push(RRset {
                    rtype,
                    ttl: record.ttl,
                    rdatas: vec![record.data],
                }),
            }
            record_count += 1;
        }

        let apex = nodes
            .get(&origin)
            .ok_or_else(|| ZoneError::MissingSoa(origin.clone()))?;
        let soa = apex
            .get(RecordType::SOA)
            .ok_or_else(|| ZoneError::MissingSoa(origin.clone()))?;
        let Some(RData::SOA(soa_data)) = soa.rdatas.first() else {
            return Err(ZoneError::MissingSoa(origin));
        };
        if soa.rdatas.len() > 1 {
            return Err(ZoneError::SeveralSoa(origin));
        }
        let serial = soa_data.serial;
        let negative_ttl = soa.ttl.min(soa_data.minimum);
        if apex.get(RecordType::NS).is_none() {
            warnings.push(format!("no NS records at the zone apex {origin}"));
        }
        for node in nodes.values() {
            if node.name != origin && node.get(RecordType::SOA).is_some() {
                return Err(ZoneError::SoaBelowApex(node.name.clone()));
            }
            if let Some(cname) = node.get(RecordType::CNAME) {
                if node.name == origin {
                    return Err(ZoneError::CnameAtApex(origin));
                }
                if cname.rdatas.len() > 1 {
                    return Err(ZoneError::SeveralCnames(node.name.clone()));
                }
                if node.rrsets.len() > 1 {
                    return Err(ZoneError::CnameAndOtherData(node.name.clone()));
                }
            }
        }

        // Empty non-terminals: every name between a record's owner and the apex exists.
        let owners: Vec<Name> = nodes.keys().cloned().collect();
        for owner in owners {
            let mut name = owner.base_name();
            while name.iter().count() > origin_labels && !nodes.contains_key(&name) {
                nodes.insert(
                    name.clone(),
                    Node {
                        name: name.clone(),
                        rrsets: Vec::new(),
                    },
                );
                name = name.base_name();
            }
        }
        for node in nodes.values_mut() {
            node.rrsets.sort_by_key(|set| u16::from(set.rtype));
        }

        Ok((
            Self {
                origin,
                origin_labels,
                nodes,
                serial,
                negative_ttl,
                record_count,
            },
            warnings,
        ))
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub fn record_count(&self) -> usize {
        self.record_count
    }

    pub fn apex(&self) -> &Node {
        &self.nodes[&self.origin]
    }

    pub fn soa(&self) -> &RRset {
        self.apex()
            .get(RecordType::SOA)
            .expect("a zone is only built with an SOA at its apex")
    }

    /// Whether `name` is this zone's apex or below it.
    pub fn contains(&self, name: &Name) -> bool {
        self.origin.zone_of(name)
    }

    /// Every node with records, in DNSSEC canonical order (apex first).
    pub fn nodes_in_order(&self) -> Vec<&Node> {
        let mut nodes: Vec<&Node> = self
            .nodes
            .values()
            .filter(|node| !node.rrsets.is_empty())
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }

    /// The node at exactly `name`, if the zone file gave it records.
    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(name).filter(|node| !node.rrsets.is_empty())
    }

    /// Answers `qname`/`qtype`; `qname` must be in this zone.
    pub fn answer(&self, qname: &Name, qtype: RecordType) -> Answer<'_> {
        let mut answer = Answer {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        };
        let mut owner = Owner::Question;
        let mut name = qname;
        let mut visited: HashSet<&Name> = HashSet::from([qname]);
        loop {
            match self.find(name, qtype) {
                Found::Cut(cut) => {
                    // A referral: the child's servers are authoritative, not us.
                    answer.authoritative = !answer.answer.is_empty();
                    let ns = cut.get(RecordType::NS).expect("a cut has NS records");
                    answer
                        .authority
                        .push(Placed::new(Owner::Name(&cut.name), ns));
                    self.add_addresses(ns, &mut answer.additional, true);
                    return answer;
                }
                Found::NoSuchName => {
                    answer.rcode = ResponseCode::NXDomain;
                    self.add_negative_soa(&mut answer);
                    return answer;
                }
                Found::Node(node) => {
                    if qtype == RecordType::ANY {
                        // One RRset, not all of them (RFC 8482): ANY is a favourite of
                        // amplification attacks.
                        match node.rrsets.first() {
                            Some(set) => self.add_answer(&mut answer, owner, set),
                            None => self.add_negative_soa(&mut answer),
                        }
                        return answer;
                    }
                    if let Some(set) = node.get(qtype) {
                        self.add_answer(&mut answer, owner, set);
                        return answer;
                    }
                    let Some(cname) = node.get(RecordType::CNAME) else {
                        self.add_negative_soa(&mut answer);
                        return answer;
                    };
                    answer.answer.push(Placed::new(owner, cname));
                    let Some(RData::CNAME(target)) = cname.rdatas.first() else {
                        return answer;
                    };
                    let target = &target.0;
                    let followed = answer.answer.len();
                    if !self.contains(target)
                        || !visited.insert(target)
                        || followed > MAX_CNAME_CHAIN
                    {
                        return answer;
                    }
                    owner = Owner::Name(target);
                    name = target;
                }
            }
        }
    }

    /// Walks down from the apex towards `name`, stopping at the first zone cut.
    fn find(&self, name: &Name, qtype: RecordType) -> Found<'_> {
        let labels = name.iter().count();
        for depth in self.origin_labels..=labels {
            let exact = depth == labels;
            let candidate;
            let looked_up = if exact {
                name
            } else {
                candidate = name.trim_to(depth);
                &candidate
            };
            let Some(node) = self.nodes.get(looked_up) else {
                // `looked_up` does not exist; its parent is the closest encloser.
                return match name
                    .trim_to(depth - 1)
                    .prepend_label("*")
                    .ok()
                    .and_then(|wildcard| self.nodes.get(&wildcard))
                {
                    Some(source) => Found::Node(source),
                    None => Found::NoSuchName,
                };
            };
            let below_apex = depth > self.origin_labels;
            // DS records live on the parent side of a cut (RFC 4035 3.1.4.1).
            let parent_side = exact && qtype == RecordType::DS;
            if below_apex && !parent_side && node.get(RecordType::NS).is_some() {
                return Found::Cut(node);
            }
            if exact {
                return Found::Node(node);
            }
        }
        Found::NoSuchName
    }

    /// The RRset that answers the question, with the addresses of the hosts it names.
    fn add_answer<'z>(&'z self, answer: &mut Answer<'z>, owner: Owner<'z>, set: &'z RRset) {
        answer.answer.push(Placed::new(owner, set));
        if matches!(set.rtype, RecordType::MX | RecordType::NS | RecordType::SRV) {
            self.add_addresses(set, &mut answer.additional, false);
        }
    }

    fn add_negative_soa<'z>(&'z self, answer: &mut Answer<'z>) {
        let apex = self.apex();
        let soa = self.soa();
        answer.authority.push(Placed {
            owner: Owner::Name(&apex.name),
            rrset: soa,
            ttl: self.negative_ttl,
        });
    }

    /// A and AAAA records of the in-zone names that `set` points at (NS, MX and SRV targets);
    /// `glue` also takes addresses from below zone cuts.
    fn add_addresses<'z>(&'z self, set: &'z RRset, additional: &mut Vec<Placed<'z>>, glue: bool) {
        for rdata in &set.rdatas {
            let target = match rdata {
                RData::NS(ns) => &ns.0,
                RData::MX(mx) => &mx.exchange,
                RData::SRV(srv) => &srv.target,
                _ => continue,
            };
            if !self.contains(target) {
                continue;
            }
            let node = if glue {
                self.nodes.get(target)
            } else {
                match self.find(target, RecordType::A) {
                    Found::Node(node) if node.name == *target => Some(node),
                    _ => None,
                }
            };
            let Some(node) = node else { continue };
            for rtype in [RecordType::A, RecordType::AAAA] {
                if let Some(addresses) = node.get(rtype)
                    && !additional
                        .iter()
                        .any(|placed| std::ptr::eq(placed.rrset, addresses))
                {
                    additional.push(Placed::new(Owner::Name(&node.name), addresses));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zonefile::parse_zone;

    fn zone(extra: &str) -> Zone {
        let text = format!(
            "$ORIGIN z.test.\n$TTL 60\n@ IN SOA ns admin 1 3600 1800 604800 30\n@ IN NS ns\nns IN A 192.0.2.1\n{extra}"
        );
        let origin = Name::from_ascii("z.test.").unwrap();
        parse_zone(&origin, std::path::Path::new("z.zone"), &text, None)
            .unwrap()
            .zone
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn a_cname_loop_ends_after_each_name_once() {
        let zone = zone("a IN CNAME b\nb IN CNAME a\n");
        let answer = zone.answer(&name("a.z.test."), RecordType::A);
        assert_eq!(answer.rcode, ResponseCode::NoError);
        assert_eq!(answer.answer.len(), 2, "a -> b, then b -> a stops");
    }

    #[test]
    fn negative_answers_carry_the_soa_at_its_minimum_ttl() {
        let zone = zone("");
        let answer = zone.answer(&name("missing.z.test."), RecordType::A);
        assert_eq!(answer.rcode, ResponseCode::NXDomain);
        assert_eq!(answer.authority[0].ttl, 30);
        assert_eq!(answer.authority[0].rrset.rtype, RecordType::SOA);
    }

    #[test]
    fn a_wildcard_below_a_cut_is_not_used() {
        let zone = zone("child IN NS ns.elsewhere.\n*.child IN A 192.0.2.9\n");
        let answer = zone.answer(&name("x.child.z.test."), RecordType::A);
        assert!(
            !answer.authoritative,
            "a referral, not the occluded wildcard"
        );
        assert!(answer.answer.is_empty());
        assert_eq!(answer.authority[0].rrset.rtype, RecordType::NS);
    }
}
