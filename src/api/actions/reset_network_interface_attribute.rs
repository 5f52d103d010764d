//! `ResetNetworkInterfaceAttribute`: turns an instance's primary interface's source/dest check back on (the one attribute EC2 resets).

use crate::api::actions::modify_network_interface_attribute::{check_instance, write};
use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::kinds::network_interface;
use crate::api::query::QueryParams;
use crate::api::render;
use crate::api::state::ApiState;
use crate::model::{InstanceId, InstanceState};

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = params.require("NetworkInterfaceId")?;
    // The only attribute EC2 resets: any value of `SourceDestCheck` names it (botocore types
    // it as free text, and AWS documents no values).
    params.require("SourceDestCheck")?;
    let interface = network_interface::load(state, region, id)?;
    kind::check_dry_run(kind::dry_run(params)?)?;
    let instance_id = InstanceId::parse(&interface.instance.metadata.name)?;
    let check = |shown: InstanceState| check_instance(shown, &interface.id);
    write(state, &instance_id, check, |spec| {
        let changed = !spec.options.source_dest_check;
        spec.options.source_dest_check = true;
        changed
    })?;
    tracing::info!(interface_id = %interface.id, %instance_id, "network interface source/dest check reset");
    Ok(render::render_return_true())
}
