//! What RunInstances and the IAM instance profile association actions share: the `IamInstanceProfile` parameter, EC2's errors for associations, finding an association's instance, the one compare-and-swap that changes an instance's profile, and the XML of a profile and an association.

use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::instances::{region_instances, shown_state};
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::iam::{profile_arn, ProfileError};
use crate::model::{format_timestamp, IamAssociationState, IamProfileRef, Instance, InstanceState};

/// The profile ARN named by `IamInstanceProfile.Arn` or `.Name`, when one is. ec2d keeps no
/// IAM store, so any well-formed reference is accepted; EC2's wording for the ones it refuses.
pub fn profile_param(params: &QueryParams) -> Result<Option<String>, ApiError> {
    profile_arn(
        params.get("IamInstanceProfile.Arn"),
        params.get("IamInstanceProfile.Name"),
    )
    .map_err(|e| {
        ApiError::invalid_value(match e {
            ProfileError::Arn => "Invalid IAM Instance Profile ARN",
            ProfileError::Name => "Invalid IAM Instance Profile name",
        })
    })
}

/// Like [`profile_param`], for the actions that require it.
pub fn required_profile_param(params: &QueryParams) -> Result<String, ApiError> {
    profile_param(params)?.ok_or_else(|| ApiError::missing_parameter("IamInstanceProfile"))
}

/// `InvalidAssociationID.NotFound`, worded as EC2 (and moto) word it for these associations.
pub fn association_not_found(id: &str) -> ApiError {
    ApiError::client(
        "InvalidAssociationID.NotFound",
        format!("An invalid association-id of '{id}' was given"),
    )
}

/// `IncorrectState` for an instance that already holds a profile.
pub fn existing_association(instance_id: &str) -> ApiError {
    ApiError::client(
        "IncorrectState",
        format!("There is an existing association for instance {instance_id}"),
    )
}

/// The profile in force on `instance`: a terminated instance (or one being terminated) holds
/// none, so its association is gone from the moment the termination is recorded.
pub fn live_profile(instance: &Instance) -> Option<&IamProfileRef> {
    let gone = matches!(
        shown_state(instance),
        InstanceState::Terminated | InstanceState::ShuttingDown
    );
    instance
        .spec
        .iam_instance_profile
        .as_ref()
        .filter(|_| !gone)
}

/// The instance of `region` whose live association is `association_id`.
pub fn association_instance(
    state: &ApiState,
    region: &str,
    association_id: &str,
) -> Result<Arc<Instance>, ApiError> {
    region_instances(state, region)?
        .into_iter()
        .find(|i| live_profile(i).is_some_and(|p| p.association_id == association_id))
        .ok_or_else(|| association_not_found(association_id))
}

/// Changes the profile of the instance holding `association_id` (`change` gets the one in
/// force and returns the new one), in one compare-and-swap on the instance's record, which
/// re-checks that the association is still the one in force. A profile asks nothing of the
/// reconciler (IMDS reads the spec), so `generation` does not move. `DryRun` is answered once
/// the association is found.
pub fn change_association(
    state: &ApiState,
    region: &str,
    association_id: &str,
    dry_run: bool,
    change: impl Fn(&IamProfileRef) -> Option<IamProfileRef>,
) -> Result<(String, IamProfileRef), ApiError> {
    let instance = association_instance(state, region, association_id)?;
    kind::check_dry_run(dry_run)?;
    let id = instance.metadata.name.clone();
    let mut old = None;
    state
        .store
        .instances()
        .update_spec_same_generation::<ApiError>(&id, |obj| {
            let current = live_profile(obj)
                .filter(|p| p.association_id == association_id)
                .cloned()
                .ok_or_else(|| association_not_found(association_id))?;
            obj.spec.iam_instance_profile = change(&current);
            old = Some(current);
            Ok(true)
        })?;
    Ok((id, old.expect("set by the update")))
}

/// `<iamInstanceProfile>`: the profile's `arn` and `id`, as DescribeInstances and the
/// association actions show it.
pub fn render_profile(w: &mut XmlWriter, profile: &IamProfileRef) {
    w.el("iamInstanceProfile", |w| {
        w.field("arn", &profile.arn);
        w.field("id", &profile.id);
    });
}

/// One association's members, in `state` (the association actions answer the transitional one).
pub fn render_association(
    w: &mut XmlWriter,
    instance_id: &str,
    profile: &IamProfileRef,
    state: IamAssociationState,
) {
    w.field("associationId", &profile.association_id);
    w.field("instanceId", instance_id);
    render_profile(w, profile);
    w.field("state", state.as_str());
    w.field("timestamp", format_timestamp(profile.associated_at));
}

/// The whole answer of Associate, Disassociate and Replace: `<iamInstanceProfileAssociation>`.
pub fn association_response(
    instance_id: &str,
    profile: &IamProfileRef,
    state: IamAssociationState,
) -> String {
    let mut w = XmlWriter::new();
    w.el("iamInstanceProfileAssociation", |w| {
        render_association(w, instance_id, profile, state)
    });
    w.finish()
}
