//! `DescribeSubnets`: the subnet kind's Describe (the default VPC's subnets, one per zone).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::SubnetKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<SubnetKind>(state, region, params)
}
