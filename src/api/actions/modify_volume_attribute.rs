//! `ModifyVolumeAttribute`: records `AutoEnableIO.Value` (nothing in Docker depends on it, so the generation stays).

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::api::volumes;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = volumes::volume_id_param(params)?;
    let value = params
        .bool("AutoEnableIO.Value")?
        .ok_or_else(|| ApiError::missing_parameter("AutoEnableIO"))?;
    volumes::load(state, region, &id)?;
    kind::check_dry_run(kind::dry_run(params)?)?;
    volumes::update(state, &id, false, |v| {
        let changed = v.spec.auto_enable_io != value;
        v.spec.auto_enable_io = value;
        Ok(changed)
    })?;
    Ok(render_return_true())
}
