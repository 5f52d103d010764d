//! Host mounts: the mount propagation point through which directories appear inside running containers, with no re-creation and no privilege.
//!
//! The propagation root (`<data dir>/volume-mounts`) is a shared mount of itself (`mount
//! --bind R R; mount --make-private R; mount --make-shared R`: a peer group of its own).
//! Each container gets `R/<owner>` bound at `/mnt` with `rslave` propagation, so a later
//! `mount --bind <source> R/<owner>/<path>` on the host appears at `/mnt/<path>` inside it,
//! and an unmount takes it away again. What is mounted is always read back from
//! `/proc/self/mountinfo` ([`VolumeMounts::mounts`]): callers observe, never remember, so a
//! mount removed behind ec2d's back, or left by a previous run, is seen as it is.
//!
//! This module knows paths and owner names only (no EC2 types). When the root cannot be set
//! up (not root, no mount syscall) everything here refuses and [`VolumeMounts::problem`] says
//! why. Mounts outlive ec2d: they belong to the running containers, and the next start
//! adopts the root and what is under it.

pub mod block_devices;
mod mountinfo;
mod table;
#[cfg(test)]
mod tests;

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tracing::{info, warn};

pub use mountinfo::{parse as parse_mountinfo, MountEntry};
pub use table::{FakeMounts, MountTable, Propagation, SystemMounts};

/// The propagation root's directory name under the data directory.
pub const ROOT_DIR: &str = "volume-mounts";

/// Where the container sees its directory of the propagation root.
pub const CONTAINER_DIR: &str = "/mnt";

/// Whether this process runs in a container, read from its mount table: container engines
/// (Docker, Podman, containerd) bind-mount a per-container file at `/etc/hostname`, where a
/// host has a plain file. Marker files are no proof: `/.dockerenv` stays in machines built
/// from container images, which run their own engine with its mounts and NAT on the host.
pub fn in_container() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|listing| is_container_mount_table(&parse_mountinfo(&listing)))
        .unwrap_or(false)
}

/// [`in_container`] on a parsed mount table.
pub fn is_container_mount_table(entries: &[MountEntry]) -> bool {
    entries
        .iter()
        .any(|entry| entry.mount_point == Path::new("/etc/hostname"))
}

/// A mount change that failed, with what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MountError(String);

impl MountError {
    fn io(op: &str, path: &Path, error: &std::io::Error) -> Self {
        Self(format!("{op} {}: {error}", path.display()))
    }
}

/// One mount under an owner's directory, as mountinfo lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    /// Its path under the owner's directory (`sdf`, `data/logs`).
    pub path: String,
    /// The directory mounted there, relative to its file system's root (mountinfo's `root`).
    pub source_root: PathBuf,
}

impl HostMount {
    /// Whether this is a bind of `source`. mountinfo gives the source relative to its file
    /// system's root, so a source on a file system mounted elsewhere than `/` (a separate
    /// `/var/lib/docker`) ends with it.
    pub fn is_of(&self, source: &Path) -> bool {
        // A whole file system mounted (`/`) cannot be told apart from its subdirectories.
        let root = self
            .source_root
            .strip_prefix("/")
            .unwrap_or(&self.source_root);
        root.as_os_str().is_empty() || source.ends_with(root)
    }
}

/// What `/_ec2d/status` shows under `volumeMounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMountsReport {
    /// Whether volumes attach to running containers (hot); otherwise only at creation.
    pub active: bool,
    /// The mount table in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The propagation root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Whether the root was found already shared at start (left by a previous run).
    pub adopted: bool,
    /// Why hot attachment is off, or the last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The propagation root and the mounts under it (cheap to clone, shared by app and reconciler).
#[derive(Clone)]
pub struct VolumeMounts(Arc<Inner>);

struct Inner {
    wiring: Option<(Arc<dyn MountTable>, PathBuf)>,
    adopted: bool,
    problem: Mutex<Option<String>>,
}

impl std::fmt::Debug for VolumeMounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VolumeMounts").field(&self.report()).finish()
    }
}

impl VolumeMounts {
    /// No propagation root, for this reason: volumes attach only when a container is created.
    pub fn off(reason: impl Into<String>) -> Self {
        Self(Arc::new(Inner {
            wiring: None,
            adopted: false,
            problem: Mutex::new(Some(reason.into())),
        }))
    }

