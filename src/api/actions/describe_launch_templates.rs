//! `DescribeLaunchTemplates`: the generic Describe* over the launch template kind (ids, names, filters, paging).

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::kinds::LaunchTemplateKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    kind::describe::<LaunchTemplateKind>(state, region, params)
}
