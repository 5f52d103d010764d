//! `DescribeVpcs`: the VPC kind's Describe (the region's default VPC, derived, never stored).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::VpcKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<VpcKind>(state, region, params)
}
