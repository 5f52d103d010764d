//! `DescribeInstanceTypes`: the instance type kind's Describe (the built-in catalogue, derived, never stored).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::InstanceTypeKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<InstanceTypeKind>(state, region, params)
}
