//! `MonitorInstances` and `UnmonitorInstances`: switch detailed monitoring of instances on or off (recorded and shown; ec2d has no CloudWatch).

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{instances, kind};
use crate::model::InstanceState;

/// Sets monitoring on every named instance (all must exist and not be terminated, else none
/// changes), answering
/// each with EC2's transitional state, `pending` or `disabling`.
fn set_monitoring(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
    enabled: bool,
) -> Result<String, ApiError> {
    let ids = instances::required_instance_ids(params)?;
    let dry_run = kind::dry_run(params)?;
    let found = instances::load_instances(state, region, &ids)?;
    if let Some(gone) = found
        .iter()
        .find(|i| instances::shown_state(i) == InstanceState::Terminated)
    {
        return Err(ApiError::client(
            "IncorrectInstanceState",
            format!(
                "The instance '{}' is not in a state from which it can be modified.",
                gone.metadata.name
            ),
        ));
    }
    kind::check_dry_run(dry_run)?;
    // One write per instance (the store has no multi-record update for specs): an instance
    // terminated since the check above is re-checked in its own write and left alone, as
    // monitoring means nothing to it any more.
    for id in &ids {
        state
            .store
            .instances()
            .update_spec_same_generation::<ApiError>(id.as_str(), |obj| {
                if instances::shown_state(obj) == InstanceState::Terminated {
                    return Ok(false);
                }
                let changed = obj.spec.options.monitoring != enabled;
                obj.spec.options.monitoring = enabled;
                Ok(changed)
            })?;
        tracing::info!(instance_id = %id, enabled, "instance monitoring changed");
    }
    let mut w = XmlWriter::new();
    w.set("instancesSet", &ids, |w, id| {
        w.field("instanceId", id);
        w.el("monitoring", |w| {
            w.field("state", if enabled { "pending" } else { "disabling" })
        });
    });
    Ok(w.finish())
}

/// The dispatch entry of MonitorInstances.
pub fn call_monitor(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    set_monitoring(state, region, params, true)
}

/// The dispatch entry of UnmonitorInstances.
pub fn call_unmonitor(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    set_monitoring(state, region, params, false)
}
