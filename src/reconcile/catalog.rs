//! AMI discovery: mirrors Docker's `localstack-ec2/<name>:<ami>` tags into the store's catalog.

use std::collections::BTreeMap;

use super::{Context, ReconcileError};
use crate::controller::Action;
use crate::model::{
    ImageSource, ImageSpec, ImageState, ImageStatus, Object, ObjectMeta, API_VERSION, IMAGE_KIND,
    VM_MANAGER_TAG,
};
use crate::runtime::ContainerRuntime;

/// The region catalog entries are filed under; they are visible in every region.
pub const CATALOG_REGION: &str = "*";

/// Re-lists the engine's AMI images and replaces the catalog with them.
pub(super) async fn reconcile<R: ContainerRuntime>(
    ctx: &Context<R>,
) -> Result<Action, ReconcileError> {
    let amis = ctx.runtime.list_amis().await?;
    let objects: Vec<_> = amis
        .into_iter()
        .map(|ami| {
            let created = ami.created.unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let mut tags = BTreeMap::new();
            tags.insert(VM_MANAGER_TAG.to_string(), "docker".to_string());
            let mut meta = ObjectMeta::new(ami.ami_id.as_str(), CATALOG_REGION, created);
            meta.generation = 1;
            Object {
                api_version: API_VERSION.to_string(),
                kind: IMAGE_KIND.to_string(),
                metadata: meta,
                spec: ImageSpec {
                    name: ami.name,
                    description: None,
                    source: ImageSource::Docker,
                    reference: ami.reference,
                    tags,
                },
                status: ImageStatus {
                    observed_generation: 1,
                    state: Some(ImageState::Available),
                    state_reason: None,
                    docker_image_id: Some(ami.docker_id),
                    size_bytes: ami.size_bytes,
                    architecture: ami.architecture,
                    last_error: None,
                },
            }
        })
        .collect();
    let count = objects.len();
    ctx.store.catalog().replace_all(&objects)?;
    tracing::debug!(count, "ami catalog refreshed");
    Ok(Action::requeue(ctx.settings.converged_requeue))
}
