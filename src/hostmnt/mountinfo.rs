//! Parsing `/proc/self/mountinfo`: what is mounted where, and which mounts are shared.
//!
//! Each line is `id parent major:minor root mount-point options [optional…] - fstype source
//! super-options` (proc(5)); paths have space, tab, newline and backslash escaped as octal
//! (`\040`). The optional fields carry the propagation: `shared:N` (peer group N),
//! `master:N` (a slave of group N).

use std::path::PathBuf;

/// One mount, as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The mount's id.
    pub id: u64,
    /// Its parent's id.
    pub parent: u64,
    /// The path within the mounted file system that is mounted here (a bind mount's source,
    /// relative to that file system's own root).
    pub root: PathBuf,
    /// Where it is mounted, in this process's mount namespace.
    pub mount_point: PathBuf,
    /// The peer group it shares mount events with (`shared:N`), if any.
    pub shared: Option<u64>,
    /// The peer group it receives mount events from (`master:N`), if any.
    pub master: Option<u64>,
    /// The file system type.
    pub fs_type: String,
    /// The mount source (a device, or a name like `overlay`).
    pub source: String,
}

/// Undoes the kernel's octal escapes (`\040` is a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes a path as the kernel does in mountinfo (for the fake, which writes lines).
pub(super) fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

/// Parses one line; `None` for a line that does not have mountinfo's shape.
pub fn parse_line(line: &str) -> Option<MountEntry> {
    let mut fields = line.split(' ');
    let id = fields.next()?.parse().ok()?;
    let parent = fields.next()?.parse().ok()?;
    let _device = fields.next()?;
    let root = PathBuf::from(unescape(fields.next()?));
    let mount_point = PathBuf::from(unescape(fields.next()?));
    let _options = fields.next()?;
    let (mut shared, mut master) = (None, None);
    loop {
        let field = fields.next()?;
        if field == "-" {
            break;
        }
        if let Some(group) = field.strip_prefix("shared:") {
            shared = group.parse().ok();
        } else if let Some(group) = field.strip_prefix("master:") {
            master = group.parse().ok();
        }
    }
    let fs_type = unescape(fields.next()?);
    let source = unescape(fields.next().unwrap_or(""));
    Some(MountEntry {
        id,
        parent,
        root,
        mount_point,
        shared,
        master,
        fs_type,
        source,
    })
}

/// Parses a whole mountinfo listing, skipping lines it cannot read.
pub fn parse(listing: &str) -> Vec<MountEntry> {
    listing.lines().filter_map(parse_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as this machine's kernel writes them (Debian, Docker 20.10, overlay root).
    const LISTING: &str = "\
1210 1150 0:88 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X:/var/lib/docker/overlay2/l/Y,upperdir=/u,workdir=/w
1211 1210 0:91 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1222 1210 254:1 /var/lib/ec2d/volume-mounts /var/lib/ec2d/volume-mounts rw,relatime shared:512 - ext4 /dev/vda1 rw,discard,errors=remount-ro
1230 1222 254:1 /var/lib/docker/volumes/ec2d-vol-1/_data /var/lib/ec2d/volume-mounts/i-0abc/sdf rw,relatime shared:512 - ext4 /dev/vda1 rw
1231 1222 254:1 /tmp/with\\040space /var/lib/ec2d/volume-mounts/i-0abc/data\\040dir rw,relatime master:7 shared:513 - ext4 /dev/vda1 rw
garbage line
";

    #[test]
    fn reads_real_looking_lines_with_their_propagation() {
        let entries = parse(LISTING);
        assert_eq!(entries.len(), 5);
        let root = &entries[0];
        assert_eq!(root.mount_point, PathBuf::from("/"));
        assert_eq!((root.shared, root.master), (None, None));
        assert_eq!(root.fs_type, "overlay");
        let propagation = &entries[2];
        assert_eq!(propagation.id, 1222);
        assert_eq!(propagation.parent, 1210);
        assert_eq!(propagation.shared, Some(512));
        assert_eq!(propagation.source, "/dev/vda1");
        let volume = &entries[3];
        assert_eq!(
            volume.root,
            PathBuf::from("/var/lib/docker/volumes/ec2d-vol-1/_data")
        );
        assert_eq!(
            volume.mount_point,
            PathBuf::from("/var/lib/ec2d/volume-mounts/i-0abc/sdf")
        );
        let escaped = &entries[4];
        assert_eq!(escaped.root, PathBuf::from("/tmp/with space"));
        assert_eq!(
            escaped.mount_point,
            PathBuf::from("/var/lib/ec2d/volume-mounts/i-0abc/data dir")
        );
        assert_eq!((escaped.shared, escaped.master), (Some(513), Some(7)));
    }

    #[test]
    fn escaping_round_trips_and_odd_escapes_stay_literal() {
        for path in ["/a b", "/t\tab", "/back\\slash", "/plain"] {
            assert_eq!(unescape(&escape(path)), path);
        }
        assert_eq!(unescape("/a\\9xy"), "/a\\9xy");
        assert_eq!(unescape("/end\\04"), "/end\\04");
        assert!(parse_line("1 2 3").is_none());
        assert!(parse_line("x 2 0:1 / / rw - ext4 /dev/a rw").is_none());
    }
}
