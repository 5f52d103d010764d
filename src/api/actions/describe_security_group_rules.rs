//! `DescribeSecurityGroupRules`: the security group rule kind's Describe (by rule id, filtered by group, id or tag, paginated).

use crate::api::error::ApiError;
use crate::api::kind::describe;
use crate::api::kinds::SecurityGroupRuleKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    describe::<SecurityGroupRuleKind>(state, region, params)
}
