//! cloud-init for images without it: user data (cloud-config, MIME multi-part, gzip) translated into one POSIX `sh` script.
//!
//! Pure: bytes in, script out. The boot script runs the result as
//! `sh <script> <first-boot 1|0> <instance id>` with its output appended to
//! `/var/log/cloud-init-output.log`, in place of the raw user data. The script only uses what
//! busybox and Debian's minbase both have (`printf`, `mkdir`, `chmod`, `chown`, `awk`, `grep`).
//!
//! It keeps cloud-init's order and frequencies: boothooks, `bootcmd` and `hostname` on every
//! boot; `write_files`, `users`/`ssh_authorized_keys`, deferred `write_files`, then per-boot
//! scripts (every boot), per-instance scripts, the user's scripts in part order and `runcmd`
//! once per instance. Several cloud-configs merge as cloud-init's default merger does (later
//! keys replace earlier ones). Anything else is logged in the output log and skipped: a user
//! data mistake never stops the instance's boot. Content that is none of these runs as a
//! `/bin/sh` script, as ec2d always ran user data.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Read as _;

use base64::Engine as _;
use mail_parser::{MessageParser, MimeHeaders as _, PartType};
use serde_yaml::{Mapping, Value};

/// Decompressed user data larger than this is not run (EC2 takes 16 KB of user data; this is
/// a bound against gzip bombs, and it keeps the script within the container's environment).
const MAX_EXPANDED: u64 = 256 * 1024;

/// Nesting allowed for gzip inside multi-part inside gzip.
const MAX_DEPTH: usize = 3;

/// The cloud-config keys this translation carries out; any other key is logged and skipped.
const HANDLED: &[&str] = &[
    "bootcmd",
    "runcmd",
    "write_files",
    "users",
    "ssh_authorized_keys",
    "hostname",
    "fqdn",
    "preserve_hostname",
    "prefer_fqdn_over_hostname",
    // Merge directives and output redirection are cloud-init's own settings, not modules.
    "merge_how",
    "merge_type",
    "output",
];

/// Shell helpers every translated script starts with. `$1`: 1 on the instance's first boot.
const PRELUDE: &str = r#"# ec2d: the instance's user data as ec2d's boot script runs it (this image has no cloud-init).
EC2D_FIRST="$1"
INSTANCE_ID="$2"
export INSTANCE_ID
# EC2D_CLOUD_DIR moves cloud-init's state directory for ec2d's own tests only.
EC2D_DIR="${EC2D_CLOUD_DIR:-/var/lib/cloud}/instances/$INSTANCE_ID"
mkdir -p "$EC2D_DIR/scripts/per-boot" "$EC2D_DIR/scripts/per-instance"
ec2d_log() { echo "ec2d cloud-config: $*"; }
ec2d_home() { awk -F: -v u="$1" '$1 == u { print $6 }' /etc/passwd; }
ec2d_ids() { awk -F: -v u="$1" '$1 == u { print $3 ":" $4 }' /etc/passwd; }
ec2d_run() {
    chmod 700 "$1"
    if head -c 2 "$1" | grep -q '^#!'; then "$1"; else /bin/sh "$1"; fi
    status=$?
    [ "$status" = 0 ] || ec2d_log "$1 failed with exit status $status"
}
# The next free id from 1000 in /etc/passwd or /etc/group.
ec2d_next_id() { awk -F: '$3 >= 1000 && $3 < 60000 && $3 > max { max = $3 } END { print (max ? max + 1 : 1000) }' "$1"; }
ec2d_add_user() {
    if awk -F: -v u="$1" '$1 == u { found = 1 } END { exit !found }' /etc/passwd; then
        ec2d_log "users: $1 already exists"
    elif command -v useradd >/dev/null 2>&1; then
        useradd -m ${2:+-s "$2"} ${3:+-d "$3"} ${4:+-c "$4"} "$1" || ec2d_log "users: useradd $1 failed"
    elif command -v adduser >/dev/null 2>&1; then
        adduser -D ${2:+-s "$2"} ${3:+-h "$3"} ${4:+-g "$4"} "$1" || ec2d_log "users: adduser $1 failed"
    else
        # Minimal images (busybox without its adduser applet): what adduser would write.
        uid=$(ec2d_next_id /etc/passwd)
        home=${3:-/home/$1}
        echo "$1:x:$uid:$uid:$4:$home:${2:-/bin/sh}" >> /etc/passwd
        echo "$1:x:$uid:" >> /etc/group
        if [ -f /etc/shadow ]; then echo "$1:!:19000:0:99999:7:::" >> /etc/shadow; fi
        mkdir -p "$home"
        chown "$uid:$uid" "$home"
    fi
}
ec2d_add_group() {
    if command -v usermod >/dev/null 2>&1; then
        grep -q "^$2:" /etc/group || groupadd "$2"
        usermod -aG "$2" "$1" || ec2d_log "users: cannot add $1 to group $2"
        return
    fi
    if ! grep -q "^$2:" /etc/group; then
        gid=$(ec2d_next_id /etc/group)
        echo "$2:x:$gid:" >> /etc/group
    fi
    awk -F: -v g="$2" -v u="$1" 'BEGIN { OFS = ":" } $1 == g { $4 = ($4 == "" ? u : $4 "," u) } 1' /etc/group > /etc/group.ec2d \
        && cat /etc/group.ec2d > /etc/group
    rm -f /etc/group.ec2d
}
ec2d_add_key() {
    home=$(ec2d_home "$1")
    if [ -z "$home" ]; then ec2d_log "ssh_authorized_keys: no user $1"; return; fi
    mkdir -p "$home/.ssh"
    chmod 700 "$home/.ssh"
    grep -qxF "$2" "$home/.ssh/authorized_keys" 2>/dev/null || printf '%s\n' "$2" >> "$home/.ssh/authorized_keys"
    chmod 600 "$home/.ssh/authorized_keys"
    chown -R "$(ec2d_ids "$1")" "$home/.ssh" 2>/dev/null
}
"#;

