//! How an instance boots inside its container: the boot script and what it is given.
//!
//! The container's entrypoint becomes `/bin/sh -c <boot script>`, a POSIX script that works
//! on busybox and Debian alike. Its inputs (instance id, public key, user data) arrive as
//! environment variables, so creating the container is all it takes: no archive upload into
//! the container's file system, which costs more than the start itself on overlay storage.
//! The script writes the key into root's `authorized_keys` and the user data to
//! `/var/lib/cloud/instances/<id>/user-data.txt` before anything else runs, starts an SSH
//! server when the image has one, runs the user data (in the background, so it never holds
//! the instance in `pending`), and then keeps the container alive whatever the image's own
//! command was, as LocalStack's appended keep-alive does.
//!
//! The user data runs as [`cloud_config`] translated it (cloud-config, multi-part, gzip), its
//! once-per-instance parts on the first boot only. An image with cloud-init installed
//! (`/usr/bin/cloud-init`) gets no translation: the script starts cloud-init's stages, which
//! read the user data from ec2d's IMDS, and steps aside.
//!
//! Images whose command is an init system (systemd) keep their command: the same script
//! then runs once through `docker exec` after the start, without the keep-alive.

use base64::Engine as _;

use super::cloud_config;
use crate::model::Instance;

/// The name the script runs under (`$0`), visible in `ps`.
const SCRIPT_NAME: &str = "ec2d-boot";

/// The translated user data travels in environment entries of at most this many bytes: Linux
/// refuses a single entry over 128 KiB (`MAX_ARG_STRLEN`).
const SCRIPT_CHUNK: usize = 64 * 1024;

/// The boot script. `$1` is `exec` when it runs beside an image's own init system.
const BOOT_SCRIPT: &str = r#"
ID="$EC2D_INSTANCE_ID"
DIR="/var/lib/cloud/instances/$ID"
LOG=/var/log/cloud-init-output.log
mkdir -p /var/log "$DIR"
touch "$LOG"

if [ -n "$EC2D_PUBLIC_KEY" ]; then
    mkdir -p /root/.ssh
    chmod 700 /root/.ssh
    if ! grep -qxF "$EC2D_PUBLIC_KEY" /root/.ssh/authorized_keys 2>/dev/null; then
        printf '%s
' "$EC2D_PUBLIC_KEY" >> /root/.ssh/authorized_keys
    fi
    chmod 600 /root/.ssh/authorized_keys
fi
if [ -n "$EC2D_USER_DATA" ] && [ ! -f "$DIR/user-data.txt" ]; then
    if ! printf '%s' "$EC2D_USER_DATA" | base64 -d > "$DIR/user-data.txt" 2>/dev/null; then
        echo "ec2d: cannot decode user data (no base64 in this image)" >> "$LOG"
        rm -f "$DIR/user-data.txt"
    fi
fi
# The translated user data, reassembled from its chunks (see SCRIPT_CHUNK).
if [ -n "$EC2D_USER_SCRIPT_PARTS" ]; then
    : > "$DIR/ec2d-user-data.sh"
    i=0
    while [ "$i" -lt "$EC2D_USER_SCRIPT_PARTS" ]; do
        eval "printf '%s' \"\$EC2D_USER_SCRIPT_$i\"" >> "$DIR/ec2d-user-data.sh"
        unset "EC2D_USER_SCRIPT_$i"
        i=$((i + 1))
    done
fi
# Nothing started from here on (user data, sshd, their children) inherits the inputs.
unset EC2D_PUBLIC_KEY EC2D_USER_DATA EC2D_USER_SCRIPT_PARTS

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

# An image with cloud-init runs the user data itself, from IMDS, once per instance; without
# systemd nothing else starts its stages. Under an init system its own units do.
if [ -x /usr/bin/cloud-init ]; then
    if [ "$1" != exec ]; then
        # Each stage runs whatever the one before said, as systemd's units do: a failing
        # module makes its stage exit non-zero without stopping the rest.
        ( cd / && for stage in init "modules --mode=config" "modules --mode=final"; do
            /usr/bin/cloud-init $stage
        done ) </dev/null >>/var/log/ec2d-cloud-init-stages.log 2>&1 &
    fi
# Otherwise the translated user data runs on every boot; its once-per-instance parts only
# when the marker is new. The marker is written first, so a restart never runs them twice.
elif [ -f "$DIR/ec2d-user-data.sh" ]; then
    FIRST=0
    if [ ! -f "$DIR/sem/user-data.done" ]; then
        mkdir -p "$DIR/sem"
        date > "$DIR/sem/user-data.done"
        FIRST=1
    fi
    ( cd / && /bin/sh "$DIR/ec2d-user-data.sh" "$FIRST" "$ID" 2>&1 | tee -a "$LOG" ) </dev/null &
