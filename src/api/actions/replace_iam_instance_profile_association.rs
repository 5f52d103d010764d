//! `ReplaceIamInstanceProfileAssociation`: swaps an instance's IAM instance profile for another, under a new association id.

use crate::api::error::ApiError;
use crate::api::iam_profiles::{association_response, change_association, required_profile_param};
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::{now, IamAssociationState, IamProfileRef};

/// The dispatch entry: the answer shows the new association `associating`.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let association_id = params.require("AssociationId")?;
    let arn = required_profile_param(params)?;
    let dry_run = kind::dry_run(params)?;
    let new = IamProfileRef::associate(arn, now());
    let (instance_id, _) = change_association(state, region, association_id, dry_run, |_| {
        Some(new.clone())
    })?;
    tracing::info!(%instance_id, replaced = association_id, association_id = %new.association_id, arn = %new.arn, "IAM instance profile association replaced");
    Ok(association_response(
        &instance_id,
        &new,
        IamAssociationState::Associating,
    ))
}
