//! How an instance boots inside its container: the boot script and the files copied in before it starts.
//!
//! The container's entrypoint becomes `/bin/sh /var/lib/ec2d/boot.sh`, a POSIX script that
//! works on busybox and Debian alike. It fixes the key's modes, starts an SSH server when
//! the image has one, runs the user data once per instance (in the background, so it never
//! holds the instance in `pending`), and then keeps the container alive whatever the
//! image's own command was, as LocalStack's appended keep-alive does.
//!
//! Images whose command is an init system (systemd) keep their command: the same script
//! then runs once through `docker exec` after the start, without the keep-alive.

use base64::Engine;

use crate::model::Instance;
use crate::runtime::ContainerFile;

/// Where the boot script is put.
pub const BOOT_SCRIPT_PATH: &str = "/var/lib/ec2d/boot.sh";

/// The boot script. `$1` is `exec` when it runs beside an image's own init system.
const BOOT_SCRIPT: &str = r#"#!/bin/sh
# ec2d instance boot: keys, SSH, user data, keep-alive. Written by ec2d; runs as root.
ID="$(cat /var/lib/ec2d/instance-id)"
DIR="/var/lib/cloud/instances/$ID"
LOG=/var/log/cloud-init-output.log
mkdir -p /var/log "$DIR"
touch "$LOG"

if [ -f /root/.ssh/authorized_keys ]; then
    chmod 700 /root/.ssh
    chmod 600 /root/.ssh/authorized_keys
fi

SSHD=""
for candidate in /usr/sbin/sshd /usr/bin/sshd /sbin/sshd; do
    if [ -x "$candidate" ]; then SSHD="$candidate"; break; fi
done
if [ -n "$SSHD" ]; then
    mkdir -p /run/sshd /var/run/sshd
    chmod 755 /run/sshd 2>/dev/null
    if command -v ssh-keygen >/dev/null 2>&1; then ssh-keygen -A >/dev/null 2>&1; fi
    "$SSHD" -o PermitRootLogin=prohibit-password >>"$LOG" 2>&1 || echo "ec2d: sshd failed to start" >>"$LOG"
fi

# User data runs once per instance, honouring its shebang (default /bin/sh). The marker is
# written first, so a restart never runs it twice.
if [ -f "$DIR/user-data.txt" ] && [ ! -f "$DIR/sem/user-data.done" ]; then
    mkdir -p "$DIR/sem"
    date > "$DIR/sem/user-data.done"
    chmod 700 "$DIR/user-data.txt"
    if head -c 2 "$DIR/user-data.txt" | grep -q '^#!'; then
        RUN="$DIR/user-data.txt"
    else
        RUN="/bin/sh $DIR/user-data.txt"
    fi
    ( cd / && $RUN 2>&1 | tee -a "$LOG" ) </dev/null &
fi

if [ "$1" = exec ]; then exit 0; fi

# Keep the instance up. TERM/INT end it (TerminateInstances, docker stop); USR1/USR2 are
# busybox halt/poweroff: an instance-initiated shutdown.
trap 'exit 0' TERM INT USR1 USR2
while :; do
    sleep 3600 &
    wait $!
done
"#;

/// Whether an image's command is an init system that must stay PID 1 (systemd images).
pub fn is_init_system(entrypoint: &[String], cmd: &[String]) -> bool {
    let first = entrypoint.first().or_else(|| cmd.first());
    first.is_some_and(|program| {
        let name = program.rsplit('/').next().unwrap_or(program);
        matches!(name, "init" | "systemd" | "openrc-init" | "runit-init")
    })
}

/// The files every instance container gets before it starts.
pub fn files(instance: &Instance) -> Vec<ContainerFile> {
    let id = &instance.metadata.name;
    let mut files = vec![
        ContainerFile {
            path: BOOT_SCRIPT_PATH.to_string(),
            mode: 0o755,
            contents: BOOT_SCRIPT.as_bytes().to_vec(),
        },
        ContainerFile {
            path: "/var/lib/ec2d/instance-id".to_string(),
            mode: 0o644,
            contents: format!("{id}\n").into_bytes(),
        },
    ];
    if let Some(key) = &instance.spec.public_key {
        files.push(ContainerFile {
            path: "/root/.ssh/authorized_keys".to_string(),
            mode: 0o600,
            contents: format!("{}\n", key.trim_end()).into_bytes(),
        });
    }
    if let Some(user_data) = &instance.spec.user_data {
        // The API stores user data base64-encoded, as it arrives on the wire.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(user_data)
            .unwrap_or_else(|_| user_data.as_bytes().to_vec());
        files.push(ContainerFile {
            path: format!("/var/lib/cloud/instances/{id}/user-data.txt"),
            mode: 0o700,
            contents: decoded,
        });
    }
    files
}

/// The entrypoint that runs the boot script and keeps the container alive.
pub fn entrypoint() -> Vec<String> {
    vec!["/bin/sh".to_string(), BOOT_SCRIPT_PATH.to_string()]
}

/// The command that runs the boot script beside an image's own init system.
pub fn exec_command() -> Vec<String> {
    vec![
        "/bin/sh".to_string(),
        BOOT_SCRIPT_PATH.to_string(),
        "exec".to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    #[test]
    fn init_systems_are_recognised() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(is_init_system(&s(&["/sbin/init"]), &[]));
        assert!(is_init_system(&[], &s(&["/lib/systemd/systemd"])));
        assert!(is_init_system(&[], &s(&["/usr/sbin/init"])));
        assert!(!is_init_system(&[], &s(&["/bin/sh"])));
        assert!(!is_init_system(
            &s(&["/docker-entrypoint.sh"]),
            &s(&["nginx"])
        ));
        assert!(!is_init_system(&[], &[]));
    }

    #[test]
    fn files_carry_keys_and_decoded_user_data() {
        let mut inst = fixtures::instance();
        inst.spec.public_key = Some("ssh-ed25519 AAAA test".into());
        inst.spec.user_data =
            Some(base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\necho hi\n"));
        let files = files(&inst);
        let by_path = |p: &str| {
            files
                .iter()
                .find(|f| f.path == p)
                .unwrap_or_else(|| panic!("{p} missing"))
        };
        assert_eq!(by_path("/root/.ssh/authorized_keys").mode, 0o600);
        assert_eq!(
            by_path("/root/.ssh/authorized_keys").contents,
            b"ssh-ed25519 AAAA test\n"
        );
        let ud = by_path(&format!(
            "/var/lib/cloud/instances/{}/user-data.txt",
            inst.metadata.name
        ));
        assert_eq!(ud.contents, b"#!/bin/sh\necho hi\n");
        assert_eq!(by_path(BOOT_SCRIPT_PATH).mode, 0o755);
    }

    #[test]
    fn without_key_or_user_data_only_the_boot_files_are_copied() {
        let inst = fixtures::instance();
        assert_eq!(files(&inst).len(), 2);
    }
}
