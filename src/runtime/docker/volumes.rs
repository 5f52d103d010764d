//! Docker volumes behind EBS volumes and snapshots: the create request, the observed volumes, and the copy of one volume's files into another through the engine's archive API.
//!
//! The copy never reads a host path, so it works against a remote engine too: two helper
//! containers (created, never started) mount the source read-only and the target, and the
//! source's tar stream (`GET /containers/{id}/archive?path=/v/.`) is piped into the target
//! (`PUT /containers/{id}/archive?path=/v`). Two containers, not one: the engine holds a
//! container's lock until its archive has been read to the end, so a `PUT` into the same
//! container would wait for the `GET` that waits for it. The helpers run from a tiny image of
//! ec2d's own (one empty directory, imported on first use, never pulled) and carry the
//! [`labels::VOLUME_HELPER`] label, so a sweep collects those a crash left behind.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bollard::container::{
    Config, CreateContainerOptions, DownloadFromContainerOptions, ListContainersOptions,
    RemoveContainerOptions, UploadToContainerOptions,
};
use bollard::image::CreateImageOptions;
use bollard::models::{HostConfig, Mount, MountTypeEnum, Volume};
use bollard::volume::CreateVolumeOptions;
use bollard::Docker;
use futures::stream::StreamExt;
use tracing::{debug, info, warn};

use super::archive::ArchiveRelay;
use super::errors::map_error;
use crate::runtime::{
    labels, DockerVolumeSpec, ObservedVolume, RuntimeError, RuntimeResult, VolumeOwner,
};

/// The helper containers' image: ec2d's own, made by importing one empty directory.
pub(super) const HELPER_IMAGE: &str = "ec2d/volume-helper:1";

/// Where a helper container mounts its volume.
const HELPER_MOUNT: &str = "/v";

/// What the copies of one process share: the helper containers in use (the sweep leaves them
/// alone) and a lock so two first copies do not both import the image.
#[derive(Default)]
pub(super) struct Helpers {
    in_use: Mutex<HashSet<String>>,
    image: tokio::sync::Mutex<()>,
}

impl Helpers {
    fn hold(&self, id: &str) {
        self.in_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string());
    }

    fn release(&self, id: &str) {
        self.in_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    fn is_held(&self, id: &str) -> bool {
        self.in_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }
}

/// The engine's create request: a local volume labelled as ec2d's.
pub(super) fn create_options(spec: &DockerVolumeSpec) -> CreateVolumeOptions<String> {
    let owner_label = match &spec.owner {
        VolumeOwner::Volume(_) => labels::VOLUME_ID,
        VolumeOwner::Snapshot(_) => labels::SNAPSHOT_ID,
    };
    CreateVolumeOptions {
        name: spec.name.clone(),
        driver: "local".to_string(),
        driver_opts: HashMap::new(),
        labels: HashMap::from([
            (owner_label.to_string(), spec.owner.id().to_string()),
            (labels::STORE_ID.to_string(), spec.store_id.clone()),
            (labels::MANAGED.to_string(), "true".to_string()),
        ]),
    }
}

/// A volume as ec2d sees it, when it carries ec2d's volume or snapshot label.
pub(super) fn observed_volume(volume: Volume) -> Option<ObservedVolume> {
    let labels = volume.labels;
    let owner = if let Some(id) = labels.get(labels::VOLUME_ID) {
        VolumeOwner::Volume(id.clone())
    } else {
        VolumeOwner::Snapshot(labels.get(labels::SNAPSHOT_ID)?.clone())
    };
    Some(ObservedVolume {
        name: volume.name,
        owner,
        store_id: labels.get(labels::STORE_ID).cloned(),
        mountpoint: volume.mountpoint,
        labels: labels.into_iter().collect(),
    })
}

/// One of ec2d's volumes by name: `NotFound` when gone, `Failed` when it lacks ec2d's labels
/// (never touched).
pub(super) async fn inspect_owned(docker: &Docker, name: &str) -> RuntimeResult<ObservedVolume> {
    let volume = docker
        .inspect_volume(name)
        .await
        .map_err(|e| map_error("inspect volume", e))?;
    observed_volume(volume).ok_or_else(|| {
        RuntimeError::Failed(format!(
            "volume {name} does not carry ec2d's labels; leaving it alone"
        ))
    })
}

