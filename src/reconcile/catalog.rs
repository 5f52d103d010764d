//! AMI discovery and deregistration: mirrors Docker's `localstack-ec2/<name>:<ami>` tags into the store's catalog, and removes the tags of deregistered AMIs before collecting their records.
//!
//! Deregistration is carried out here, by the one catalog key, rather than by each AMI's own
//! key: the catalog is written from a listing of the engine's tags, and a pass that listed a
//! tag just before another key removed it, and wrote the catalog just after that key deleted
//! the record hiding it, would bring the AMI back. One key never runs twice at once, so here
//! a record is deleted only in a pass whose own listing (taken after its tags were removed)
//! no longer has the AMI, and every later pass lists afresh.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::{Context, Engine, ReconcileError};
use crate::controller::Action;
use crate::model::{
    ImageSource, ImageSpec, ImageState, ImageStatus, Object, ObjectMeta, API_VERSION,
    DISCOVERED_NAMESPACE, IMAGE_KIND, VM_MANAGER_TAG,
};
use crate::runtime::{AmiImage, ContainerRuntime, RuntimeError};

/// The region catalog entries are filed under; they are visible in every region.
pub const CATALOG_REGION: &str = DISCOVERED_NAMESPACE;

/// How soon to look again while a deregistered AMI's tag cannot go yet: the engine keeps an
/// image's last tag while a container (an instance launched from it) uses the image, and a
/// removal that failed otherwise is tried again.
const IN_USE_REQUEUE: Duration = Duration::from_secs(5);

/// List-and-untag rounds one pass makes at most (a tag listed again after its removal was
/// added meanwhile; the next pass takes it).
const UNTAG_ROUNDS: usize = 8;

/// Whether an image listed with an AMI tag was committed by another ec2d process sharing the
/// engine (its `ec2d.store-id` label names another store).
pub(super) fn foreign(ami: &AmiImage, store_id: &str) -> bool {
    ami.store_id
        .as_deref()
        .is_some_and(|owner| owner != store_id)
}

