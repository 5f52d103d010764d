//! The AMI record reconciler: CreateImage commits the source instance's container (or, with none, tags its image) and CopyImage tags the source AMI's image, as `localstack-ec2/<name>:<ami>`; DeregisterImage is acknowledged here and carried out by discovery (`catalog`).

use tracing::{info, warn};

use std::sync::Arc;

use super::{Context, Engine, ReconcileError};
use crate::controller::Action;
use crate::model::{
    now, ErrorRecord, Image, ImageId, ImageSource, ImageState, InstanceId, StateReason,
};
use crate::runtime::{ContainerRuntime, RuntimeError};

/// The engine a CreateImage or CopyImage record is made on: the source instance's, or the
/// first engine (the default first) holding the source AMI's image; the default one when
/// there is one engine or none is found. `Unavailable` when no engine that answers holds the
/// source image and one does not answer: it may hold the only copy, and a copy made
/// elsewhere would fail for good.
pub(super) async fn engine_for<R: ContainerRuntime>(
    id: &ImageId,
    ctx: &Context<R>,
) -> Result<Arc<Engine<R>>, RuntimeError> {
    let default = ctx.engines.default().clone();
    if !ctx.engines.is_multi() {
        return Ok(default);
    }
    let Ok(Some(image)) = ctx.store.images().get_shared(id.as_str()) else {
        return Ok(default);
    };
    if is_done(&image) {
        // Nothing left to make: the pass asks no engine.
        return Ok(default);
    }
    match &image.spec.source {
        ImageSource::Commit { instance_id } => Ok(
            match ctx.store.instances().get_shared(instance_id.as_str()) {
                Ok(Some(instance)) => super::instance::engine_of(ctx, &instance),
                _ => default,
            },
        ),
        ImageSource::Copy {
            source_reference, ..
        } if !image.spec.deregistered => {
            let mut unanswered = None;
            for engine in ctx.engines.iter() {
                match engine.runtime().image_exists(source_reference).await {
                    Ok(true) => return Ok(engine.clone()),
                    Ok(false) => {}
                    Err(error) => unanswered = Some(error),
                }
            }
            match unanswered {
                Some(error) => Err(error),
                None => Ok(default),
            }
        }
        ImageSource::Copy { .. } | ImageSource::Docker => Ok(default),
    }
}

/// Reconciles one CreateImage record.
pub(super) async fn reconcile<R: ContainerRuntime>(
    id: &ImageId,
    ctx: &Context<R>,
) -> Result<Action, ReconcileError> {
    let Some(image) = ctx.store.images().get(id.as_str())? else {
        return Ok(Action::await_change());
    };
    if image.spec.deregistered {
        return acknowledge_deregistration(&image, ctx);
    }
    if is_done(&image) {
        return Ok(Action::await_change());
    }
    let made = match &image.spec.source {
        ImageSource::Commit { instance_id } => commit(&image, instance_id, ctx).await,
        ImageSource::Copy {
            source_reference, ..
        } => copy(&image, source_reference, ctx).await,
        ImageSource::Docker => return Ok(Action::await_change()),
    };
    match made {
        Ok(Some(docker_id)) => {
            info!(image_id = %id, reference = %image.spec.reference, "image available");
            let mut status = image.status.clone();
            status.state = Some(ImageState::Available);
            status.docker_image_id = Some(docker_id);
            status.state_reason = None;
            status.last_error = None;
            status.observed_generation = image.metadata.generation;
            ctx.store.images().write_status(id.as_str(), &status)?;
            Ok(Action::await_change())
        }
        // The instance has no container yet (still booting): look again shortly.
        Ok(None) => Ok(Action::requeue(ctx.settings.converging_requeue)),
        Err(CommitError::Impossible(reason)) => {
            warn!(image_id = %id, %reason, "image failed");
            let mut status = image.status.clone();
            status.state = Some(ImageState::Failed);
            status.state_reason = Some(StateReason::new("Client.InternalError", &reason));
            status.last_error = Some(ErrorRecord::new(reason, now()));
            status.observed_generation = image.metadata.generation;
            ctx.store.images().write_status(id.as_str(), &status)?;
            Ok(Action::await_change())
        }
        Err(CommitError::Retry(error)) => {
            let mut status = image.status.clone();
            status.last_error = Some(ErrorRecord::new(error.to_string(), now()));
            ctx.store.images().write_status(id.as_str(), &status)?;
            Err(error)
        }
    }
}

/// Whether the record's image is made (or failed for good) at its current generation.
fn is_done(image: &Image) -> bool {
    matches!(
        image.status.state,
        Some(ImageState::Available | ImageState::Failed)
    ) && image.status.observed_generation >= image.metadata.generation
}

