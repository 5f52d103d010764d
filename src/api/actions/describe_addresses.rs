//! `DescribeAddresses`: the Elastic IP kind's Describe (`PublicIp.N`, `AllocationId.N`, filters).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::AddressKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<AddressKind>(state, region, params)
}
