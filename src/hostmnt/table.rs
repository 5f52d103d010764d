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
    /// `mkdir -p base/relative` then `mount --bind source base/relative`, where nothing under
    /// `base` may be anything but a directory (a symbolic link in particular): the directories
    /// under an owner's are the instance's to change, at any moment. The real table opens
    /// each component beneath `base` without following links and mounts onto the opened
    /// directory itself, so no swap between the check and the mount can redirect it.
    fn bind_beneath(&self, source: &Path, base: &Path, relative: &Path) -> io::Result<()> {
        let target = base.join(relative);
        self.create_dir(&target)?;
        self.bind(source, &target)
    }
    /// `umount base/relative` (lazily when busy) resolved as [`Self::bind_beneath`] does;
    /// `EINVAL` when nothing is mounted there, `ENOENT` when it does not exist.
    fn unmount_beneath(&self, base: &Path, relative: &Path) -> io::Result<()> {
        self.unmount(&base.join(relative))
    }
    /// Removes `base/relative` and the directories under it, only if they are all empty
    /// directories: never a file (`rmdir` fails instead), never through a symbolic link.
    /// Callers make sure nothing is mounted below, since an empty directory inside a mounted
    /// volume is the volume's data.
    fn remove_empty_dirs_beneath(&self, base: &Path, relative: &Path) -> io::Result<()>;
    /// `rmdir base/relative`: only an empty directory, resolved as [`Self::bind_beneath`] does.
    fn remove_dir_beneath(&self, base: &Path, relative: &Path) -> io::Result<()>;
    /// The path with symlinks resolved, as mountinfo spells it.
    fn canonical(&self, path: &Path) -> io::Result<PathBuf>;
    /// Whether `path` is missing or an empty directory, so nothing can be mounted beneath it
    /// (a mount point is an entry of its parent). `false` when unsure: the table is read.
    fn is_empty_dir(&self, _path: &Path) -> bool {
        false
    }
}

/// The host's own mount table: needs root (`CAP_SYS_ADMIN`) for anything but reading.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemMounts;

impl MountTable for SystemMounts {
    fn name(&self) -> &'static str {
        "mount(2)"
    }

    fn is_empty_dir(&self, path: &Path) -> bool {
        match std::fs::read_dir(path) {
            Ok(mut entries) => entries.next().is_none(),
            Err(error) => error.kind() == io::ErrorKind::NotFound,
        }
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

    fn bind_beneath(&self, source: &Path, base: &Path, relative: &Path) -> io::Result<()> {
        let target = beneath::open(base, relative, true)?;
        // The magic link names the opened directory itself, whatever its path has become.
        rustix::mount::mount_bind(source, beneath::proc_path(&target)).map_err(io::Error::from)
    }

    fn unmount_beneath(&self, base: &Path, relative: &Path) -> io::Result<()> {
        use rustix::mount::UnmountFlags;
        // The parent opened beneath `base`, then the last component not followed: a link
        // there is refused (`EINVAL`). No descriptor is held on the mount itself, which
        // would make it busy and every unmount lazy.
        let (parent, name) = beneath::open_parent(base, relative)?;
        let path = beneath::proc_path(&parent).join(name);
        match rustix::mount::unmount(&path, UnmountFlags::NOFOLLOW) {
            // Something holds it open on the host: detach it now, the kernel frees it later.
            Err(rustix::io::Errno::BUSY) => {
                rustix::mount::unmount(&path, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW)
                    .map_err(io::Error::from)
            }
            other => other.map_err(io::Error::from),
        }
    }

    fn remove_empty_dirs_beneath(&self, base: &Path, relative: &Path) -> io::Result<()> {
        let (parent, name) = beneath::open_parent(base, relative)?;
        beneath::remove_tree(&parent, name)
    }

    fn remove_dir_beneath(&self, base: &Path, relative: &Path) -> io::Result<()> {
        let (parent, name) = beneath::open_parent(base, relative)?;
        rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::REMOVEDIR).map_err(io::Error::from)
    }

    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

/// Path resolution beneath an owner's directory, as `openat2(RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS)` does it: the instance (root in its container) writes into that
/// directory, and whatever it puts there must never send an operation outside it.
pub(super) mod beneath {
    use std::ffi::OsStr;
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::path::{Component, Path, PathBuf};

    use rustix::fs::{Mode, OFlags, ResolveFlags};

