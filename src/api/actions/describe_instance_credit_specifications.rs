//! `DescribeInstanceCreditSpecifications`: the CPU credit option of named burstable instances, or of every `unlimited` one.

use crate::api::error::ApiError;
use crate::api::kind::{render_page, Describe};
use crate::api::kinds::credit_specification::{check_has_credits, CreditSpecificationKind};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

/// The dispatch entry. A named instance that has no credit option (never burstable) is an
/// error, as EC2's reference says; Terraform asks only for burstable types.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let describe = Describe::<CreditSpecificationKind>::parse(params)?;
    let named = !describe.refs.is_empty();
    let page = describe.select(state, region)?;
    if named {
        for instance in &page.items {
            check_has_credits(instance)?;
        }
    }
    Ok(render_page::<CreditSpecificationKind>(&page))
}
