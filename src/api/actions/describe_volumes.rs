//! `DescribeVolumes`: the volume kind's Describe (`VolumeId.N`, filters, `MaxResults`/`NextToken`).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::VolumeKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<VolumeKind>(state, region, params)
}