/// Translates raw (base64-decoded) user data into the script; `None` when there is nothing to run.
pub fn translate(user_data: &[u8]) -> Option<String> {
    let mut parts = Parts::default();
    parts.add(user_data, None, 0);
    parts.script()
}

/// What the user data holds, sorted into cloud-init's handlers.
#[derive(Default)]
struct Parts {
    /// cloud-configs in order, merged at the end.
    configs: Vec<Mapping>,
    boothooks: Vec<Vec<u8>>,
    per_boot: Vec<Vec<u8>>,
    per_instance: Vec<Vec<u8>>,
    scripts: Vec<Vec<u8>>,
    /// Lines for the output log: what was skipped and why.
    notes: Vec<String>,
}

impl Parts {
    /// Sorts one piece of user data; `declared` is its MIME type inside a multi-part.
    fn add(&mut self, data: &[u8], declared: Option<&str>, depth: usize) {
        if data.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        if depth > MAX_DEPTH {
            self.notes
                .push("user data nested too deeply; skipped".into());
            return;
        }
        if data.starts_with(&[0x1f, 0x8b]) {
            match gunzip(data) {
                Ok(plain) => self.add(&plain, None, depth + 1),
                Err(why) => self.notes.push(format!("gzip user data skipped: {why}")),
            }
            return;
        }
        let kind = match declared {
            Some(t) if t != "text/plain" && t != "text/x-not-multipart" => t.to_string(),
            _ => sniff(data).to_string(),
        };
        match kind.as_str() {
            "multipart" => self.add_multipart(data, depth),
            "text/cloud-config" => self.add_cloud_config(data),
            "text/x-shellscript" => self.scripts.push(data.to_vec()),
            "text/x-shellscript-per-boot" => self.per_boot.push(data.to_vec()),
            "text/x-shellscript-per-instance" | "text/x-shellscript-per-once" => {
                self.per_instance.push(data.to_vec())
            }
            "text/cloud-boothook" => self.boothooks.push(strip_first_line(data).to_vec()),
            // Not cloud-init's: ec2d always ran user data as a script, and keeps doing so.
            "unknown" if declared.is_none() => self.scripts.push(data.to_vec()),
            other => self.notes.push(format!(
                "user data part of type {other} is not supported; skipped"
            )),
        }
    }