/// A tar archive holding one empty directory, `ec2d/`: the helper image's whole file system.
fn helper_rootfs() -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |header: &mut [u8; 512], at: usize, field: &[u8]| {
        header[at..at + field.len()].copy_from_slice(field);
    };
    put(&mut header, 0, b"ec2d/");
    put(&mut header, 100, b"0000755\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(&mut header, 124, b"00000000000\0");
    put(&mut header, 136, b"00000000000\0");
    header[156] = b'5';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    // The checksum is taken with its own field as spaces.
    put(&mut header, 148, b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// Imports the helper image unless it is there.
async fn ensure_helper_image(docker: &Docker, helpers: &Helpers) -> RuntimeResult<()> {
    let _held = helpers.image.lock().await;
    match docker.inspect_image(HELPER_IMAGE).await {
        Ok(_) => return Ok(()),
        Err(e) => match map_error("inspect image", e) {
            RuntimeError::NotFound(_) => {}
            other => return Err(other),
        },
    }
    let (repo, tag) = HELPER_IMAGE
        .split_once(':')
        .unwrap_or((HELPER_IMAGE, "latest"));
    let label = format!("LABEL {}=true", labels::MANAGED);
    let options = CreateImageOptions {
        from_src: "-",
        repo,
        tag,
        changes: vec![label.as_str()],
        ..Default::default()
    };
    let mut progress = docker.create_image(Some(options), Some(helper_rootfs().into()), None);
    while let Some(step) = progress.next().await {
        step.map_err(|e| map_error("import volume helper image", e))?;
    }
    info!(image = HELPER_IMAGE, "imported the volume helper image");
    Ok(())
}

/// Creates a never-started helper container mounting `volume` at [`HELPER_MOUNT`]; returns its
/// id, held in `helpers` until released.
async fn create_helper(
    docker: &Docker,
    helpers: &Helpers,
    volume: &str,
    read_only: bool,
    target: &str,
) -> RuntimeResult<String> {
    let name = format!("ec2d-volume-helper-{}", uuid::Uuid::new_v4().simple());
    let config = Config {
        image: Some(HELPER_IMAGE.to_string()),
        // Never run: the engine only wants a command to create the container.
        cmd: Some(vec!["/ec2d/none".to_string()]),
        labels: Some(HashMap::from([
            (labels::VOLUME_HELPER.to_string(), target.to_string()),
            (labels::MANAGED.to_string(), "true".to_string()),
        ])),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            mounts: Some(vec![Mount {
                target: Some(HELPER_MOUNT.to_string()),
                source: Some(volume.to_string()),
                typ: Some(MountTypeEnum::VOLUME),
                read_only: Some(read_only),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: name.clone(),
                platform: None,
            }),
            config,
        )
        .await
        .map_err(|e| map_error("create volume helper", e))?;
    helpers.hold(&created.id);
    Ok(created.id)
}

async fn remove_helper(docker: &Docker, helpers: &Helpers, id: &str) {
    let removed = docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: false,
                link: false,
            }),
        )
        .await;
    match removed.map_err(|e| map_error("remove volume helper", e)) {
        Ok(()) | Err(RuntimeError::NotFound(_)) => helpers.release(id),
        // Left held for nobody: the sweep's next pass (or the next start) collects it.
        Err(error) => {
            helpers.release(id);
            warn!(container = %id, %error, "could not remove a volume helper container; the sweep will");
        }
    }
}

/// Copies every file of `from` into `to` (both ec2d's volumes); returns the bytes of file data.
pub(super) async fn copy(
    docker: &Docker,
    helpers: &Helpers,
    from: &str,
    to: &str,
) -> RuntimeResult<u64> {
    inspect_owned(docker, from).await?;
    inspect_owned(docker, to).await?;
    ensure_helper_image(docker, helpers).await?;
    let source = create_helper(docker, helpers, from, true, to).await?;
    let target = match create_helper(docker, helpers, to, false, to).await {
        Ok(id) => id,
        Err(e) => {
            remove_helper(docker, helpers, &source).await;
            return Err(e);
        }
    };
    let result = pipe(docker, &source, &target).await;
    remove_helper(docker, helpers, &source).await;
    remove_helper(docker, helpers, &target).await;
    let bytes = result?;
    debug!(%from, %to, bytes, "copied volume data");
    Ok(bytes)
}

/// Streams the source helper's archive into the target helper; returns the bytes of file data.
async fn pipe(docker: &Docker, source: &str, target: &str) -> RuntimeResult<u64> {
    let download = docker.download_from_container(
        source,
        Some(DownloadFromContainerOptions {
            path: format!("{HELPER_MOUNT}/."),
        }),
    );
    // A read error ends the body early: the engine then refuses the truncated archive (or
    // has written part of it), and the read error is what is reported.
    let (relay, body) = ArchiveRelay::new("volume archive", download, |_| {});
    let uploaded = docker
        .upload_to_container_streaming(
            target,
            Some(UploadToContainerOptions {
                path: HELPER_MOUNT.to_string(),
                no_overwrite_dir_non_dir: String::new(),
            }),
            body,
        )
        .await
        .map_err(|e| map_error("write volume archive", e));
    Ok(relay.finish(uploaded)?.file_bytes)
}

/// Removes helper containers whose target begins with `prefix` and that no copy of this
/// process holds.
pub(super) async fn remove_leftover_helpers(
    docker: &Docker,
    helpers: &Helpers,
    prefix: &str,
) -> RuntimeResult<usize> {
    let filters = HashMap::from([("label".to_string(), vec![labels::VOLUME_HELPER.to_string()])]);
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        }))
        .await
        .map_err(|e| map_error("list volume helpers", e))?;
    let mut removed = 0;
    for container in list {
        let target = container
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::VOLUME_HELPER));
        let Some(id) = container.id.as_deref() else {
            continue;
        };
        if !target.is_some_and(|t| t.starts_with(prefix)) || helpers.is_held(id) {
            continue;
        }
        info!(container = %id, target = ?target, "removing a leftover volume helper container");
        match docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: false,
                    link: false,
                }),
            )
            .await
            .map_err(|e| map_error("remove volume helper", e))
        {
            Ok(()) => removed += 1,
            Err(RuntimeError::NotFound(_)) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::super::archive::tar_number;
    use super::*;

    #[test]
    fn the_helper_rootfs_is_one_valid_directory_entry() {
        let tar = helper_rootfs();
        assert_eq!(tar.len(), 1536);
        let mut check = tar[..512].to_vec();
        check[148..156].copy_from_slice(b"        ");
        let sum: u64 = check.iter().map(|b| u64::from(*b)).sum();
        assert_eq!(tar_number(&tar[148..156]), sum);
        assert_eq!(tar[156], b'5');
    }
}
