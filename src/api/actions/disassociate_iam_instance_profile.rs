//! `DisassociateIamInstanceProfile`: takes an instance's IAM instance profile away by its association id.

use crate::api::error::ApiError;
use crate::api::iam_profiles::{association_response, change_association};
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::IamAssociationState;

/// The dispatch entry: the answer shows the association `disassociating`, as EC2 answers;
/// ec2d drops it at once, so it is no longer described.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let association_id = params.require("AssociationId")?;
    let dry_run = kind::dry_run(params)?;
    let (instance_id, old) = change_association(state, region, association_id, dry_run, |_| None)?;
    tracing::info!(%instance_id, association_id, "IAM instance profile disassociated");
    Ok(association_response(
        &instance_id,
        &old,
        IamAssociationState::Disassociating,
    ))
}