    fn add_multipart(&mut self, data: &[u8], depth: usize) {
        let Some(message) = MessageParser::default().parse(data) else {
            self.notes
                .push("MIME user data cannot be parsed; skipped".into());
            return;
        };
        for part in &message.parts {
            if matches!(part.body, PartType::Multipart(_) | PartType::Message(_)) {
                continue;
            }
            let declared = part.content_type().map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            });
            // A gzip part is sniffed by its bytes whatever it is declared as.
            let declared = declared.filter(|t| !t.contains("gzip"));
            self.add(part.contents(), declared.as_deref(), depth + 1);
        }
    }

    fn add_cloud_config(&mut self, data: &[u8]) {
        match serde_yaml::from_slice::<Value>(data) {
            Ok(Value::Mapping(map)) => self.configs.push(map),
            Ok(Value::Null) => {}
            Ok(_) => self
                .notes
                .push("cloud-config is not a mapping; skipped".into()),
            Err(e) => self
                .notes
                .push(format!("cloud-config is not valid YAML ({e}); skipped")),
        }
    }

    /// The script, or `None` when the user data asks for nothing.
    fn script(mut self) -> Option<String> {
        let config = self
            .configs
            .drain(..)
            .fold(Mapping::new(), |mut acc, next| {
                merge(&mut acc, next);
                acc
            });
        let nothing = config.is_empty()
            && self.boothooks.is_empty()
            && self.per_boot.is_empty()
            && self.per_instance.is_empty()
            && self.scripts.is_empty();
        if nothing && self.notes.is_empty() {
            return None;
        }
        let mut out = Script::default();
        out.raw(PRELUDE);
        for note in std::mem::take(&mut self.notes) {
            out.log(&note);
        }
        for key in config.keys() {
            let name = key.as_str().map(Cow::Borrowed).unwrap_or_else(|| {
                Cow::Owned(serde_yaml::to_string(key).unwrap_or_default().trim().into())
            });
            if !HANDLED.contains(&name.as_ref()) {
                out.log(&format!("module {name} is not supported by ec2d; skipped"));
            }
        }

        out.section("boothooks", false);
        for (n, hook) in self.boothooks.iter().enumerate() {
            out.run_file(&format!("boothook-{:03}", n + 1), hook);
        }
        out.section("bootcmd", false);
        if let Some(cmds) = config.get("bootcmd") {
            out.commands("bootcmd", cmds);
        }
        out.section("write_files", true);
        out.write_files(config.get("write_files"), false);
        out.section("hostname", false);
        out.hostname(&config);
        out.section("users", true);
        out.users(config.get("users"));
        if let Some(keys) = config.get("ssh_authorized_keys") {
            // ec2d's default user is root: the key pair's key goes there too.
            for key in strings(keys, &mut out, "ssh_authorized_keys") {
                out.line(&format!("ec2d_add_key root {}", quote(&key)));
            }
        }
        out.section("write_files (deferred)", true);
        out.write_files(config.get("write_files"), true);
        out.section("per-boot scripts", false);
        for (n, script) in self.per_boot.iter().enumerate() {
            out.run_file(&format!("per-boot/part-{:03}", n + 1), script);
        }
        out.section("per-instance scripts", true);
        for (n, script) in self.per_instance.iter().enumerate() {
            out.run_file(&format!("per-instance/part-{:03}", n + 1), script);
        }
        out.section("user scripts", true);
        for (n, script) in self.scripts.iter().enumerate() {
            out.run_file(&format!("part-{:03}", n + 1), script);
        }
        if let Some(cmds) = config.get("runcmd") {
            out.commands("runcmd", cmds);
        }
        out.end_section();
        Some(out.text)
    }
}

/// The script under construction, one guarded section at a time.
#[derive(Default)]
struct Script {
    text: String,
    /// Whether the open section is wrapped in the first-boot guard.
    guarded: bool,
}

