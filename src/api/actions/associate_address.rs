//! `AssociateAddress`: an Elastic IP (by `AllocationId`, or the legacy `PublicIp`) on an
//! instance's primary interface (by `InstanceId` or `NetworkInterfaceId`). An address already
//! associated elsewhere moves unless `AllowReassociation=false`, and an instance holding another
//! Elastic IP gives that one up, as EC2 does; associating again where it already is changes
//! nothing.

use std::sync::Arc;

use crate::api::addresses::{change_association, holds_addresses};
use crate::api::error::ApiError;
use crate::api::instances::shown_state;
use crate::api::kind::{self, Kind};
use crate::api::kinds::address::region_addresses;
use crate::api::kinds::network_interface::shown_interfaces;
use crate::api::kinds::{AddressKind, InstanceKind, NetworkInterfaceKind};
use crate::api::query::QueryParams;
use crate::api::render::{derived_id, private_ip};
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{Address, AddressAssociation, AssociationId, Instance, InstanceId};

/// The address a request names: `AllocationId`, else the legacy `PublicIp`.
pub fn named_address(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<Arc<Address>, ApiError> {
    if let Some(id) = params.get("AllocationId") {
        let id = AddressKind::check_id(id)?;
        return state
            .store
            .addresses()
            .get_shared(&id)?
            .filter(|a| a.metadata.namespace == region)
            .ok_or_else(|| AddressKind::IDS.not_found(&[&id]));
    }
    let ip = params
        .get("PublicIp")
        .ok_or_else(|| ApiError::missing_parameter("AllocationId"))?;
    region_addresses(state, region)?
        .into_iter()
        .find(|a| a.spec.public_ip == ip)
        .ok_or_else(|| AddressKind::address_not_found(ip))
}

/// The instance the request names, with the interface id it has (`None`: recorded without a
/// subnet), checked to be in a state that can take an address.
fn target(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<(Arc<Instance>, Option<String>), ApiError> {
    match (params.get("InstanceId"), params.get("NetworkInterfaceId")) {
        (Some(_), Some(_)) => Err(ApiError::invalid_combination(
            "The parameter instanceId cannot be used with the parameter networkInterfaceId",
        )),
        (None, None) => Err(ApiError::missing_parameter("InstanceId")),
        (Some(id), None) => {
            let id = InstanceId::parse(id)?;
            let instance = InstanceKind::find(state, region, &id)?
                .ok_or_else(|| ApiError::instances_not_found(&[id.to_string()]))?;
            if let Some(state) = unfit_state(&instance) {
                return Err(ApiError::client(
                    "InvalidInstanceID",
                    format!(
                        "The {state} instance '{id}' is not in a valid state for this operation."
                    ),
                ));
            }
            let eni = instance
                .spec
                .subnet_id
                .is_some()
                .then(|| derived_id("eni", id.as_str()));
            Ok((instance, eni))
        }
        (None, Some(eni)) => {
            let eni = NetworkInterfaceKind::IDS.check_alphanumeric(eni)?;
            let shown = shown_interfaces(state, region)?
                .into_iter()
                .find(|s| s.id == eni)
                .ok_or_else(|| NetworkInterfaceKind::IDS.not_found(&[&eni]))?;
            if let Some(state) = unfit_state(&shown.instance) {
                return Err(ApiError::client(
                    "IncorrectInstanceState",
                    format!("The {state} instance to which '{eni}' is attached is not in a valid state for this operation"),
                ));
            }
            Ok((shown.instance, Some(eni)))
        }
    }
}

/// The state name of an instance that cannot take an Elastic IP now (EC2 refuses one still
/// `pending`, and one terminated or on its way there); `None` when it can.
fn unfit_state(instance: &Instance) -> Option<&'static str> {
    let shown = shown_state(instance);
    let pending = shown == crate::model::InstanceState::Pending;
    (pending || !holds_addresses(instance)).then(|| shown.name())
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let address = named_address(state, region, params)?;
    let (instance, eni) = target(state, region, params)?;
    let private_ip_address = match params.get("PrivateIpAddress") {
        None => None,
        Some(ip) => {
            // The interface has one address, its primary one, once the container has it.
            let primary = private_ip(&instance, shown_state(&instance));
            if primary.is_some_and(|p| p != ip) || ip.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(ApiError::invalid_value(format!(
                    "The specified private IP address {ip} is not assigned to the network interface."
                )));
            }
            Some(ip.to_string())
        }
    };
    let allow_reassociation = params.bool("AllowReassociation")?.unwrap_or(true);
    kind::check_dry_run(kind::dry_run(params)?)?;
    let instance_id = instance.metadata.name.clone();
    let fresh = AddressAssociation {
        association_id: AssociationId::generate().to_string(),
        instance_id: instance_id.clone(),
        network_interface_id: eni,
        private_ip_address,
    };
    let allocation_id = address.metadata.name.clone();
    let after = change_association(state, &allocation_id, |_, live| match live {
        // Already there: nothing to write (EC2's AssociateAddress is idempotent).
        Some(current)
            if current.instance_id == fresh.instance_id
                && current.private_ip_address == fresh.private_ip_address =>
        {
            Ok(None)
        }
        Some(current) if !allow_reassociation => Err(ApiError::client(
            "Resource.AlreadyAssociated",
            format!(
                "resource {allocation_id} is already associated with associate-id {}",
                current.association_id
            ),
        )),
        _ => Ok(Some(Some(fresh.clone()))),
    })?
    .ok_or_else(|| AddressKind::IDS.not_found(&[&allocation_id]))?;
    let association = after
        .spec
        .association
        .ok_or_else(|| ApiError::internal("association not recorded"))?;
    tracing::info!(%allocation_id, association_id = %association.association_id, %instance_id, "address associated");
    let mut w = XmlWriter::new();
    w.field("return", true);
    w.field("associationId", &association.association_id);
    Ok(w.finish())
}
