//! `DescribeRouteTables`: the route table kind's Describe (the default VPC's derived main table and the stored ones).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::RouteTableKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<RouteTableKind>(state, region, params)
}
