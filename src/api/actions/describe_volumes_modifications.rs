//! `DescribeVolumesModifications`: each volume's last ModifyVolume, `modifying` until the reconciler records its end, then `completed`.

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::VolumeModificationKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<VolumeModificationKind>(state, region, params)
}
