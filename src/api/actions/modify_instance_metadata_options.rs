//! `ModifyInstanceMetadataOptions`: changes the named metadata options of one instance, keeping the others.

use crate::api::error::ApiError;
use crate::api::instance_options::{metadata_options, render_metadata_options};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{instances, kind};
use crate::model::{InstanceId, InstanceState, MetadataOptions};

/// The dispatch entry: the instance must exist and not be terminated; the answer shows the
/// options with `state` `pending`, as EC2 answers before it has applied them.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = InstanceId::parse(params.require("InstanceId")?)?;
    // Validated before the instance is read: a bad value is refused whatever the instance.
    metadata_options(params, "", MetadataOptions::default())?;
    let dry_run = kind::dry_run(params)?;
    let instance = instances::load_instances(state, region, std::slice::from_ref(&id))?
        .pop()
        .expect("one instance per id");
    let not_modifiable = |shown: InstanceState| {
        (shown == InstanceState::Terminated).then(|| {
            ApiError::client(
                "IncorrectInstanceState",
                format!("The instance '{id}' is not in a state from which it can be modified."),
            )
        })
    };
    if let Some(e) = not_modifiable(instances::shown_state(&instance)) {
        return Err(e);
    }
    kind::check_dry_run(dry_run)?;
    let mut applied = instance.spec.options.metadata;
    state
        .store
        .instances()
        .update_spec_same_generation::<ApiError>(id.as_str(), |obj| {
            if let Some(e) = not_modifiable(instances::shown_state(obj)) {
                return Err(e);
            }
            applied = metadata_options(params, "", obj.spec.options.metadata)?;
            let changed = applied != obj.spec.options.metadata;
            obj.spec.options.metadata = applied;
            Ok(changed)
        })?;
    tracing::info!(instance_id = %id, options = ?applied, "instance metadata options modified");
    let mut w = XmlWriter::new();
    w.field("instanceId", &id);
    w.el("instanceMetadataOptions", |w| {
        render_metadata_options(w, &applied, "pending")
    });
    Ok(w.finish())
}
