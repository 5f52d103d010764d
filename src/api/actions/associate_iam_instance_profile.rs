//! `AssociateIamInstanceProfile`: gives an instance that holds none an IAM instance profile, under a new association.

use crate::api::error::ApiError;
use crate::api::iam_profiles::{
    association_response, existing_association, live_profile, required_profile_param,
};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::{instances, kind};
use crate::model::{now, IamAssociationState, IamProfileRef, InstanceId, InstanceState};

/// The dispatch entry: the instance must exist, not be terminated and hold no profile; the
/// answer shows the association `associating`, as EC2 answers before it is in force.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = InstanceId::parse(params.require("InstanceId")?)?;
    let arn = required_profile_param(params)?;
    let dry_run = kind::dry_run(params)?;
    let instance = instances::load_instances(state, region, std::slice::from_ref(&id))?
        .pop()
        .expect("one instance per id");
    let refused = |obj: &crate::model::Instance| {
        if matches!(
            instances::shown_state(obj),
            InstanceState::Terminated | InstanceState::ShuttingDown
        ) {
            return Some(ApiError::client(
                "IncorrectInstanceState",
                format!("The instance '{id}' is not in a valid state for this operation."),
            ));
        }
        live_profile(obj).map(|_| existing_association(id.as_str()))
    };
    if let Some(e) = refused(&instance) {
        return Err(e);
    }
    kind::check_dry_run(dry_run)?;
    let profile = IamProfileRef::associate(arn, now());
    state
        .store
        .instances()
        .update_spec_same_generation::<ApiError>(id.as_str(), |obj| {
            if let Some(e) = refused(obj) {
                return Err(e);
            }
            obj.spec.iam_instance_profile = Some(profile.clone());
            Ok(true)
        })?;
    tracing::info!(instance_id = %id, arn = %profile.arn, association_id = %profile.association_id, "IAM instance profile associated");
    Ok(association_response(
        id.as_str(),
        &profile,
        IamAssociationState::Associating,
    ))
}