impl Script {
    fn raw(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn line(&mut self, line: &str) {
        if self.guarded {
            self.text.push_str("    ");
        }
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn log(&mut self, message: &str) {
        self.line(&format!("ec2d_log {}", quote(message)));
    }

    /// Opens a section; `once` sections run on the instance's first boot only.
    fn section(&mut self, name: &str, once: bool) {
        self.end_section();
        let _ = writeln!(self.text, "\n# {name}");
        if once {
            // `:` keeps the body non-empty, which `sh` requires.
            self.text
                .push_str("if [ \"$EC2D_FIRST\" = 1 ]; then\n    :\n");
            self.guarded = true;
        }
    }

    fn end_section(&mut self) {
        if self.guarded {
            self.text.push_str("fi\n");
            self.guarded = false;
        }
    }

    /// Writes `bytes` to `$EC2D_DIR/scripts/<name>` and runs it.
    fn run_file(&mut self, name: &str, bytes: &[u8]) {
        let path = format!("\"$EC2D_DIR/scripts/{name}\"");
        self.line(&format!("{} > {path}", printf_bytes(bytes)));
        self.line(&format!("ec2d_run {path}"));
    }

    /// `bootcmd`/`runcmd`: strings are shell lines, lists are argv (quoted), as cloud-init does.
    fn commands(&mut self, module: &str, cmds: &Value) {
        let Value::Sequence(items) = cmds else {
            self.log(&format!("{module} is not a list; skipped"));
            return;
        };
        let mut body = String::from("#!/bin/sh\n");
        for item in items {
            match item {
                Value::Sequence(argv) => {
                    let words: Vec<String> = argv.iter().filter_map(scalar).collect();
                    body.push_str(&words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "));
                }
                other => match scalar(other) {
                    Some(line) => body.push_str(&line),
                    None => {
                        self.log(&format!(
                            "{module}: an entry is neither a string nor a list; skipped"
                        ));
                        continue;
                    }
                },
            }
            body.push('\n');
        }
        self.run_file(module, body.as_bytes());
    }

    fn write_files(&mut self, files: Option<&Value>, deferred: bool) {
        let Some(files) = files else { return };
        let Value::Sequence(files) = files else {
            if !deferred {
                self.log("write_files is not a list; skipped");
            }
            return;
        };
        for file in files {
            if get_bool(file, "defer") != deferred {
                continue;
            }
            let Some(path) = file.get("path").and_then(scalar) else {
                self.log("write_files: an entry has no path; skipped");
                continue;
            };
            let content = file.get("content").and_then(scalar).unwrap_or_default();
            let encoding = file.get("encoding").and_then(scalar).unwrap_or_default();
            let bytes = match decode(&content, &encoding) {
                Ok(bytes) => bytes,
                Err(why) => {
                    self.log(&format!("write_files: {path}: {why}; skipped"));
                    continue;
                }
            };
            let permissions = file
                .get("permissions")
                .map(permissions)
                .unwrap_or_else(|| "0644".into());
            let owner = file
                .get("owner")
                .and_then(scalar)
                .unwrap_or_else(|| "root:root".into());
            let target = quote(&path);
            let dir = match path.rsplit_once('/') {
                Some((dir, _)) if !dir.is_empty() => dir.to_string(),
                _ => "/".to_string(),
            };
            let redirect = if get_bool(file, "append") { ">>" } else { ">" };
            self.line(&format!("mkdir -p {}", quote(&dir)));
            self.line(&format!("{} {redirect} {target}", printf_bytes(&bytes)));
            self.line(&format!("chmod {} {target}", quote(&permissions)));
            self.line(&format!(
                "chown {owner} {target} 2>/dev/null || ec2d_log {}",
                quote(&format!("write_files: cannot chown {path} to {owner}")),
                owner = quote(&owner)
            ));
        }
    }

    fn hostname(&mut self, config: &Mapping) {
        if config.get("preserve_hostname").is_some_and(truthy) {
            return;
        }
        let fqdn = config.get("fqdn").and_then(scalar);
        let prefer_fqdn = config.get("prefer_fqdn_over_hostname").is_some_and(truthy);
        let name = match (config.get("hostname").and_then(scalar), fqdn) {
            (_, Some(fqdn)) if prefer_fqdn => fqdn,
            (Some(host), _) => host,
            (None, Some(fqdn)) => fqdn.split('.').next().unwrap_or_default().to_string(),
            (None, None) => return,
        };
        let name = quote(&name);
        self.line(&format!("printf '%s\\n' {name} > /etc/hostname"));
        // A container may not change its kernel hostname (no CAP_SYS_ADMIN); /etc/hostname
        // still says it, as on EC2.
        self.line(&format!(
            "hostname {name} 2>/dev/null || ec2d_log \"hostname: the container cannot set its running hostname; /etc/hostname says \"{name}"
        ));
    }

    fn users(&mut self, users: Option<&Value>) {
        let entries: Vec<Value> = match users {
            None => return,
            Some(Value::Sequence(list)) => list.clone(),
            Some(Value::String(names)) => names
                .split(',')
                .map(|n| Value::String(n.trim().to_string()))
                .collect(),
            Some(_) => {
                self.log("users is not a list; skipped");
                return;
            }
        };
        for entry in entries {
            let (name, user) = match &entry {
                Value::String(name) => (name.clone(), Mapping::new()),
                Value::Mapping(map) => match map.get("name").and_then(scalar) {
                    Some(name) => (name, map.clone()),
                    None => {
                        self.log("users: an entry has no name; skipped");
                        continue;
                    }
                },
                _ => {
                    self.log("users: an entry is neither a name nor a mapping; skipped");
                    continue;
                }
            };
            if name == "default" {
                self.log("users: the default user of an ec2d instance is root; nothing to add");
                continue;
            }
            let field = |key: &str| user.get(key).and_then(scalar).unwrap_or_default();
            let home = field("homedir");
            self.line(&format!(
                "ec2d_add_user {} {} {} {}",
                quote(&name),
                quote(&field("shell")),
                quote(&home),
                quote(&field("gecos"))
            ));
            if let Some(groups) = user.get("groups") {
                for group in list_or_csv(groups) {
                    self.line(&format!(
                        "ec2d_add_group {} {}",
                        quote(&name),
                        quote(&group)
                    ));
                }
            }
            let keys = user
                .get("ssh_authorized_keys")
                .or_else(|| user.get("ssh-authorized-keys"));
            if let Some(keys) = keys {
                for key in strings(keys, self, "users: ssh_authorized_keys") {
                    self.line(&format!("ec2d_add_key {} {}", quote(&name), quote(&key)));
                }
            }
            if let Some(sudo) = user.get("sudo") {
                for rule in list_or_csv_lines(sudo) {
                    let line = format!("{name} {rule}");
                    self.line("mkdir -p /etc/sudoers.d");
                    self.line(&format!(
                        "printf '%s\\n' {} >> /etc/sudoers.d/90-cloud-init-users",
                        quote(&line)
                    ));
                    self.line("chmod 0440 /etc/sudoers.d/90-cloud-init-users");
                }
            }
        }
    }
}

/// Recursive merge of cloud-configs: mappings merge, anything else is replaced by the later
/// value (cloud-init's default `dict(replace)+list()+str()`).
fn merge(into: &mut Mapping, next: Mapping) {
    for (key, value) in next {
        match (into.get_mut(&key), value) {
            (Some(Value::Mapping(old)), Value::Mapping(new)) => merge(old, new),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// cloud-init's first-line headers and the part type each stands for; the longer prefix first.
const HEADERS: &[(&str, &str)] = &[
    ("#cloud-config-archive", "text/cloud-config-archive"),
    ("#cloud-config", "text/cloud-config"),
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#!", "text/x-shellscript"),
    ("#include", "text/x-include-url"),
    ("#part-handler", "text/part-handler"),
    ("## template: jinja", "text/jinja2"),
];

/// What kind of user data `data` is, by its first line, as cloud-init tells them apart.
fn sniff(data: &[u8]) -> &'static str {
    let head = &data[..data.len().min(4096)];
    let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
    let start = lower.trim_start();
    if lower.contains("mime-version:") || start.starts_with("content-type: multipart") {
        return "multipart";
    }
    HEADERS
        .iter()
        .find(|(header, _)| start.starts_with(header))
        .map_or("unknown", |(_, kind)| kind)
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(MAX_EXPANDED + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress ({e})"))?;
    if out.len() as u64 > MAX_EXPANDED {
        return Err(format!(
            "larger than {} KiB decompressed",
            MAX_EXPANDED / 1024
        ));
    }
    Ok(out)
}

/// A `write_files` entry's content decoded as its `encoding` says.
fn decode(content: &str, encoding: &str) -> Result<Vec<u8>, String> {
    let b64 = || {
        let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| format!("content is not base64 ({e})"))
    };
    match encoding.to_ascii_lowercase().as_str() {
        "" | "text/plain" => Ok(content.as_bytes().to_vec()),
        "b64" | "base64" => b64(),
        "gz" | "gzip" => gunzip(content.as_bytes()),
        "gz+b64" | "gzip+base64" | "gz+base64" | "gzip+b64" => gunzip(&b64()?),
        other => Err(format!("unknown encoding {other}")),
    }
}

/// `permissions` as cloud-init reads it: an octal string, or a YAML integer that was meant
/// as octal (`0644` unquoted is the integer 644 to YAML 1.2 parsers).
fn permissions(value: &Value) -> String {
    match value {
        Value::Number(n) => format!("0{n}"),
        other => scalar(other).unwrap_or_else(|| "0644".into()),
    }
}

/// A scalar as text (strings, numbers, booleans); `None` for lists, maps and null.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(tagged) => scalar(&tagged.value),
        _ => None,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        other => scalar(other).is_some_and(|s| {
            matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1")
        }),
    }
}

fn get_bool(entry: &Value, key: &str) -> bool {
    entry.get(key).is_some_and(truthy)
}

/// A list of strings, or one string, logging entries of another shape.
fn strings(value: &Value, out: &mut Script, what: &str) -> Vec<String> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .filter_map(|item| {
                let text = scalar(item);
                if text.is_none() {
                    out.log(&format!("{what}: an entry is not a string; skipped"));
                }
                text
            })
            .collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// `groups: [a, b]` or `groups: "a, b"`.
fn list_or_csv(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other)
            .map(|s| {
                s.split(',')
                    .map(|g| g.trim().to_string())
                    .filter(|g| !g.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// `sudo: RULE` or `sudo: [RULE, …]`; `false`/null means none.
fn list_or_csv_lines(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
        Value::Bool(_) | Value::Null => Vec::new(),
        other => scalar(other).into_iter().collect(),
    }
}

fn strip_first_line(data: &[u8]) -> &[u8] {
    match data.iter().position(|&b| b == b'\n') {
        Some(end) => &data[end + 1..],
        None => &[],
    }
}

/// One word for `sh`, single-quoted.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A `printf` command that writes exactly `bytes`: printable ASCII as is, everything else as
/// an octal escape (POSIX `printf` formats understand `\ooo`; busybox's and dash's do).
fn printf_bytes(bytes: &[u8]) -> String {
    let mut format = String::with_capacity(bytes.len() + 16);
    for &b in bytes {
        match b {
            b'%' => format.push_str("%%"),
            b'\\' => format.push_str(r"\\"),
            b'\'' => format.push_str(r"\047"),
            b'\n' => format.push_str(r"\n"),
            0x20..=0x7e => format.push(b as char),
            _ => {
                let _ = write!(format, "\\{b:03o}");
            }
        }
    }
    format!("printf '{format}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_bytes_escapes_what_the_shell_or_printf_would_change() {
        assert_eq!(
            printf_bytes(b"a%b\\c'd\n\x00\xff"),
            r"printf 'a%%b\\c\047d\n\000\377'"
        );
    }

    #[test]
    fn plain_content_runs_as_a_script_as_before() {
        let script = translate(b"echo hi\n").unwrap();
        assert!(script.contains(r"printf 'echo hi\n' > "), "{script}");
        assert!(translate(b"").is_none());
    }

    #[test]
    fn permissions_read_as_octal_whatever_yaml_made_of_them() {
        assert_eq!(permissions(&Value::Number(644.into())), "0644");
        assert_eq!(permissions(&Value::String("0600".into())), "0600");
    }

    #[test]
    fn later_cloud_configs_replace_earlier_keys_and_merge_mappings() {
        let mut a: Mapping = serde_yaml::from_str("runcmd: [a]\nx: {p: 1, q: 2}").unwrap();
        let b: Mapping = serde_yaml::from_str("runcmd: [b]\nx: {q: 3}").unwrap();
        merge(&mut a, b);
        let want: Mapping = serde_yaml::from_str("runcmd: [b]\nx: {p: 1, q: 3}").unwrap();
        assert_eq!(a, want);
    }

    #[test]
    fn sniffing_follows_cloud_inits_headers() {
        assert_eq!(sniff(b"#cloud-config\n"), "text/cloud-config");
        assert_eq!(
            sniff(b"#cloud-config-archive\n"),
            "text/cloud-config-archive"
        );
        assert_eq!(sniff(b"#!/bin/bash\n"), "text/x-shellscript");
        assert_eq!(
            sniff(b"Content-Type: multipart/mixed; boundary=x\nMIME-Version: 1.0\n"),
            "multipart"
        );
        assert_eq!(sniff(b"echo hi"), "unknown");
    }

    /// Runs the translation with the host's `sh` (dash on Debian) in a scratch directory.
    fn run(script: &str, dir: &std::path::Path, first: bool) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .args([
                "ec2d-user-data",
                if first { "1" } else { "0" },
                "i-0123456789abcdef0",
            ])
            .env("EC2D_CLOUD_DIR", dir.join("cloud"))
            .current_dir(dir)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn multipart_cloud_config_and_scripts_run_in_cloud_inits_order_and_frequency() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().display();
        let b64 = base64::engine::general_purpose::STANDARD;
        let binary = b64.encode(b"\x00\x01bin\xff");
        let zipped = b64.encode(gzip(b"zipped 100% 'quoted' \\ text\n"));
        let config = format!(
            "#cloud-config\n\
             bootcmd:\n  - echo boot >> {d}/boots\n\
             write_files:\n\
             \x20 - path: {d}/etc/app/plain.conf\n    content: |\n      hello $HOME `x` %s\n    permissions: '0600'\n\
             \x20 - path: {d}/bin.dat\n    encoding: b64\n    content: {binary}\n\
             \x20 - path: {d}/zipped.txt\n    encoding: gz+b64\n    content: {zipped}\n\
             \x20 - path: {d}/etc/app/plain.conf\n    content: \"appended\\n\"\n    append: true\n    permissions: '0640'\n\
             \x20 - path: {d}/late.txt\n    content: late\n    defer: true\n\
             runcmd:\n  - echo \"run $INSTANCE_ID\" >> {d}/runs\n  - [sh, -c, 'echo \"$0\" >> {d}/runs', \"it's\"]\n\
             packages: [nginx]\n"
        );
        let script_part = format!("#!/bin/sh\necho part >> {d}/runs\n");
        let per_boot = format!("#!/bin/sh\necho per-boot >> {d}/boots\n");
        let mime = format!(
            "Content-Type: multipart/mixed; boundary=\"XYZ\"\nMIME-Version: 1.0\n\n\
             --XYZ\nContent-Type: text/cloud-config; charset=\"us-ascii\"\nContent-Transfer-Encoding: 7bit\n\n{config}\n\
             --XYZ\nContent-Type: text/x-shellscript; charset=\"us-ascii\"\n\n{script_part}\n\
             --XYZ\nContent-Type: text/x-shellscript-per-boot\nContent-Transfer-Encoding: base64\n\n{}\n\
             --XYZ--\n",
            b64.encode(&per_boot)
        );
        let script = translate(&gzip(mime.as_bytes())).expect("a script");
        let log = run(&script, tmp.path(), true);
        let read = |name: &str| std::fs::read(tmp.path().join(name)).unwrap();
        let text = |name: &str| String::from_utf8(read(name)).unwrap();
        assert_eq!(text("etc/app/plain.conf"), "hello $HOME `x` %s\nappended\n");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(tmp.path().join("etc/app/plain.conf"))
            .unwrap()
            .permissions()
            .mode();
        // Each entry sets the mode, as cloud-init's does: the appending one has the last word.
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(read("bin.dat"), b"\x00\x01bin\xff");
        assert_eq!(text("zipped.txt"), "zipped 100% 'quoted' \\ text\n");
        assert_eq!(text("late.txt"), "late");
        assert_eq!(text("runs"), "part\nrun i-0123456789abcdef0\nit's\n");
        assert_eq!(text("boots"), "boot\nper-boot\n");
        assert!(
            log.contains("module packages is not supported by ec2d; skipped"),
            "{log}"
        );

        // A reboot: bootcmd and per-boot scripts again, the once-per-instance parts not.
        run(&script, tmp.path(), false);
        assert_eq!(text("runs"), "part\nrun i-0123456789abcdef0\nit's\n");
        assert_eq!(text("boots"), "boot\nper-boot\nboot\nper-boot\n");
    }

    #[test]
    fn broken_cloud_config_is_logged_never_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let script = translate(b"#cloud-config\nruncmd: [unclosed\n").expect("a script");
        let log = run(&script, tmp.path(), true);
        assert!(log.contains("cloud-config is not valid YAML"), "{log}");
        let script =
            translate(b"#cloud-config\nruncmd: echo not-a-list\nwrite_files: 3\n").unwrap();
        let log = run(&script, tmp.path(), true);
        assert!(log.contains("runcmd is not a list; skipped"), "{log}");
        assert!(log.contains("write_files is not a list; skipped"), "{log}");
    }
}