    /// Makes `root` a shared mount of itself on `table`, or adopts it when it already is one
    /// (a previous run's, with its mounts). A failure logs one warning and gives [`Self::off`].
    pub fn setup(table: Arc<dyn MountTable>, root: &Path) -> Self {
        match make_root(table.as_ref(), root) {
            Ok((root, adopted)) => {
                info!(root = %root.display(), backend = table.name(), adopted, "volume mount propagation point ready: attached volumes appear in running instances");
                Self(Arc::new(Inner {
                    wiring: Some((table, root)),
                    adopted,
                    problem: Mutex::new(None),
                }))
            }
            Err(error) => {
                let reason = format!(
                    "volumes attach only when an instance's container is created: cannot make {} a shared mount ({error}); run ec2d as root on the engine's host",
                    root.display()
                );
                warn!("{reason}");
                Self::off(reason)
            }
        }
    }

    /// Whether volumes can be mounted into running containers.
    pub fn is_active(&self) -> bool {
        self.0.wiring.is_some()
    }

    /// Why hot attachment is off, or its last failure.
    pub fn problem(&self) -> Option<String> {
        lock(&self.0.problem).clone()
    }

    /// The document `/_ec2d/status` shows.
    pub fn report(&self) -> VolumeMountsReport {
        let wiring = self.0.wiring.as_ref();
        VolumeMountsReport {
            active: wiring.is_some(),
            backend: wiring.map(|(t, _)| t.name().to_string()),
            root: wiring.map(|(_, r)| r.display().to_string()),
            adopted: self.0.adopted,
            problem: self.problem(),
        }
    }

    /// The owner's directory under the root (what a container binds at `/mnt`), when active.
    pub fn owner_dir(&self, owner: &str) -> Option<PathBuf> {
        let (_, root) = self.0.wiring.as_ref()?;
        single_component(owner).ok()?;
        Some(root.join(owner))
    }

    /// Whether a container created with `binds` has the owner's directory at `/mnt`, and so
    /// sees what is mounted there.
    pub fn bound_in(&self, owner: &str, binds: &[String]) -> bool {
        let Some(dir) = self.owner_dir(owner) else {
            return false;
        };
        let bind = format!("{}:{CONTAINER_DIR}", dir.display());
        binds
            .iter()
            .any(|b| *b == bind || b.strip_prefix(&bind).is_some_and(|m| m.starts_with(':')))
    }

    /// The `Binds` entry that gives a container the owner's directory at `/mnt`, receiving
    /// later mounts (`rslave`), after making sure the directory exists (Docker would make a
    /// missing one itself, but as a plain directory the create races).
    pub fn prepare(&self, owner: &str) -> Result<String, MountError> {
        let (table, dir) = self.wired(owner)?;
        table
            .create_dir(&dir)
            .map_err(|e| MountError::io("mkdir", &dir, &e))?;
        Ok(format!("{}:{CONTAINER_DIR}:rslave", dir.display()))
    }

    /// Bind-mounts `source` at `<root>/<owner>/<path>`, making the directories first; nothing
    /// under the owner's directory is followed if it is a symbolic link (the instance writes
    /// there), and the mount lands on the directory opened, never on one swapped in since.
    pub fn mount(&self, owner: &str, path: &str, source: &Path) -> Result<(), MountError> {
        let (table, dir) = self.wired(owner)?;
        let relative = relative(path)?;
        table.bind_beneath(source, &dir, &relative).map_err(|e| {
            MountError::io(
                &format!("bind {} on", source.display()),
                &dir.join(&relative),
                &e,
            )
        })
    }

