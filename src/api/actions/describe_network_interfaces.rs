//! `DescribeNetworkInterfaces`: the network interface kind's Describe (each VPC instance's
//! primary interface, derived from the instance).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::NetworkInterfaceKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<NetworkInterfaceKind>(state, region, params)
}