/// Removes the tags of deregistered AMIs, re-lists the engine's AMI images, replaces the
/// catalog with them (less the deregistered), then collects the deregistered records whose
/// tags are gone.
///
/// A tag that cannot go yet stays for a later pass: while a container uses its image (the
/// engine refuses), or when its removal failed otherwise (logged); its record is kept, and the
/// pass carries on. A discovered AMI's tag on an image another ec2d committed (see
/// [`foreign`]) is never removed: that ec2d's AMI relies on it. Its record is dropped, and the
/// catalog leaves out such a tag of an id DeregisterImage remembers (`images.deregistered`),
/// so the AMI stays deregistered here.
pub(super) async fn reconcile<R: ContainerRuntime>(
    ctx: &Context<R>,
) -> Result<Action, ReconcileError> {
    // Read before listing: a record deregistered later is handled by the pass its spec
    // change triggers (the API hides it meanwhile).
    let deregistered: Vec<_> = ctx
        .store
        .images()
        .list_shared()?
        .objects
        .into_iter()
        .filter(|image| image.spec.deregistered)
        .collect();
    let gone: HashMap<&str, &ImageSource> = deregistered
        .iter()
        .map(|image| (image.metadata.name.as_str(), &image.spec.source))
        .collect();
    let store_id = ctx.store.id();
    // Tags a deregistration leaves: another ec2d's image under a discovered AMI's tag.
    let spared = |ami: &AmiImage| {
        foreign(ami, store_id) && matches!(gone.get(ami.ami_id.as_str()), Some(ImageSource::Docker))
    };
    let (mut amis, mut unlisted) = list_everywhere(ctx).await?;
    // Tags that stay for a later pass, and why, per engine and reference.
    let mut kept: BTreeMap<(String, String), String> = BTreeMap::new();
    for _ in 0..UNTAG_ROUNDS {
        let doomed: Vec<(Arc<Engine<R>>, String, String)> = amis
            .iter()
            .filter(|(engine, a)| {
                gone.contains_key(a.ami_id.as_str())
                    && !kept.contains_key(&(engine.name().to_string(), a.reference.clone()))
                    && !spared(a)
            })
            .map(|(engine, a)| (engine.clone(), a.ami_id.to_string(), a.reference.clone()))
            .collect();
        if doomed.is_empty() {
            break;
        }
        for (engine, image_id, reference) in doomed {
            let key = (engine.name().to_string(), reference.clone());
            match engine.runtime().remove_image_tag(&reference).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {
                    info!(%image_id, %reference, engine = %engine.name(), "tag of a deregistered AMI removed");
                }
                Err(RuntimeError::Conflict(reason)) => {
                    debug!(%image_id, %reference, %reason, "tag of a deregistered AMI kept while its image is in use");
                    kept.insert(key, reason);
                }
                Err(error) => {
                    warn!(%image_id, %reference, %error, "could not remove the tag of a deregistered AMI; its record waits for the next pass");
                    kept.insert(key, error.to_string());
                }
            }
        }
        (amis, unlisted) = list_everywhere(ctx).await?;
    }
    // An AMI tag on an engine that cannot be listed now may still be there.
    let still_tagged_unseen = !unlisted.is_empty();
    let still_tagged: BTreeSet<String> = amis
        .iter()
        .filter(|(_, a)| gone.contains_key(a.ami_id.as_str()) && !spared(a))
        .map(|(_, a)| a.ami_id.to_string())
        .collect();
    // Per AMI, the tags left to another ec2d, each with that ec2d's store id.
    let mut left_to_others: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, ami) in amis.iter().filter(|(_, a)| spared(a)) {
        left_to_others
            .entry(ami.ami_id.to_string())
            .or_default()
            .push(format!(
                "{} (store {})",
                ami.reference,
                ami.store_id.as_deref().unwrap_or_default()
            ));
    }
    let mut objects = Vec::with_capacity(amis.len());
    let mut listed = BTreeSet::new();
    for (_, ami) in amis {
        // One entry per AMI however many engines hold its image (the default's first).
        if !listed.insert(ami.ami_id.to_string()) {
            continue;
        }
        if gone.contains_key(ami.ami_id.as_str())
            || (foreign(&ami, store_id)
                && ctx
                    .store
                    .was_deregistered(ami.ami_id.as_str(), DISCOVERED_NAMESPACE)?)
        {
            continue;
        }
        objects.push(discovered(ami));
    }
    // An engine that cannot be listed keeps the entries no other engine lists: its AMIs stay
    // through its outage.
    if !unlisted.is_empty() {
        for entry in ctx.store.catalog().list_shared()?.objects {
            let id = entry.metadata.name.as_str();
            if !listed.contains(id) && !gone.contains_key(id) {
                objects.push((*entry).clone());
            }
        }
        unlisted.sort();
        debug!(engines = ?unlisted, "engines not listed; their AMIs are kept as last seen");
    }
    let count = objects.len();
    ctx.store.catalog().replace_all(&objects)?;
    tracing::debug!(count, "ami catalog refreshed");

    let mut unacknowledged = false;
    for image in &deregistered {
        let id = image.metadata.name.as_str();
        // Until its own key acknowledged the deregistration, a commit or copy may still tag
        // an image for it.
        let acknowledged = image.status.state == Some(ImageState::Deregistered)
            && image.status.observed_generation >= image.metadata.generation;
        if !acknowledged {
            unacknowledged = true;
        } else if !still_tagged.contains(id) && !still_tagged_unseen {
            if let Some(tags) = left_to_others.get(id) {
                info!(image_id = %id, ?tags, "tag of a deregistered AMI kept: its image was committed by another ec2d sharing the engine (its store id label), whose AMI relies on it; the record goes and the AMI stays deregistered here");
            }
            ctx.store.images().delete(id)?;
            info!(image_id = %id, "deregistered AMI collected");
        }
    }
    Ok(if unacknowledged {
        Action::requeue(ctx.settings.converging_requeue)
    } else if !still_tagged.is_empty() {
        Action::requeue(IN_USE_REQUEUE.min(ctx.settings.converged_requeue))
    } else {
        Action::requeue(ctx.settings.converged_requeue)
    })
}

/// The AMI images of every engine that answers, each with its engine (the default's first),
/// and the names of the engines that did not. Fails only when none answers.
async fn list_everywhere<R: ContainerRuntime>(
    ctx: &Context<R>,
) -> Result<(Vec<(Arc<Engine<R>>, AmiImage)>, Vec<String>), ReconcileError> {
    let mut amis = Vec::new();
    let mut unlisted = Vec::new();
    let mut last_error = None;
    for engine in ctx.engines.iter() {
        match engine.runtime().list_amis().await {
            Ok(listed) => amis.extend(listed.into_iter().map(|ami| (engine.clone(), ami))),
            Err(error) => {
                let result: Result<(), ReconcileError> = Err(error.into());
                engine.monitor().observe(&result);
                unlisted.push(engine.name().to_string());
                last_error = result.err();
            }
        }
    }
    match last_error {
        Some(error) if unlisted.len() == ctx.engines.iter().count() => Err(error),
        _ => Ok((amis, unlisted)),
    }
}

/// The catalog entry of one discovered tag.
fn discovered(ami: AmiImage) -> Object<ImageSpec, ImageStatus> {
    let created = ami.created.unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut meta = ObjectMeta::new(ami.ami_id.as_str(), CATALOG_REGION, created);
    meta.generation = 1;
    let mut spec = ImageSpec::new(ami.name, ImageSource::Docker, ami.reference);
    spec.tags
        .insert(VM_MANAGER_TAG.to_string(), "docker".to_string());
    Object {
        api_version: API_VERSION.to_string(),
        kind: IMAGE_KIND.to_string(),
        metadata: meta,
        spec,
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
}
