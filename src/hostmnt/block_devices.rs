//! LocalStack's `EC2_MOUNT_BLOCK_DEVICES`: a sparse file per EBS volume on the host, bound into the container at the volume's device path for users who format and mount devices themselves.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

/// The directory of the files under ec2d's data dir.
pub const DIR: &str = "block-devices";

/// Where the device files live and how large one may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDeviceFiles {
    /// `<data dir>/block-devices`.
    pub dir: PathBuf,
    /// `EC2_EBS_MAX_VOLUME_SIZE`, MiB.
    pub max_mib: u64,
}

impl BlockDeviceFiles {
    /// The files under `data_dir`, each at most `max_mib` MiB.
    pub fn new(data_dir: &Path, max_mib: u64) -> Self {
        Self {
            dir: data_dir.join(DIR),
            max_mib,
        }
    }

    /// The volume's file, made (sparse) or grown to `size` MiB capped at the maximum, as
    /// LocalStack reads `VolumeSize` (MiB, not GiB). A file is never shrunk: it holds the
    /// user's file system.
    pub fn ensure(&self, volume_id: &str, size: u64) -> io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(volume_id)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let wanted = size.min(self.max_mib).max(1) * 1024 * 1024;
        if file.metadata()?.len() < wanted {
            file.set_len(wanted)?;
        }
        Ok(path)
    }

    /// Removes the volume's file (the volume is deleted); gone already is fine.
    pub fn remove(&self, volume_id: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(volume_id)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// `<dir>/<volume id>.img`; an id that could name another path is refused.
    fn path(&self, volume_id: &str) -> io::Result<PathBuf> {
        if volume_id.is_empty()
            || !volume_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a volume id: {volume_id:?}"),
            ));
        }
        Ok(self.dir.join(format!("{volume_id}.img")))
    }
}

/// The device path inside the container for a device name as the user gave it
/// (`/dev/sdf` or `sdf`).
pub fn device_path(device: &str) -> String {
    let name = device.strip_prefix("/dev/").unwrap_or(device);
    format!("/dev/{}", name.trim_matches('/'))
}

/// Whether a file exists and how large it is, for the tests.
#[cfg(test)]
fn size_of(path: &Path) -> Option<u64> {
    std::fs::File::open(path)
        .and_then(|f| f.metadata())
        .map(|m| m.len())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_sparse_capped_grown_never_shrunk_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let files = BlockDeviceFiles::new(dir.path(), 8);
        let path = files.ensure("vol-0123456789abcdef0", 4).unwrap();
        assert_eq!(size_of(&path), Some(4 << 20));
        // Capped at the maximum, in MiB.
        files.ensure("vol-0123456789abcdef0", 100).unwrap();
        assert_eq!(size_of(&path), Some(8 << 20));
        // Never shrunk.
        files.ensure("vol-0123456789abcdef0", 2).unwrap();
        assert_eq!(size_of(&path), Some(8 << 20));
        files.remove("vol-0123456789abcdef0").unwrap();
        assert_eq!(size_of(&path), None);
        files.remove("vol-0123456789abcdef0").unwrap();
        assert!(files.ensure("../etc", 1).is_err());
    }

    #[test]
    fn device_names_become_dev_paths() {
        assert_eq!(device_path("/dev/sdf"), "/dev/sdf");
        assert_eq!(device_path("xvdg"), "/dev/xvdg");
    }
}
