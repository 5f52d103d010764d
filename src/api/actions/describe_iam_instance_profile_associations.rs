//! `DescribeIamInstanceProfileAssociations`: the IAM instance profile association kind's Describe (each live instance's profile, derived from the instance).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::IamProfileAssociationKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<IamProfileAssociationKind>(state, region, params)
}
