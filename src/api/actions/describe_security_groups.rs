//! `DescribeSecurityGroups`: the security group kind's Describe (by id or name, either list taking both, paginated).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::SecurityGroupKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<SecurityGroupKind>(state, region, params)
}
