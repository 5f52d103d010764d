//! Instance reads the actions share: `InstanceId.N`, the state a client sees, and region-scoped lookups that share the store's decoded objects.

use std::collections::HashSet;
use std::sync::Arc;

use super::error::ApiError;
use super::query::QueryParams;
use super::state::ApiState;
use crate::model::{display_state, Instance, InstanceId, InstanceState};

/// `InstanceId.N`, parsed (`InvalidInstanceID.Malformed` on the first bad one) and deduplicated
/// in request order. `required` makes an empty list `MissingParameter`.
pub fn instance_ids(params: &QueryParams, required: bool) -> Result<Vec<InstanceId>, ApiError> {
    let raw = params.list("InstanceId");
    if raw.is_empty() && required {
        return Err(ApiError::missing_parameter("InstanceId"));
    }
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(raw.len());
    for s in raw {
        let id = InstanceId::parse(s)?;
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// `InstanceId.N` of StopInstances, StartInstances, TerminateInstances and RebootInstances: at
/// least one is required, and EC2 answers none with `InvalidParameterCombination`, `No
/// instances specified` (not `MissingParameter`; seen from real EC2, e.g.
/// gruntwork-io/cloud-nuke#731).
pub fn required_instance_ids(params: &QueryParams) -> Result<Vec<InstanceId>, ApiError> {
    let ids = instance_ids(params, false)?;
    if ids.is_empty() {
        return Err(ApiError::invalid_combination("No instances specified"));
    }
    Ok(ids)
}

/// The state a client sees for an instance.
pub fn shown_state(instance: &Instance) -> InstanceState {
    display_state(&instance.metadata, &instance.spec, &instance.status)
}

/// Reads the instances with these ids in `region`; every id missing here (or living in another
/// region) is reported at once, in AWS's singular/plural wording.
pub fn load_instances(
    state: &ApiState,
    region: &str,
    ids: &[InstanceId],
) -> Result<Vec<Arc<Instance>>, ApiError> {
    let mut found = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        // Shared with the store's decode cache: no deep copy, and DescribeInstances by id (a
        // waiter's poll) reuses the instance's rendered XML while it is unchanged.
        match state.store.instances().get_shared(id.as_str())? {
            Some(instance) if instance.metadata.namespace == region => found.push(instance),
            _ => missing.push(id.to_string()),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(ApiError::instances_not_found(&missing))
    }
}

/// Every readable instance of `region` (corrupt records are skipped; the store logs them).
/// Shared with the store's decode cache: listing copies no instance.
pub fn region_instances(state: &ApiState, region: &str) -> Result<Vec<Arc<Instance>>, ApiError> {
    let listing = state.store.instances().list_shared()?;
    Ok(listing
        .objects
        .into_iter()
        .filter(|i| i.metadata.namespace == region)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_parsed_and_deduplicated() {
        let q = QueryParams::from_query(
            "InstanceId.1=i-0000000b&InstanceId.2=i-0000000a&InstanceId.3=i-0000000b",
        );
        let ids: Vec<_> = instance_ids(&q, true)
            .unwrap()
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ids, vec!["i-0000000b", "i-0000000a"]);
        let q = QueryParams::from_query("InstanceId.1=i-000000cc&InstanceId.2=bogus");
        assert_eq!(
            instance_ids(&q, true).unwrap_err().code,
            "InvalidInstanceID.Malformed"
        );
        let e = instance_ids(&QueryParams::default(), true).unwrap_err();
        assert_eq!(
            e.message,
            "The request must contain the parameter InstanceId"
        );
        assert!(instance_ids(&QueryParams::default(), false)
            .unwrap()
            .is_empty());
    }
}
