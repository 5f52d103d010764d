//! `DescribeInternetGateways`: the internet gateway kind's Describe (the default VPC's derived gateway and the stored ones).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::InternetGatewayKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<InternetGatewayKind>(state, region, params)
}
