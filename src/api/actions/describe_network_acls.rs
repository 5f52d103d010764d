//! `DescribeNetworkAcls`: the network ACL kind's Describe (each VPC's default ACL, derived).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::NetworkAclKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<NetworkAclKind>(state, region, params)
}
