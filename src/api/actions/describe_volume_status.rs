//! `DescribeVolumeStatus`: each volume's status check (`ok`, `insufficient-data` while creating, `impaired` in error), with no scheduled actions or events.

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::VolumeStatusKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<VolumeStatusKind>(state, region, params)
}
