//! The host's mount table as [`VolumeMounts`](super::VolumeMounts) uses it: the real one (mount(2) through `rustix`) and an in-memory fake.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::mountinfo::escape;

/// A mount's propagation type, as `mount --make-private`/`--make-shared` set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// No propagation: leaves any peer group the mount was in.
    Private,
    /// A new peer group of its own (after `Private`): mounts made under it reach its slaves.
    Shared,
}

/// The few mount operations ec2d needs. Implementations change nothing but what they are told.
pub trait MountTable: Send + Sync + 'static {
    /// What backs it, for logs and `/_ec2d/status`.
    fn name(&self) -> &'static str;
    /// This process's `/proc/self/mountinfo`.
    fn mountinfo(&self) -> io::Result<String>;
    /// `mount --bind source target` (not recursive).
    fn bind(&self, source: &Path, target: &Path) -> io::Result<()>;
    /// `mount --make-private`/`--make-shared target`.
    fn set_propagation(&self, target: &Path, propagation: Propagation) -> io::Result<()>;
    /// `umount target` (lazily when busy); `EINVAL` when nothing is mounted there.
    fn unmount(&self, target: &Path) -> io::Result<()>;
    /// `mkdir -p`.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// `mkdir -p base/relative` refusing any component under `base` that is not a directory
    /// (a symbolic link in particular): the real table checks each with `lstat`.
    fn create_dir_beneath(&self, base: &Path, relative: &Path) -> io::Result<()> {
        self.create_dir(&base.join(relative))
    }
    /// Removes `path` and the directories under it, only if they are all empty directories:
    /// never a file (`rmdir` fails instead). Callers make sure nothing is mounted below, since
    /// an empty directory inside a mounted volume is the volume's data.
    fn remove_empty_dirs(&self, path: &Path) -> io::Result<()>;
    /// `rmdir path`: only an empty directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// The path with symlinks resolved, as mountinfo spells it.
    fn canonical(&self, path: &Path) -> io::Result<PathBuf>;
}

/// The host's own mount table: needs root (`CAP_SYS_ADMIN`) for anything but reading.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemMounts;