    /// A directory opened for reference only (`O_PATH`), never through a link.
    const DIR: OFlags = OFlags::PATH
        .union(OFlags::DIRECTORY)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);

    fn resolve() -> ResolveFlags {
        // Mount crossings are allowed: a volume mounted inside another is a layout users ask
        // for (`ec2d:mount-point`).
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
    }

    fn name_of(part: Component<'_>) -> io::Result<&OsStr> {
        match part {
            Component::Normal(name) => Ok(name),
            _ => Err(io::Error::from_raw_os_error(EINVAL)),
        }
    }

    const EINVAL: i32 = 22;

    /// Opens `base` (ec2d's own directory, not a link) then `relative` beneath it, one
    /// component at a time, making each missing one when `create`.
    pub fn open(base: &Path, relative: &Path, create: bool) -> io::Result<OwnedFd> {
        let mut at = rustix::fs::open(base, DIR, Mode::empty())?;
        for part in relative.components() {
            let name = name_of(part)?;
            let opened = match rustix::fs::openat2(&at, name, DIR, Mode::empty(), resolve()) {
                Err(rustix::io::Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&at, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    rustix::fs::openat2(&at, name, DIR, Mode::empty(), resolve())
                }
                other => other,
            };
            at = opened.map_err(|e| refused(e, base, relative))?;
        }
        Ok(at)
    }

    /// Opens the parent of `relative` beneath `base` and gives the last component's name.
    pub fn open_parent<'a>(base: &Path, relative: &'a Path) -> io::Result<(OwnedFd, &'a OsStr)> {
        let name = relative
            .components()
            .next_back()
            .ok_or_else(|| io::Error::from_raw_os_error(EINVAL))
            .and_then(name_of)?;
        let parent = relative.parent().unwrap_or(Path::new(""));
        Ok((open(base, parent, false)?, name))
    }

    /// `/proc/self/fd/<fd>`: the opened directory itself to mount(2) and umount(2).
    pub fn proc_path(fd: &OwnedFd) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
    }

    /// `rmdir` of `name` under `parent` after its empty subdirectories, depth first, each
    /// opened beneath its parent without following links (`unlinkat` fails on a file or a
    /// link left inside, and on a mount point).
    pub fn remove_tree(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
        let dir = match rustix::fs::openat2(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            resolve(),
        ) {
            Ok(dir) => dir,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut children = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir)? {
            let entry = entry?;
            let child = entry.file_name().to_bytes();
            if entry.file_type() == rustix::fs::FileType::Directory
                && child != b"."
                && child != b".."
            {
                children
                    .push(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(child).to_owned());
            }
        }
        for child in children {
            remove_tree(&dir, &child)?;
        }
        rustix::fs::unlinkat(parent, name, rustix::fs::AtFlags::REMOVEDIR).map_err(io::Error::from)
    }

    fn refused(error: rustix::io::Errno, base: &Path, relative: &Path) -> io::Error {
        match error {
            // ELOOP (a link), ENOTDIR (a file), EXDEV (an escape): planted from inside.
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR | rustix::io::Errno::XDEV => {
                io::Error::other(format!(
                    "{} is not a directory beneath {} (a symbolic link or a file put there from inside the instance): {error}",
                    relative.display(),
                    base.display()
                ))
            }
            other => other.into(),
        }
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

    fn remove_empty_dirs_beneath(&self, base: &Path, relative: &Path) -> io::Result<()> {
        let path = &base.join(relative);
        let mut state = lock(&self.state);
        if state.mounts.iter().any(|m| m.point.starts_with(path)) {
            return Err(io::Error::from_raw_os_error(16));
        }
        state.dirs.retain(|d| !d.starts_with(path));
        Ok(())
    }

    fn remove_dir_beneath(&self, base: &Path, relative: &Path) -> io::Result<()> {
        let path = &base.join(relative);
        let mut state = lock(&self.state);
        let busy = state.mounts.iter().any(|m| m.point == *path)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_or_empty_directory_spares_reading_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let owner = dir.path().join("i-1");
        assert!(SystemMounts.is_empty_dir(&owner), "missing");
        std::fs::create_dir(&owner).unwrap();
        assert!(SystemMounts.is_empty_dir(&owner), "empty");
        std::fs::create_dir(owner.join("data")).unwrap();
        assert!(
            !SystemMounts.is_empty_dir(&owner),
            "a mount point may be there"
        );
        assert!(
            !FakeMounts::default().is_empty_dir(&owner),
            "the fake always reads"
        );
    }
}