fi

if [ "$1" = exec ]; then exit 0; fi

# Keep the instance up. TERM/INT end it with the usual 128+signal status (TerminateInstances,
# docker stop, or `kill 1` inside); USR1/USR2 are busybox's halt/poweroff, a clean exit 0.
# ec2d reads the difference when Docker's event log cannot tell who stopped the container.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 0' USR1 USR2
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

/// The boot script's inputs, as `KEY=value` environment entries.
pub fn env(instance: &Instance) -> Vec<String> {
    let mut env = vec![format!("EC2D_INSTANCE_ID={}", instance.metadata.name)];
    if let Some(key) = &instance.spec.public_key {
        env.push(format!("EC2D_PUBLIC_KEY={}", key.trim()));
    }
    // The API stores user data base64-encoded, as it arrives on the wire; the script
    // decodes it, so binary user data (gzip) survives the trip through the environment.
    if let Some(user_data) = &instance.spec.user_data {
        env.push(format!("EC2D_USER_DATA={user_data}"));
        env.extend(user_script_env(user_data));
    }
    env
}

/// The translated user data as `EC2D_USER_SCRIPT_<n>` chunks and their count. Undecodable
/// user data gives none: the script's own decoding then logs why nothing runs.
fn user_script_env(user_data: &str) -> Vec<String> {
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(user_data.trim()) else {
        return Vec::new();
    };
    let Some(script) = cloud_config::translate(&raw) else {
        return Vec::new();
    };
    let mut env = Vec::new();
    let mut rest = script.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(SCRIPT_CHUNK);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        env.push(format!("EC2D_USER_SCRIPT_{}={}", env.len(), &rest[..end]));
        rest = &rest[end..];
    }
    env.push(format!("EC2D_USER_SCRIPT_PARTS={}", env.len()));
    env
}

/// The entrypoint that runs the boot script and keeps the container alive.
pub fn entrypoint() -> Vec<String> {
    vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        BOOT_SCRIPT.to_string(),
        SCRIPT_NAME.to_string(),
    ]
}

/// The command that runs the boot script beside an image's own init system.
pub fn exec_command() -> Vec<String> {
    let mut command = entrypoint();
    command.push("exec".to_string());
    command
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
    fn env_carries_the_key_and_the_user_data() {
        let mut inst = fixtures::instance();
        inst.spec.public_key = Some("ssh-ed25519 AAAA test\n".into());
        inst.spec.user_data = Some("IyEvYmluL3NoCmVjaG8gaGkK".into());
        let env = env(&inst);
        assert_eq!(env[0], format!("EC2D_INSTANCE_ID={}", inst.metadata.name));
        assert!(env.contains(&"EC2D_PUBLIC_KEY=ssh-ed25519 AAAA test".to_string()));
        assert!(env.contains(&"EC2D_USER_DATA=IyEvYmluL3NoCmVjaG8gaGkK".to_string()));
        assert!(env.contains(&"EC2D_USER_SCRIPT_PARTS=1".to_string()));
        assert!(env.iter().any(|e| e.starts_with("EC2D_USER_SCRIPT_0=")));
        assert_eq!(super::env(&fixtures::instance()).len(), 1);
    }

    #[test]
    fn a_large_translation_travels_in_chunks_under_the_kernels_limit() {
        use std::io::Write as _;
        // 200 KB of script, gzip-compressed to a few hundred bytes of user data.
        let body = format!(
            "#!/bin/sh\n{}",
            "echo 0123456789abcdef0123456789abcdef\n".repeat(5_000)
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(body.as_bytes()).unwrap();
        let user_data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let env = user_script_env(&user_data);
        let (count, chunks) = env.split_last().unwrap();
        assert_eq!(count, &format!("EC2D_USER_SCRIPT_PARTS={}", chunks.len()));
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        let mut joined = String::new();
        for (n, chunk) in chunks.iter().enumerate() {
            let value = chunk
                .strip_prefix(&format!("EC2D_USER_SCRIPT_{n}="))
                .unwrap();
            assert!(value.len() <= SCRIPT_CHUNK);
            joined.push_str(value);
        }
        assert_eq!(Some(joined), cloud_config::translate(body.as_bytes()));
        assert!(user_script_env("not base64!").is_empty());
    }

    #[test]
    fn the_script_is_posix_shell_and_exec_mode_skips_the_keep_alive() {
        let entry = entrypoint();
        assert_eq!(&entry[..2], ["/bin/sh", "-c"]);
        assert_eq!(exec_command().last().map(String::as_str), Some("exec"));
        // `sh -n` parses the script without running it.
        if let Ok(out) = std::process::Command::new("sh")
            .args(["-n", "-c", BOOT_SCRIPT])
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
