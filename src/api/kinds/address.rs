//! The Elastic IP kind: addresses AllocateAddress stored, by allocation id or public address,
//! each with its association in force (see `api::addresses`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::api::addresses::live_association;
use crate::api::error::ApiError;
use crate::api::instances::shown_state;
use crate::api::kind::{ordered_by_id, IdRules, Kind};
use crate::api::query::QueryParams;
use crate::api::render::{private_ip, render_tags};
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::{Address, AddressAssociation, AddressSpec, AddressStatus, Instance, ACCOUNT_ID};
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

/// An Elastic IP as DescribeAddresses shows it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The record (shared with the store's decode cache).
    pub address: Arc<Address>,
    /// Its association and that association's instance, while in force.
    pub association: Option<(AddressAssociation, Arc<Instance>)>,
}

impl Shown {
    /// `address` with its association in force.
    pub fn of(state: &ApiState, address: Arc<Address>) -> Result<Self, ApiError> {
        let association = live_association(state, &address)?
            .map(|(association, instance)| (association.clone(), instance));
        Ok(Self {
            address,
            association,
        })
    }

    /// The association's private address: the one AssociateAddress named, else the
    /// interface's primary address as last observed.
    fn private_ip(&self) -> Option<&str> {
        let (association, instance) = self.association.as_ref()?;
        association
            .private_ip_address
            .as_deref()
            .or_else(|| private_ip(instance, shown_state(instance)))
    }
}

/// The region's Elastic IPs, each with its association in force.
fn shown_addresses(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
    region_addresses(state, region)?
        .into_iter()
        .map(|a| Shown::of(state, a))
        .collect()
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
    type Item = Shown;
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
    /// The API reference's list.
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

    fn id(item: &Shown) -> &str {
        &item.address.metadata.name
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

    fn find(state: &ApiState, region: &str, reference: &String) -> Result<Option<Shown>, ApiError> {
        let found = if reference.starts_with(Self::IDS.prefix) {
            state
                .store
                .addresses()
                .get_shared(reference)?
                .filter(|a| a.metadata.namespace == region)
        } else {
            region_addresses(state, region)?
                .into_iter()
                .find(|a| a.spec.public_ip == *reference)
        };
        found.map(|a| Shown::of(state, a)).transpose()
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
        shown_addresses(state, region)
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

    fn tags(item: &Shown) -> Option<&BTreeMap<String, String>> {
        Some(&item.address.spec.tags)
    }

    fn values(name: &str, s: &Shown, _context: &()) -> Vec<String> {
        let one = |v: &str| vec![v.to_string()];
        let a = &s.address;
        let association = s.association.as_ref().map(|(a, _)| a);
        // A value of the association's, none without one.
        let of_association = |value: fn(&AddressAssociation) -> Option<String>| {
            association.and_then(value).into_iter().collect::<Vec<_>>()
        };
        match name {
            "association-id" => of_association(|a| Some(a.association_id.clone())),
            "instance-id" => of_association(|a| Some(a.instance_id.clone())),
            "network-interface-id" => of_association(|a| a.network_interface_id.clone()),
            "network-interface-owner-id" => {
                of_association(|a| a.network_interface_id.as_ref().map(|_| ACCOUNT_ID.into()))
            }
            "private-ip-address" => s.private_ip().map(str::to_string).into_iter().collect(),
            "allocation-id" => one(&a.metadata.name),
            "domain" => one(&a.spec.domain),
            "network-border-group" => one(&a.spec.network_border_group),
            "public-ip" => one(&a.spec.public_ip),
            "public-ipv4-pool" => one("amazon"),
            _ => Vec::new(),
        }
    }

    ordered_by_id!(Shown);

    fn render(w: &mut XmlWriter, s: &Shown) {
        let a = &s.address;
        w.field("publicIp", &a.spec.public_ip);
        w.field("allocationId", &a.metadata.name);
        w.field("domain", &a.spec.domain);
        if let Some((association, _)) = &s.association {
            w.field("instanceId", &association.instance_id);
            w.field("associationId", &association.association_id);
            if let Some(eni) = &association.network_interface_id {
                w.field("networkInterfaceId", eni);
                w.field("networkInterfaceOwnerId", ACCOUNT_ID);
            }
            w.opt_field("privateIpAddress", s.private_ip());
        }
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