impl MountTable for SystemMounts {
    fn name(&self) -> &'static str {
        "mount(2)"
    }

    fn mountinfo(&self) -> io::Result<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
    }

    fn bind(&self, source: &Path, target: &Path) -> io::Result<()> {
        rustix::mount::mount_bind(source, target).map_err(io::Error::from)
    }

    fn set_propagation(&self, target: &Path, propagation: Propagation) -> io::Result<()> {
        use rustix::mount::MountPropagationFlags as F;
        let flags = match propagation {
            Propagation::Private => F::PRIVATE,
            Propagation::Shared => F::SHARED,
        };
        rustix::mount::mount_change(target, flags).map_err(io::Error::from)
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        use rustix::mount::UnmountFlags;
        // Never through a symbolic link the instance may have put in its own directory.
        match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
            // Something holds it open on the host: detach it now, the kernel frees it later.
            Err(rustix::io::Errno::BUSY) => {
                rustix::mount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW)
                    .map_err(io::Error::from)
            }
            other => other.map_err(io::Error::from),
        }
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn create_dir_beneath(&self, base: &Path, relative: &Path) -> io::Result<()> {
        // One component at a time, never following a symbolic link: the directories under an
        // instance's directory are writable by the instance (it is its /mnt), and a link it
        // planted must not send a mount onto the host's own tree.
        let mut at = base.to_path_buf();
        for part in relative.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "{} is not a directory (a symbolic link or a file put there from inside the instance)",
                        at.display()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&at)?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn remove_empty_dirs(&self, path: &Path) -> io::Result<()> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if !meta.is_dir() {
            return Err(io::Error::other(format!(
                "{} is not a directory",
                path.display()
            )));
        }
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                self.remove_empty_dirs(&entry.path())?;
            }
        }
        // rmdir, never a recursive delete: fails on anything left (a file, a mount point).
        std::fs::remove_dir(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

/// An in-memory mount table for tests: it keeps mounts and directories, writes mountinfo
/// lines as the kernel does, and can be told to refuse mounting (not root).
#[derive(Debug, Default)]
pub struct FakeMounts {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    mounts: Vec<FakeMount>,
    dirs: BTreeSet<PathBuf>,
    next_id: u64,
    next_group: u64,
    refuse: Option<String>,
}

#[derive(Debug, Clone)]
struct FakeMount {
    id: u64,
    root: PathBuf,
    point: PathBuf,
    shared: Option<u64>,
}

impl FakeMounts {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A table that refuses every mount change with `EPERM`, as for a process without root.
    pub fn refusing() -> Self {
        let fake = Self::default();
        lock(&fake.state).refuse = Some("not root".into());
        fake
    }

    /// The mount points, in mount order.
    pub fn mount_points(&self) -> Vec<PathBuf> {
        lock(&self.state)
            .mounts
            .iter()
            .map(|m| m.point.clone())
            .collect()
    }

    /// Whether a directory exists.
    pub fn has_dir(&self, path: &Path) -> bool {
        lock(&self.state).dirs.contains(path)
    }

    fn refused(state: &FakeState) -> io::Result<()> {
        match &state.refuse {
            Some(_) => Err(io::Error::from_raw_os_error(1)),
            None => Ok(()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(22)
}

impl MountTable for FakeMounts {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn mountinfo(&self) -> io::Result<String> {
        let state = lock(&self.state);
        let mut out = String::from("1 0 0:1 / / rw,relatime - overlay overlay rw\n");
        for m in &state.mounts {
            let shared = m.shared.map(|g| format!(" shared:{g}")).unwrap_or_default();
            out.push_str(&format!(
                "{} 1 254:1 {} {} rw,relatime{shared} - ext4 /dev/vda1 rw\n",
                m.id,
                escape(&m.root.to_string_lossy()),
                escape(&m.point.to_string_lossy()),
            ));
        }
        Ok(out)
    }

    fn bind(&self, source: &Path, target: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        Self::refused(&state)?;
        if !state.dirs.contains(target) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        state.next_id += 1;
        // A mount made under a shared mount joins a peer group too, as the kernel does.
        let under_shared = state
            .mounts
            .iter()
            .any(|m| m.shared.is_some() && target.starts_with(&m.point) && target != m.point);
        let shared = under_shared.then(|| {
            state.next_group += 1;
            state.next_group
        });
        let id = state.next_id;
        state.mounts.push(FakeMount {
            id,
            root: source.to_path_buf(),
            point: target.to_path_buf(),
            shared,
        });
        Ok(())
    }

    fn set_propagation(&self, target: &Path, propagation: Propagation) -> io::Result<()> {
        let mut state = lock(&self.state);
        Self::refused(&state)?;
        state.next_group += 1;
        let group = state.next_group;
        let mount = state
            .mounts
            .iter_mut()
            .rev()
            .find(|m| m.point == target)
            .ok_or_else(einval)?;
        mount.shared = match propagation {
            Propagation::Private => None,
            Propagation::Shared => Some(group),
        };
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        Self::refused(&state)?;
        let at = state
            .mounts
            .iter()
            .rposition(|m| m.point == target)
            .ok_or_else(einval)?;
        state.mounts.remove(at);
        Ok(())
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        for ancestor in path.ancestors() {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn remove_empty_dirs(&self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        if state.mounts.iter().any(|m| m.point.starts_with(path)) {
            return Err(io::Error::from_raw_os_error(16));
        }
        state.dirs.retain(|d| !d.starts_with(path));
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        let busy = state.mounts.iter().any(|m| m.point == path)
            || state.dirs.iter().any(|d| d != path && d.starts_with(path));
        if busy {
            return Err(io::Error::from_raw_os_error(39));
        }
        state.dirs.remove(path);
        Ok(())
    }

    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(path.to_path_buf())
    }
}
