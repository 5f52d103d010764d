//! `RebootInstances`: queues a reboot (a restart of the container in place); the instance stays `running`.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::{DesiredState, InstanceState};

use super::change_instance_state::{self, Op, Request};
use crate::api::{instances, kind, render};

/// Parses `InstanceId.N` (required) and `DryRun`.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    change_instance_state::parse(Op::Start, params)
}

/// Validates every id first, then counts one more requested reboot on each instance that is
/// meant to run. As in EC2, the call succeeds for any existing instance: a reboot of a
/// terminated instance is ignored, and one of a stopped instance does nothing (the
/// reconciler voids reboots of an instance not meant to run). The count moves
/// `resourceVersion` only, never `generation`, so the instance never leaves `running`.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Vec<String>, ApiError> {
    let instances = instances::load_instances(state, region, &req.ids)?;
    kind::check_dry_run(req.dry_run)?;
    let mut rebooting = Vec::new();
    for instance in &instances {
        let shown = instances::shown_state(instance);
        if instance.spec.desired != DesiredState::Running
            || matches!(
                shown,
                InstanceState::Terminated | InstanceState::ShuttingDown | InstanceState::Stopped
            )
        {
            continue;
        }
        let id = &instance.metadata.name;
        state
            .store
            .instances()
            .update_spec_same_generation::<ApiError>(id, |obj| {
                if obj.spec.desired != DesiredState::Running {
                    return Ok(false);
                }
                obj.spec.reboots_requested += 1;
                Ok(true)
            })?;
        tracing::info!(instance_id = %id, "reboot requested");
        rebooting.push(id.clone());
    }
    Ok(rebooting)
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, parse(params)?)?;
    Ok(render::render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_required_and_checked() {
        let e = parse(&QueryParams::from_query("")).unwrap_err();
        assert_eq!(e.code, "InvalidParameterCombination");
        assert_eq!(e.message, "No instances specified");
        let e = parse(&QueryParams::from_query("InstanceId.1=bogus")).unwrap_err();
        assert_eq!(e.code, "InvalidInstanceID.Malformed");
        let req = parse(&QueryParams::from_query(
            "InstanceId.1=i-00000001&DryRun=true",
        ))
        .unwrap();
        assert!(req.dry_run);
    }
}
