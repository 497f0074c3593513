//! The read-only REST API (JSON) on the admin port: zones, a zone's records, and a lookup that
//! answers exactly as the DNS port would.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, ServedZone};
use crate::zone::{Owner, Placed};

pub fn router(catalog: Arc<Catalog>) -> Router {
    Router::new()
        .route("/api/v1/zones", get(list_zones))
        .route("/api/v1/zones/{zone}/records", get(zone_records))
        .route("/api/v1/lookup", get(lookup))
        .with_state(catalog)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ZoneSummary {
    pub name: String,
    /// `None` when the zone has never loaded.
    pub serial: Option<u32>,
    pub records: usize,
    pub file: String,
    /// Seconds since the epoch of the load now served.
    pub loaded_at: Option<u64>,
    /// Why the newest file could not be loaded.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RecordView {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    /// Record data in zone-file presentation form.
    pub data: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ZoneRecords {
    pub zone: String,
    pub serial: u32,
    pub records: Vec<RecordView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LookupAnswer {
    pub rcode: String,
    pub authoritative: bool,
    pub zone: Option<String>,
    pub answer: Vec<RecordView>,
    pub authority: Vec<RecordView>,
    pub additional: Vec<RecordView>,
}

#[derive(Debug, Deserialize)]
struct LookupParams {
    name: String,
    #[serde(rename = "type", default = "default_lookup_type")]
    rtype: String,
}

fn default_lookup_type() -> String {
    "A".into()
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn summary(served: &ServedZone) -> ZoneSummary {
    ZoneSummary {
        name: served.source.origin.to_string(),
        serial: served.zone.as_ref().map(|zone| zone.serial()),
        records: served.zone.as_ref().map_or(0, |zone| zone.record_count()),
        file: served.source.location.clone(),
        loaded_at: served
            .loaded_at
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map(|since| since.as_secs()),
        error: served.error.clone(),
    }
}

async fn list_zones(State(catalog): State<Arc<Catalog>>) -> Response {
    let zones = catalog.zones();
    let list: Vec<ZoneSummary> = zones
        .all()
        .into_iter()
        .map(|served| summary(served))
        .collect();
    axum::Json(list).into_response()
}

/// A domain name from a URL, or a 400 answer saying why not.
fn parse_name(text: &str) -> Result<Name, Box<Response>> {
    let mut name = Name::from_utf8(text).map_err(|err| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not a domain name: {err}"),
        ))
    })?;
    name.set_fqdn(true);
    Ok(name)
}

async fn zone_records(State(catalog): State<Arc<Catalog>>, Path(zone): Path<String>) -> Response {
    let origin = match parse_name(&zone) {
        Ok(origin) => origin,
        Err(response) => return *response,
    };
    let zones = catalog.zones();
    let Some(served) = zones.get(&origin) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no zone {origin} is configured"),
        );
    };
    let Some(zone) = &served.zone else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "zone {origin} has not loaded: {}",
                served.error.as_deref().unwrap_or("unknown error")
            ),
        );
    };
    let records = zone
        .nodes_in_order()
        .into_iter()
        .flat_map(|node| {
            // The SOA leads, as in a zone file.
            let mut sets: Vec<_> = node.rrsets.iter().collect();
            sets.sort_by_key(|set| set.rtype != RecordType::SOA);
            sets.into_iter().flat_map(move |set| {
                set.rdatas.iter().map(move |rdata| RecordView {
                    name: node.name.to_string(),
                    rtype: set.rtype.to_string(),
                    ttl: set.ttl,
                    data: rdata.to_string(),
                })
            })
        })
        .collect();
    axum::Json(ZoneRecords {
        zone: origin.to_string(),
        serial: zone.serial(),
        records,
    })
    .into_response()
}

async fn lookup(
    State(catalog): State<Arc<Catalog>>,
    Query(params): Query<LookupParams>,
) -> Response {
    let name = match parse_name(&params.name) {
        Ok(name) => name,
        Err(response) => return *response,
    };
    let Ok(rtype) = params.rtype.to_uppercase().parse::<RecordType>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "{:?} is not a record type (A, AAAA, MX, TXT, ...)",
                params.rtype
            ),
        );
    };
    let zones = catalog.zones();
    let no_records = |rcode: ResponseCode, zone: Option<String>| LookupAnswer {
        rcode: crate::wire::rcode_name(rcode).to_owned(),
        authoritative: false,
        zone,
        answer: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
    };
    let Some(served) = zones.find(&name) else {
        return axum::Json(no_records(ResponseCode::Refused, None)).into_response();
    };
    let origin = Some(served.source.origin.to_string());
    let Some(zone) = &served.zone else {
        return axum::Json(no_records(ResponseCode::ServFail, origin)).into_response();
    };
    let answer = zone.answer(&name, rtype);
    let view = |section: &[Placed<'_>]| -> Vec<RecordView> {
        section
            .iter()
            .flat_map(|placed| {
                let owner = match placed.owner {
                    Owner::Question => name.to_string(),
                    Owner::Name(owner) => owner.to_string(),
                };
                placed.rrset.rdatas.iter().map(move |rdata| RecordView {
                    name: owner.clone(),
                    rtype: placed.rrset.rtype.to_string(),
                    ttl: placed.ttl,
                    data: rdata.to_string(),
                })
            })
            .collect()
    };
    axum::Json(LookupAnswer {
        rcode: crate::wire::rcode_name(answer.rcode).to_owned(),
        authoritative: answer.authoritative,
        zone: origin,
        answer: view(&answer.answer),
        authority: view(&answer.authority),
        additional: view(&answer.additional),
    })
    .into_response()
}