/// DeregisterImage: records that this key will commit or copy nothing more for the AMI
/// (a commit under way when the request came finished before this runs: one key never runs
/// twice at once). Discovery removes the AMI's Docker tags and collects the record only after
/// this, so a commit can never tag an image after its record is gone.
fn acknowledge_deregistration<R: ContainerRuntime>(
    image: &Image,
    ctx: &Context<R>,
) -> Result<Action, ReconcileError> {
    let acknowledged = image.status.state == Some(ImageState::Deregistered)
        && image.status.observed_generation >= image.metadata.generation;
    if !acknowledged {
        let mut status = image.status.clone();
        status.state = Some(ImageState::Deregistered);
        status.state_reason = None;
        status.last_error = None;
        status.observed_generation = image.metadata.generation;
        ctx.store
            .images()
            .write_status(&image.metadata.name, &status)?;
        info!(image_id = %image.metadata.name, reference = %image.spec.reference, "image deregistered");
    }
    Ok(Action::await_change())
}

enum CommitError {
    /// The image can never be made (source gone); it is marked failed.
    Impossible(String),
    /// Try again later.
    Retry(ReconcileError),
}

impl From<RuntimeError> for CommitError {
    fn from(e: RuntimeError) -> Self {
        Self::Retry(e.into())
    }
}

/// Commits the instance's container, unless a previous attempt already made the image
/// (the commit may have finished just before a crash). `Ok(None)`: not ready to commit yet.
async fn commit<R: ContainerRuntime>(
    image: &Image,
    instance_id: &InstanceId,
    ctx: &Context<R>,
) -> Result<Option<String>, CommitError> {
    let reference = &image.spec.reference;
    if ctx.runtime.image_exists(reference).await? {
        return Ok(Some(existing_id(ctx, reference).await));
    }
    let instance = ctx
        .store
        .instances()
        .get(instance_id.as_str())
        .map_err(|e| CommitError::Retry(e.into()))?;
    let Some(instance) = instance else {
        return Err(CommitError::Impossible(format!(
            "instance {instance_id} no longer exists"
        )));
    };
    let ami_tag = crate::model::AmiTag::parse(reference)
        .ok_or_else(|| CommitError::Impossible(format!("bad image reference {reference}")))?;
    let (repository, tag) = (ami_tag.repository(), ami_tag.ami_id.as_str());
    let Some(container) = ctx.runtime.inspect_instance(instance_id).await? else {
        use crate::model::{DesiredState, InstanceState};
        if instance.spec.desired == DesiredState::Terminated
            || instance.status.state == Some(InstanceState::Terminated)
        {
            return Err(CommitError::Impossible(format!(
                "instance {instance_id} has no container to commit"
            )));
        }
        if instance.status.state != Some(InstanceState::Stopped) {
            // Booting, or being booted again after its container went: look again shortly.
            return Ok(None);
        }
        // Stopped before its first boot, or its container removed while it was stopped: its
        // disk is its AMI's image as launched (a start would boot that image afresh), so the
        // new AMI is that image under the new name.
        return match ctx
            .runtime
            .tag_image(&instance.spec.image_ref, &repository, tag)
            .await
        {
            Ok(docker_id) => Ok(Some(docker_id)),
            Err(RuntimeError::NotFound(_)) => Err(CommitError::Impossible(format!(
                "instance {instance_id} has no container, and its image {} is gone",
                instance.spec.image_ref
            ))),
            Err(other) => Err(other.into()),
        };
    };
    match ctx.runtime.commit(&container.id, &repository, tag).await {
        Ok(docker_id) => Ok(Some(docker_id)),
        Err(RuntimeError::NotFound(reason)) => Err(CommitError::Impossible(reason)),
        Err(RuntimeError::Failed(reason)) => Err(CommitError::Impossible(reason)),
        Err(other) => Err(other.into()),
    }
}

/// Tags the source AMI's image with the copy's reference, unless a previous attempt already
/// did. The source's image gone is final: the copy fails.
async fn copy<R: ContainerRuntime>(
    image: &Image,
    source_reference: &str,
    ctx: &Context<R>,
) -> Result<Option<String>, CommitError> {
    let reference = &image.spec.reference;
    if ctx.runtime.image_exists(reference).await? {
        return Ok(Some(existing_id(ctx, reference).await));
    }
    let ami_tag = crate::model::AmiTag::parse(reference)
        .ok_or_else(|| CommitError::Impossible(format!("bad image reference {reference}")))?;
    match ctx
        .runtime
        .tag_image(
            source_reference,
            &ami_tag.repository(),
            ami_tag.ami_id.as_str(),
        )
        .await
    {
        Ok(docker_id) => Ok(Some(docker_id)),
        Err(RuntimeError::NotFound(_)) => Err(CommitError::Impossible(format!(
            "the image {source_reference} of the source AMI is gone"
        ))),
        Err(other) => Err(other.into()),
    }
}

/// The Docker id of an image that already exists, from the catalog when it is there.
async fn existing_id<R: ContainerRuntime>(ctx: &Context<R>, reference: &str) -> String {
    match ctx.runtime.list_amis().await {
        Ok(amis) => amis
            .into_iter()
            .find(|a| a.reference == reference)
            .map(|a| a.docker_id)
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}
