//! `DisassociateAddress`: ends an Elastic IP's association, by `AssociationId` (or the legacy
//! `PublicIp`); the address stays allocated.

use crate::api::addresses::{change_association, live_association};
use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::kinds::address::region_addresses;
use crate::api::kinds::AddressKind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;

/// `InvalidAssociationID.NotFound`, in EC2's words.
fn association_not_found(id: &str) -> ApiError {
    ApiError::client(
        "InvalidAssociationID.NotFound",
        format!("The association ID '{id}' does not exist"),
    )
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let addresses = region_addresses(state, region)?;
    let (address, association_id) = match (params.get("AssociationId"), params.get("PublicIp")) {
        (Some(id), _) => {
            let mut found = None;
            for address in addresses {
                if let Some((association, _)) = live_association(state, &address)? {
                    if association.association_id == id {
                        found = Some(address.clone());
                        break;
                    }
                }
            }
            (
                found.ok_or_else(|| association_not_found(id))?,
                id.to_string(),
            )
        }
        (None, Some(ip)) => {
            let address = addresses
                .into_iter()
                .find(|a| a.spec.public_ip == ip)
                .ok_or_else(|| AddressKind::address_not_found(ip))?;
            let Some((association, _)) = live_association(state, &address)? else {
                // Nothing associated: EC2's DisassociateAddress is idempotent.
                kind::check_dry_run(kind::dry_run(params)?)?;
                return Ok(render_return_true());
            };
            let id = association.association_id.clone();
            (address, id)
        }
        (None, None) => {
            return Err(ApiError::client(
                "MissingParameter",
                "Either public IP or association id must be specified",
            ))
        }
    };
    kind::check_dry_run(kind::dry_run(params)?)?;
    let allocation_id = address.metadata.name.clone();
    change_association(state, &allocation_id, |_, live| match live {
        Some(current) if current.association_id == association_id => Ok(Some(None)),
        // Disassociated or moved meanwhile: that association is gone.
        _ => Err(association_not_found(&association_id)),
    })?
    .ok_or_else(|| association_not_found(&association_id))?;
    tracing::info!(%allocation_id, %association_id, "address disassociated");
    Ok(render_return_true())
}