    /// Unmounts `<root>/<owner>/<path>` (nothing mounted there is fine) and removes the
    /// directories left empty, so the path disappears inside the container too.
    pub fn unmount(&self, owner: &str, path: &str) -> Result<(), MountError> {
        let (table, dir) = self.wired(owner)?;
        let relative = relative(path)?;
        let target = dir.join(&relative);
        match table.unmount_beneath(&dir, &relative) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(22) | Some(2)) => {}
            Err(e) => return Err(MountError::io("umount", &target, &e)),
        }
        // Best effort: the emptied directory, then its emptied parents below the owner's,
        // and only where no mount is left at or below it (a mount stacked below the one just
        // removed is a volume, and its empty directories are its data) nor above it (a
        // directory inside a volume still mounted is that volume's data, and a mount nested
        // in it may need it again).
        let left = self.mounts(owner)?;
        let below = |p: &Path| left.iter().any(|m| Path::new(&m.path).starts_with(p));
        let inside = |p: &Path| left.iter().any(|m| p.starts_with(&m.path));
        if below(&relative) || inside(&relative) {
            return Ok(());
        }
        if table.remove_empty_dirs_beneath(&dir, &relative).is_err() {
            return Ok(());
        }
        let mut at = relative.parent();
        while let Some(parent) = at.filter(|p| !p.as_os_str().is_empty()) {
            if inside(parent) || table.remove_dir_beneath(&dir, parent).is_err() {
                break;
            }
            at = parent.parent();
        }
        Ok(())
    }

    /// What is mounted under the owner's directory, read from mountinfo (a path mounted more
    /// than once is listed once, with the mount on top).
    pub fn mounts(&self, owner: &str) -> Result<Vec<HostMount>, MountError> {
        let (table, dir) = self.wired(owner)?;
        // Most instances have no volume but their root, so nothing under their directory: the
        // host's mount table (thousands of lines with a few hundred containers, formatted by
        // the kernel at each read) was most of an idle resync's CPU, read once per instance.
        if table.is_empty_dir(&dir) {
            return Ok(Vec::new());
        }
        let listing = table
            .mountinfo()
            .map_err(|e| MountError::io("read", Path::new("/proc/self/mountinfo"), &e))?;
        let mut found: Vec<HostMount> = Vec::new();
        for entry in parse_mountinfo(&listing) {
            let Ok(rest) = entry.mount_point.strip_prefix(&dir) else {
                continue;
            };
            let path = rest.to_string_lossy().into_owned();
            if path.is_empty() {
                continue;
            }
            found.retain(|m| m.path != path);
            found.push(HostMount {
                path,
                source_root: entry.root,
            });
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    /// Unmounts everything under the owner's directory (deepest first) and removes it: the
    /// owner is gone for good (termination).
    pub fn forget(&self, owner: &str) -> Result<(), MountError> {
        let (table, dir) = self.wired(owner)?;
        // Mounts may be stacked on one path: unmount until none is listed.
        for _ in 0..8 {
            let mut mounted = self.mounts(owner)?;
            if mounted.is_empty() {
                let (root, name) = (dir.parent().unwrap_or(&dir), Path::new(owner));
                return table
                    .remove_empty_dirs_beneath(root, name)
                    .map_err(|e| MountError::io("rmdir", &dir, &e));
            }
            mounted.sort_by_key(|m| std::cmp::Reverse(m.path.matches('/').count()));
            for mount in mounted {
                self.unmount(owner, &mount.path)?;
            }
        }
        Err(MountError(format!(
            "{} still has mounts after unmounting them",
            dir.display()
        )))
    }

    fn wired(&self, owner: &str) -> Result<(&dyn MountTable, PathBuf), MountError> {
        let Some((table, root)) = &self.0.wiring else {
            return Err(MountError(
                self.problem()
                    .unwrap_or_else(|| "volume mounts are off".into()),
            ));
        };
        single_component(owner)?;
        Ok((table.as_ref(), root.join(owner)))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// An owner name is one plain path component: it names a directory under the root, never
/// anything beside or above it.
fn single_component(owner: &str) -> Result<(), MountError> {
    let mut components = Path::new(owner).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) if !owner.contains('/') => Ok(()),
        _ => Err(MountError(format!("invalid mount owner {owner:?}"))),
    }
}

/// A path under an owner's directory: relative, plain components only (no `..`).
fn relative(path: &str) -> Result<PathBuf, MountError> {
    let p = Path::new(path);
    if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(MountError(format!("invalid mount path {path:?}")));
    }
    Ok(p.to_path_buf())
}

/// Makes (or adopts) the shared root; returns its canonical path and whether it was adopted.
fn make_root(table: &dyn MountTable, root: &Path) -> Result<(PathBuf, bool), MountError> {
    table
        .create_dir(root)
        .map_err(|e| MountError::io("mkdir", root, &e))?;
    let root = table
        .canonical(root)
        .map_err(|e| MountError::io("resolve", root, &e))?;
    let top = |table: &dyn MountTable| -> Result<Option<MountEntry>, MountError> {
        let listing = table
            .mountinfo()
            .map_err(|e| MountError::io("read", Path::new("/proc/self/mountinfo"), &e))?;
        Ok(parse_mountinfo(&listing)
            .into_iter()
            .rev()
            .find(|e| e.mount_point == root))
    };
    match top(table)? {
        Some(entry) if entry.shared.is_some() => return Ok((root, true)),
        Some(_) => {}
        None => table
            .bind(&root, &root)
            .map_err(|e| MountError::io("bind", &root, &e))?,
    }
    // Private first, so it leaves any group the bind inherited and gets one of its own:
    // mounts under it then reach the containers' slaves and nothing else on the host.
    table
        .set_propagation(&root, Propagation::Private)
        .map_err(|e| MountError::io("make-private", &root, &e))?;
    table
        .set_propagation(&root, Propagation::Shared)
        .map_err(|e| MountError::io("make-shared", &root, &e))?;
    match top(table)? {
        Some(entry) if entry.shared.is_some() => Ok((root, false)),
        _ => Err(MountError(format!(
            "{} is not listed as a shared mount after making it one",
            root.display()
        ))),
    }
}
