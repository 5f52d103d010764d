//! The Elastic IP kind: addresses AllocateAddress stored, by allocation id or public address.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::kind::{ordered_by_id, IdRules, Kind};
use crate::api::query::QueryParams;
use crate::api::render::render_tags;
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::{Address, AddressSpec, AddressStatus};
use crate::store::{SpecStore, Specs};

/// Elastic IPs.
pub struct AddressKind;

impl AddressKind {
    /// Checks the shape of an allocation id (`eipalloc-` and alphanumerics).
    pub fn check_id(id: &str) -> Result<String, ApiError> {
        Self::IDS.check_alphanumeric(id)
    }

    /// `InvalidAddress.NotFound` for a public address no Elastic IP has.
    pub fn address_not_found(ip: &str) -> ApiError {
        ApiError::client(
            "InvalidAddress.NotFound",
            format!("Address '{ip}' not found."),
        )
    }
}

/// The region's Elastic IPs.
pub fn region_addresses(state: &ApiState, region: &str) -> Result<Vec<Arc<Address>>, ApiError> {
    Ok(state
        .store
        .addresses()
        .list_shared()?
        .objects
        .into_iter()
        .filter(|a| a.metadata.namespace == region)
        .collect())
}

impl Kind for AddressKind {
    type Item = Arc<Address>;
    /// An allocation id or a public address.
    type Ref = String;
    type Context = ();

    const IDS: IdRules = IdRules {
        noun: "allocation",
        prefix: "eipalloc-",
        malformed: "InvalidAllocationID.Malformed",
        not_found: "InvalidAllocationID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("elastic-ip");
    /// The API reference's list; the association filters match nothing until addresses can
    /// be associated.
    const FILTERS: &'static [&'static str] = &[
        "allocation-id",
        "association-id",
        "domain",
        "instance-id",
        "network-border-group",
        "network-interface-id",
        "network-interface-owner-id",
        "private-ip-address",
        "public-ip",
        "public-ipv4-pool",
        "tag-key",
    ];
    /// DescribeAddresses takes no `MaxResults`.
    const PAGING: Option<crate::api::kind::Paging> = None;
    const SET: &'static str = "addressesSet";

    fn id(item: &Arc<Address>) -> &str {
        &item.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        let mut refs = Vec::new();
        for ip in params.list("PublicIp") {
            if ip.parse::<Ipv4Addr>().is_err() {
                return Err(ApiError::invalid_value(format!(
                    "Invalid value '{ip}' for PublicIp"
                )));
            }
            refs.push(ip.to_string());
        }
        for id in params.list("AllocationId") {
            refs.push(Self::check_id(id)?);
        }
        Ok(refs)
    }

    fn find(
        state: &ApiState,
        region: &str,
        reference: &String,
    ) -> Result<Option<Arc<Address>>, ApiError> {
        if reference.starts_with(Self::IDS.prefix) {
            return Ok(state
                .store
                .addresses()
                .get_shared(reference)?
                .filter(|a| a.metadata.namespace == region));
        }
        Ok(region_addresses(state, region)?
            .into_iter()
            .find(|a| a.spec.public_ip == *reference))
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Arc<Address>>, ApiError> {
        region_addresses(state, region)
    }

    /// Allocation ids are `InvalidAllocationID.NotFound`; public addresses
    /// `InvalidAddress.NotFound`, one at a time.
    fn not_found(_region: &str, missing: &[String]) -> ApiError {
        let ids: Vec<&String> = missing
            .iter()
            .filter(|r| r.starts_with(Self::IDS.prefix))
            .collect();
        if ids.is_empty() {
            Self::address_not_found(&missing[0])
        } else {
            Self::IDS.not_found(&ids)
        }
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &Arc<Address>) -> Option<&BTreeMap<String, String>> {
        Some(&item.spec.tags)
    }

    fn values(name: &str, a: &Arc<Address>, _context: &()) -> Vec<String> {
        let one = |v: &str| vec![v.to_string()];
        match name {
            "allocation-id" => one(&a.metadata.name),
            "domain" => one(&a.spec.domain),
            "network-border-group" => one(&a.spec.network_border_group),
            "public-ip" => one(&a.spec.public_ip),
            "public-ipv4-pool" => one("amazon"),
            _ => Vec::new(),
        }
    }

    ordered_by_id!(Arc<Address>);

    fn render(w: &mut XmlWriter, a: &Arc<Address>) {
        w.field("publicIp", &a.spec.public_ip);
        w.field("allocationId", &a.metadata.name);
        w.field("domain", &a.spec.domain);
        w.field("publicIpv4Pool", "amazon");
        w.field("networkBorderGroup", &a.spec.network_border_group);
        render_tags(w, &a.spec.tags);
    }
}

impl Tagged for AddressKind {
    type Spec = AddressSpec;
    type Status = AddressStatus;

    fn collection(store: &SpecStore) -> Specs<'_, AddressSpec, AddressStatus> {
        store.addresses()
    }

    fn spec_tags(spec: &AddressSpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut AddressSpec) -> &mut Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        Self::check_id(id)
    }
}
