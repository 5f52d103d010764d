//! `EC2_DOCKER_FLAGS`: extra `docker run` flags, split like shell words (never run through a shell) and validated at start-up.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::Protocol;

/// A flag that ec2d does not know or cannot read: ec2d refuses to start, naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("EC2_DOCKER_FLAGS: {0}")]
pub struct FlagError(pub String);

/// A resource limit (`--ulimit name=soft[:hard]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    /// E.g. `nofile`.
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// A `-p/--publish` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishSpec {
    /// Host address to bind (`127.0.0.1` when omitted, so nothing is exposed beyond the host).
    pub host_ip: String,
    /// Host port; `None` lets the engine choose.
    pub host_port: Option<u16>,
    /// Container port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// The parsed flags, applied to every instance container.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DockerFlags {
    /// `-e/--env KEY=value` (or `KEY`, taken from ec2d's own environment).
    pub env: Vec<String>,
    /// `-v/--volume host:container[:mode]`.
    pub volumes: Vec<String>,
    /// `-p/--publish`.
    pub publish: Vec<PublishSpec>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--platform os/arch`.
    pub platform: Option<String>,
    /// `--label k=v`.
    pub labels: BTreeMap<String, String>,
    /// `--add-host name:ip`.
    pub add_hosts: Vec<String>,
    /// `--network name`.
    pub network: Option<String>,
    /// `--dns ip`.
    pub dns: Vec<String>,
    /// `--cpus 1.5`, as nano-CPUs.
    pub nano_cpus: Option<i64>,
    /// `--memory 512m`, in bytes.
    pub memory_bytes: Option<i64>,
    /// `--user uid[:gid]`.
    pub user: Option<String>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--cap-add CAP`.
    pub cap_add: Vec<String>,
    /// `--tmpfs /path[:options]`, path to options.
    pub tmpfs: BTreeMap<String, String>,
}

/// Which flag a word names, whatever its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Env,
    Volume,
    Publish,
    Privileged,
    Platform,
    Label,
    AddHost,
    Network,
    Dns,
    Cpus,
    Memory,
    User,
    Ulimit,
    CapAdd,
    Tmpfs,
}

/// Spellings shown in the "unknown flag" message, so the fix is one glance away.
const SUPPORTED: &str =
    "-e/--env, -v/--volume, -p/--publish, --privileged, --platform, -l/--label, \
--add-host, --network/--net, --dns, --cpus, -m/--memory, -u/--user, --ulimit, --cap-add, --tmpfs";

impl Flag {
    fn lookup(spelled: &str) -> Option<Self> {
        Some(match spelled {
            "-e" | "--env" => Self::Env,
            "-v" | "--volume" => Self::Volume,
            "-p" | "--publish" => Self::Publish,
            "--privileged" => Self::Privileged,
            "--platform" => Self::Platform,
            "-l" | "--label" => Self::Label,
            "--add-host" => Self::AddHost,
            "--network" | "--net" => Self::Network,
            "--dns" => Self::Dns,
            "--cpus" => Self::Cpus,
            "-m" | "--memory" => Self::Memory,
            "-u" | "--user" => Self::User,
            "--ulimit" => Self::Ulimit,
            "--cap-add" => Self::CapAdd,
            "--tmpfs" => Self::Tmpfs,
            _ => return None,
        })
    }
}

/// The engine refuses smaller memory limits (Docker 20.10: "Minimum memory limit allowed is
/// 6MB"); refusing at start-up beats every instance failing to launch.
const MIN_MEMORY_BYTES: i64 = 6 * 1024 * 1024;

/// Resource names `--ulimit` accepts (Docker's list).
const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn err(flag: &str, message: impl std::fmt::Display) -> FlagError {
    FlagError(format!("{flag}: {message}"))
}

/// Splits one word into the flag as spelled and a value written in the same word:
/// `--name=value`, `-e=value` and `-evalue` (as Docker's flag library reads them).
fn split_word(word: &str) -> Result<(String, Option<String>), FlagError> {
    let unexpected = || {
        FlagError(format!(
            "unexpected argument {word:?}: only flags are allowed (no image, command or `--`)"
        ))
    };
    if let Some(long) = word.strip_prefix("--") {
        if long.is_empty() {
            return Err(unexpected());
        }
        return Ok(match long.split_once('=') {
            Some((name, value)) => (format!("--{name}"), Some(value.to_string())),
            None => (word.to_string(), None),
        });
    }
    let Some(short) = word.strip_prefix('-') else {
        return Err(unexpected());
    };
    let mut chars = short.chars();
    let Some(letter) = chars.next() else {
        return Err(unexpected());
    };
    let rest = chars.as_str();
    let value = match rest.strip_prefix('=') {
        Some(v) => Some(v.to_string()),
        None if rest.is_empty() => None,
        None => Some(rest.to_string()),
    };
    Ok((format!("-{letter}"), value))
}

fn parse_bool(flag: &str, value: &str) -> Result<bool, FlagError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(err(
            flag,
            format_args!("cannot read {value:?} as true or false"),
        )),
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// `KEY=value` as is; a bare `KEY` is copied from ec2d's environment, or dropped when unset
/// (as `docker run -e KEY` does).
fn parse_env(
    flag: &str,
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, FlagError> {
    let name = value.split_once('=').map_or(value, |(k, _)| k);
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(err(
            flag,
            format_args!("{value:?} is not KEY=value (empty or blank variable name)"),
        ));
    }
    if value.contains('=') {
        return Ok(Some(value.to_string()));
    }
    Ok(lookup(name).map(|v| format!("{name}={v}")))
}

/// `host-path:container-path[:options]` or `volume-name:container-path[:options]`.
fn parse_volume(flag: &str, value: &str) -> Result<String, FlagError> {
    let bad = |why: &str| {
        err(
            flag,
            format_args!("{value:?} is not host-path:container-path[:options] ({why})"),
        )
    };
    let parts: Vec<&str> = value.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [_] => return Err(bad("anonymous volumes are not supported")),
        [s, t] => (*s, *t, None),
        [s, t, o] => (*s, *t, Some(*o)),
        _ => return Err(bad("too many `:`")),
    };
    if source.is_empty() {
        return Err(bad("empty host path"));
    }
    let named_volume = source
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !source.starts_with('/') && !named_volume {
        return Err(bad("the host path must be absolute"));
    }
    if !target.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    if options == Some("") {
        return Err(bad("empty options"));
    }
    Ok(value.to_string())
}

fn parse_port_number(flag: &str, what: &str, s: &str, whole: &str) -> Result<u16, FlagError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(err(
            flag,
            format_args!(
                "{what} {s:?} in {whole:?} is not a port (1-65535; ranges are not supported)"
            ),
        )),
    }
}

/// `[ip:][hostPort:]containerPort[/tcp|udp]`; the host address defaults to 127.0.0.1.
fn parse_publish(flag: &str, value: &str) -> Result<PublishSpec, FlagError> {
    let (rest, protocol) = match value.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Protocol::Tcp),
        Some((rest, "udp")) => (rest, Protocol::Udp),
        Some((_, other)) => {
            return Err(err(
                flag,
                format_args!("protocol {other:?} in {value:?} is not tcp or udp"),
            ))
        }
        None => (value, Protocol::Tcp),
    };
    // A bracketed IPv6 address holds colons of its own: take it off first.
    let (ip, ports) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((ip, after)) = bracketed.split_once(']') else {
            return Err(err(flag, format_args!("unclosed `[` in {value:?}")));
        };
        let Some(ports) = after.strip_prefix(':') else {
            return Err(err(
                flag,
                format_args!("expected `:` after the address in {value:?}"),
            ));
        };
        (Some(ip), ports.split(':').collect::<Vec<_>>())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.as_slice() {
            [ip, host, container] => (Some(*ip), vec![*host, *container]),
            _ => (None, parts),
        }
    };
    let (host_port, container_port) = match ports.as_slice() {
        [container] => (None, *container),
        [host, container] => (Some(*host), *container),
        _ => {
            return Err(err(
                flag,
                format_args!("{value:?} is not [ip:][hostPort:]containerPort[/tcp|udp]"),
            ))
        }
    };
    let host_ip = match ip {
        None | Some("") => "127.0.0.1".to_string(),
        Some(ip) => match parse_ip(ip) {
            Some(addr) => addr.to_string(),
            None => {
                return Err(err(
                    flag,
                    format_args!("{ip:?} in {value:?} is not an IP address"),
                ))
            }
        },
    };
    let host_port = match host_port {
        None | Some("") => None,
        Some(p) => Some(parse_port_number(flag, "host port", p, value)?),
    };
    let container_port = parse_port_number(flag, "container port", container_port, value)?;
    Ok(PublishSpec {
        host_ip,
        host_port,
        container_port,
        protocol,
    })
}

fn parse_label(flag: &str, value: &str) -> Result<(String, String), FlagError> {
    let (k, v) = value.split_once('=').unwrap_or((value, ""));
    if k.trim().is_empty() {
        return Err(err(flag, format_args!("{value:?} has an empty label key")));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `name:ip` (or `name=ip`, as newer Docker also reads it); `host-gateway` is the engine's alias
/// for the host. Written back as `name:ip`, the form the 20.10 engine reads.
fn parse_add_host(flag: &str, value: &str) -> Result<String, FlagError> {
    let split = value
        .split_once('=')
        .filter(|(name, _)| !name.contains(':'))
        .or_else(|| value.split_once(':'));
    let Some((name, ip)) = split else {
        return Err(err(flag, format_args!("{value:?} is not name:ip")));
    };
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(err(
            flag,
            format_args!("{value:?} has an empty or blank host name"),
        ));
    }
    if ip == "host-gateway" {
        return Ok(format!("{name}:{ip}"));
    }
    match parse_ip(ip) {
        Some(addr) => Ok(format!("{name}:{addr}")),
        None => Err(err(
            flag,
            format_args!("{ip:?} in {value:?} is not an IP address"),
        )),
    }
}

fn parse_cpus(flag: &str, value: &str) -> Result<i64, FlagError> {
    let bad = |why: &str| {
        err(
            flag,
            format_args!("cannot read {value:?} as a number of CPUs ({why})"),
        )
    };
    let cpus: f64 = value.trim().parse().map_err(|_| bad("not a number"))?;
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err(bad("must be more than 0"));
    }
    let nanos = (cpus * 1e9).round();
    // i64::MAX is not exactly representable; stay clearly below it.
    if !(1.0..9.0e18).contains(&nanos) {
        return Err(bad("out of range"));
    }
    Ok(nanos as i64)
}

/// Docker's sizes: a number (decimals allowed), an optional unit `b k m g t p` (binary
/// multiples), optionally followed by `i` and/or `b`, any case: `512m`, `1g`, `1.5GiB`, `1024`.
fn parse_size(value: &str) -> Option<i64> {
    let s = value.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let shift = match unit {
        "" | "b" => 0,
        "k" | "kb" | "ki" | "kib" => 10,
        "m" | "mb" | "mi" | "mib" => 20,
        "g" | "gb" | "gi" | "gib" => 30,
        "t" | "tb" | "ti" | "tib" => 40,
        "p" | "pb" | "pi" | "pib" => 50,
        _ => return None,
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || (number.contains('.') && !digits(frac)) {
        return None;
    }
    let multiplier = 1i64 << shift;
    if number.contains('.') {
        let bytes = (number.parse::<f64>().ok()? * multiplier as f64).floor();
        (bytes.is_finite() && bytes < 9.0e18).then_some(bytes as i64)
    } else {
        int.parse::<i64>().ok()?.checked_mul(multiplier)
    }
}

fn parse_memory(flag: &str, value: &str) -> Result<i64, FlagError> {
    let bytes = parse_size(value).ok_or_else(|| {
        err(
            flag,
            format_args!("cannot read {value:?} as a size (e.g. 512m, 1g)"),
        )
    })?;
    if bytes < MIN_MEMORY_BYTES {
        return Err(err(
            flag,
            format_args!("{value:?} is below the engine's minimum of 6m"),
        ));
    }
    Ok(bytes)
}

/// `name=soft[:hard]`; `-1` is unlimited; the hard limit defaults to the soft one.
fn parse_ulimit(flag: &str, value: &str) -> Result<Ulimit, FlagError> {
    let Some((name, limits)) = value.split_once('=') else {
        return Err(err(flag, format_args!("{value:?} is not name=soft[:hard]")));
    };
    if !ULIMIT_NAMES.contains(&name) {
        return Err(err(
            flag,
            format_args!(
                "unknown resource {name:?} (known: {})",
                ULIMIT_NAMES.join(", ")
            ),
        ));
    }
    let limit = |s: &str| match s.parse::<i64>() {
        Ok(n) if n >= -1 => Ok(n),
        _ => Err(err(
            flag,
            format_args!(
                "cannot read {s:?} in {value:?} as a limit (a number, or -1 for unlimited)"
            ),
        )),
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (limit(s)?, limit(h)?),
        None => {
            let n = limit(limits)?;
            (n, n)
        }
    };
    let as_u = |n: i64| if n == -1 { u64::MAX } else { n as u64 };
    if as_u(soft) > as_u(hard) {
        return Err(err(
            flag,
            format_args!("soft limit above hard limit in {value:?}"),
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `NET_ADMIN` or `CAP_NET_ADMIN`, any case; `ALL` too.
fn parse_cap(flag: &str, value: &str) -> Result<String, FlagError> {
    if value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(err(
            flag,
            format_args!("{value:?} is not a capability name"),
        ))
    }
}

fn parse_tmpfs(flag: &str, value: &str) -> Result<(String, String), FlagError> {
    let (path, options) = value.split_once(':').unwrap_or((value, ""));
    if !path.starts_with('/') {
        return Err(err(
            flag,
            format_args!("{value:?} is not /absolute/path[:options]"),
        ));
    }
    Ok((path.to_string(), options.to_string()))
}

/// A single word without blanks: user names, platforms, network names.
fn parse_word(flag: &str, value: &str) -> Result<String, FlagError> {
    if value.chars().any(char::is_whitespace) {
        return Err(err(flag, format_args!("{value:?} contains blanks")));
    }
    Ok(value.to_string())
}

fn parse_platform(flag: &str, value: &str) -> Result<String, FlagError> {
    let parts: Vec<&str> = value.split('/').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(err(
            flag,
            format_args!("{value:?} is not os[/arch[/variant]]"),
        ));
    }
    parse_word(flag, value)
}

impl DockerFlags {
    /// Parses `EC2_DOCKER_FLAGS`. Words are split like a POSIX shell would (quotes, escapes), but
    /// nothing is ever run through a shell. A bare `-e KEY` reads ec2d's own environment.
    pub fn parse(input: &str) -> Result<Self, FlagError> {
        Self::parse_with_env(input, |key| std::env::var(key).ok())
    }

    /// [`parse`](Self::parse) with the environment for bare `-e KEY` supplied by the caller
    /// (tests must not mutate the process environment).
    pub fn parse_with_env(
        input: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, FlagError> {
        let words = shlex::split(input).ok_or_else(|| {
            FlagError("cannot split into words: unbalanced quotes or a trailing backslash".into())
        })?;
        let mut flags = Self::default();
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            let (spelled, inline) = split_word(&word)?;
            let Some(flag) = Flag::lookup(&spelled) else {
                return Err(FlagError(format!(
                    "unknown flag {spelled} (supported: {SUPPORTED})"
                )));
            };
            if flag == Flag::Privileged {
                flags.privileged = match inline {
                    Some(v) => parse_bool(&spelled, &v)?,
                    None => true,
                };
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => match words.next() {
                    // A forgotten value would otherwise silently swallow the next flag;
                    // `--flag=-value` still passes a value that starts with `-`.
                    Some(next) if !next.starts_with('-') => next,
                    Some(next) => {
                        return Err(err(
                            &spelled,
                            format_args!("missing value (found flag {next:?} instead)"),
                        ))
                    }
                    None => return Err(err(&spelled, "missing value")),
                },
            };
            if value.is_empty() {
                return Err(err(&spelled, "empty value"));
            }
            flags.apply(flag, &spelled, &value, &lookup)?;
        }
        Ok(flags)
    }

    fn apply(
        &mut self,
        flag: Flag,
        spelled: &str,
        value: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), FlagError> {
        match flag {
            Flag::Env => self.env.extend(parse_env(spelled, value, lookup)?),
            Flag::Volume => self.volumes.push(parse_volume(spelled, value)?),
            Flag::Publish => self.publish.push(parse_publish(spelled, value)?),
            Flag::Privileged => self.privileged = parse_bool(spelled, value)?,
            Flag::Platform => self.platform = Some(parse_platform(spelled, value)?),
            Flag::Label => {
                let (k, v) = parse_label(spelled, value)?;
                self.labels.insert(k, v);
            }
            Flag::AddHost => self.add_hosts.push(parse_add_host(spelled, value)?),
            Flag::Network => self.network = Some(parse_word(spelled, value)?),
            Flag::Dns => match parse_ip(value) {
                Some(ip) => self.dns.push(ip.to_string()),
                None => return Err(err(spelled, format_args!("{value:?} is not an IP address"))),
            },
            Flag::Cpus => self.nano_cpus = Some(parse_cpus(spelled, value)?),
            Flag::Memory => self.memory_bytes = Some(parse_memory(spelled, value)?),
            Flag::User => self.user = Some(parse_word(spelled, value)?),
            Flag::Ulimit => {
                let ulimit = parse_ulimit(spelled, value)?;
                // A repeated resource replaces the earlier one, as in Docker.
                self.ulimits.retain(|u| u.name != ulimit.name);
                self.ulimits.push(ulimit);
            }
            Flag::CapAdd => self.cap_add.push(parse_cap(spelled, value)?),
            Flag::Tmpfs => {
                let (path, options) = parse_tmpfs(spelled, value)?;
                self.tmpfs.insert(path, options);
            }
        }
        Ok(())
    }

    /// Whether no flag was given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<DockerFlags, FlagError> {
        DockerFlags::parse_with_env(input, |k| match k {
            "FROM_ENV" => Some("from ec2d".to_string()),
            _ => None,
        })
    }

    fn ok(input: &str) -> DockerFlags {
        parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    /// Asserts the input is refused and the message contains every `needle` (the flag's name).
    fn refused(input: &str, needles: &[&str]) {
        let e = parse(input).expect_err(input).to_string();
        assert!(e.starts_with("EC2_DOCKER_FLAGS: "), "{input:?}: {e}");
        for n in needles {
            assert!(e.contains(n), "{input:?}: {e:?} does not mention {n:?}");
        }
    }

    fn publish(
        host_ip: &str,
        host_port: Option<u16>,
        container_port: u16,
        protocol: Protocol,
    ) -> PublishSpec {
        PublishSpec {
            host_ip: host_ip.into(),
            host_port,
            container_port,
            protocol,
        }
    }

    #[test]
    fn empty_and_blank_input_is_default() {
        for input in ["", "   ", "\n\t", "# just a comment"] {
            let f = ok(input);
            assert_eq!(f, DockerFlags::default());
            assert!(f.is_empty());
        }
        assert!(!ok("--privileged").is_empty());
    }

    #[test]
    fn env_in_every_form() {
        for input in ["-e A=1", "--env A=1", "--env=A=1", "-e=A=1", "-eA=1"] {
            assert_eq!(ok(input).env, vec!["A=1"], "{input}");
        }
        assert_eq!(ok("-e 'A=hello world'").env, vec!["A=hello world"]);
        assert_eq!(ok(r#"-e "B=say \"hi\"""#).env, vec![r#"B=say "hi""#]);
        assert_eq!(ok("-e C=").env, vec!["C="]);
        assert_eq!(ok("-e D=a=b").env, vec!["D=a=b"]);
        assert_eq!(ok("-e 'E=$HOME;rm -rf /'").env, vec!["E=$HOME;rm -rf /"]);
        // Bare KEY comes from ec2d's environment, or is dropped when unset.
        assert_eq!(
            ok("-e FROM_ENV -e UNSET_HERE").env,
            vec!["FROM_ENV=from ec2d"]
        );
        assert_eq!(
            ok("-e A=1 --env B=2 -e FROM_ENV").env,
            vec!["A=1", "B=2", "FROM_ENV=from ec2d"]
        );
        refused("-e =x", &["-e", "empty or blank"]);
        refused("--env '=x'", &["--env"]);
        refused("-e 'A B=c'", &["-e"]);
        refused("--env=", &["--env", "empty value"]);
    }

    #[test]
    fn parse_reads_the_real_environment_for_bare_keys() {
        // PATH is set in every test environment; the variable below never is.
        let f = DockerFlags::parse("-e PATH -e EC2D_SURELY_UNSET_VARIABLE_42").unwrap();
        assert_eq!(f.env.len(), 1);
        assert!(f.env[0].starts_with("PATH="), "{:?}", f.env);
    }

    #[test]
    fn volumes() {
        for input in [
            "-v /a:/b",
            "--volume /a:/b",
            "--volume=/a:/b",
            "-v=/a:/b",
            "-v/a:/b",
        ] {
            assert_eq!(ok(input).volumes, vec!["/a:/b"], "{input}");
        }
        assert_eq!(
            ok("-v /a:/b:ro -v named-vol_1.x:/data:rw,z").volumes,
            vec!["/a:/b:ro", "named-vol_1.x:/data:rw,z"]
        );
        assert_eq!(
            ok("-v '/with space:/in side'").volumes,
            vec!["/with space:/in side"]
        );
        refused("-v /data", &["-v", "anonymous"]);
        refused("-v ./rel:/b", &["-v", "absolute"]);
        refused(
            "--volume a:b",
            &["--volume", "container path must be absolute"],
        );
        refused("-v :/b", &["-v", "empty host path"]);
        refused("-v /a:/b:", &["-v", "empty options"]);
        refused("-v /a:/b:ro:extra", &["-v", "too many"]);
    }

    #[test]
    fn publish_forms() {
        use Protocol::*;
        let cases: &[(&str, PublishSpec)] = &[
            ("-p 80", publish("127.0.0.1", None, 80, Tcp)),
            ("-p 8080:80", publish("127.0.0.1", Some(8080), 80, Tcp)),
            (
                "--publish 8080:80/udp",
                publish("127.0.0.1", Some(8080), 80, Udp),
            ),
            ("--publish=53/udp", publish("127.0.0.1", None, 53, Udp)),
            (
                "-p 0.0.0.0:8080:80",
                publish("0.0.0.0", Some(8080), 80, Tcp),
            ),
            ("-p 127.0.0.1::22", publish("127.0.0.1", None, 22, Tcp)),
            ("-p :22", publish("127.0.0.1", None, 22, Tcp)),
            (
                "-p 10.1.2.3:2222:22/tcp",
                publish("10.1.2.3", Some(2222), 22, Tcp),
            ),
            ("-p [::1]:8080:80", publish("::1", Some(8080), 80, Tcp)),
            ("-p [::1]::80/udp", publish("::1", None, 80, Udp)),
            ("-p=65535:1", publish("127.0.0.1", Some(65535), 1, Tcp)),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input).publish, vec![want.clone()], "{input}");
        }
        assert_eq!(ok("-p 1 -p 2").publish.len(), 2);
        refused("-p 0", &["-p", "container port", "\"0\""]);
        refused("-p 70000", &["-p", "\"70000\""]);
        refused("-p http", &["-p", "not a port"]);
        refused("-p 8000-8010:80", &["-p", "ranges"]);
        refused("--publish 80/sctp", &["--publish", "sctp"]);
        refused("-p 1.2.3:80:80", &["-p", "not an IP address"]);
        refused("-p a:b:c:d", &["-p", "[ip:][hostPort:]containerPort"]);
        refused("-p [::1:80", &["-p", "unclosed"]);
        refused("-p [::1]80", &["-p", "expected `:`"]);
        refused("-p x:80", &["-p", "host port"]);
    }

    #[test]
    fn privileged_and_platform() {
        assert!(ok("--privileged").privileged);
        assert!(ok("--privileged=true").privileged);
        assert!(!ok("--privileged=false").privileged);
        assert!(!ok("--privileged --privileged=0").privileged);
        refused("--privileged=maybe", &["--privileged", "maybe"]);
        for input in ["--platform linux/amd64", "--platform=linux/amd64"] {
            assert_eq!(ok(input).platform.as_deref(), Some("linux/amd64"));
        }
        assert_eq!(
            ok("--platform linux/arm/v7").platform.as_deref(),
            Some("linux/arm/v7")
        );
        assert_eq!(ok("--platform linux").platform.as_deref(), Some("linux"));
        refused("--platform linux//amd64", &["--platform"]);
        refused("--platform a/b/c/d", &["--platform"]);
    }

    #[test]
    fn labels() {
        let f = ok("--label a=1 -l b=2 --label=c=x=y -l=d -l 'e=with space'");
        let want: BTreeMap<String, String> = [
            ("a", "1"),
            ("b", "2"),
            ("c", "x=y"),
            ("d", ""),
            ("e", "with space"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(f.labels, want);
        assert_eq!(ok("-l a=1 -l a=2").labels["a"], "2");
        refused("--label =v", &["--label", "empty label key"]);
    }

    #[test]
    fn add_host() {
        for input in [
            "--add-host db:10.0.0.5",
            "--add-host=db:10.0.0.5",
            "--add-host db=10.0.0.5",
        ] {
            assert_eq!(ok(input).add_hosts, vec!["db:10.0.0.5"], "{input}");
        }
        assert_eq!(ok("--add-host v6:::1").add_hosts, vec!["v6:::1"]);
        assert_eq!(ok("--add-host v6:[fe80::1]").add_hosts, vec!["v6:fe80::1"]);
        assert_eq!(
            ok("--add-host gw:host-gateway").add_hosts,
            vec!["gw:host-gateway"]
        );
        refused("--add-host db", &["--add-host", "name:ip"]);
        refused("--add-host db:nope", &["--add-host", "not an IP address"]);
        refused("--add-host :1.2.3.4", &["--add-host", "host name"]);
    }

    #[test]
    fn network_and_dns() {
        for input in [
            "--network mynet",
            "--network=mynet",
            "--net mynet",
            "--net=mynet",
        ] {
            assert_eq!(ok(input).network.as_deref(), Some("mynet"), "{input}");
        }
        assert_eq!(ok("--network a --network b").network.as_deref(), Some("b"));
        refused("--network 'a b'", &["--network", "blanks"]);
        assert_eq!(
            ok("--dns 1.1.1.1 --dns=2001:db8::1").dns,
            vec!["1.1.1.1", "2001:db8::1"]
        );
        refused("--dns dns.example", &["--dns", "not an IP address"]);
    }

    #[test]
    fn cpus() {
        assert_eq!(ok("--cpus 1.5").nano_cpus, Some(1_500_000_000));
        assert_eq!(ok("--cpus=2").nano_cpus, Some(2_000_000_000));
        assert_eq!(ok("--cpus 0.01").nano_cpus, Some(10_000_000));
        for bad in ["0", "-1", "abc", "inf", "NaN", "1e300", "1,5"] {
            refused(&format!("--cpus={bad}"), &["--cpus", "as a number of CPUs"]);
        }
    }

    #[test]
    fn memory_sizes() {
        let cases = [
            ("512m", 512 << 20),
            ("1g", 1 << 30),
            ("1G", 1 << 30),
            ("1gb", 1 << 30),
            ("1GiB", 1 << 30),
            ("8192k", 8192 << 10),
            ("1.5g", 3 << 29),
            ("7340032", 7_340_032),
            ("7340032b", 7_340_032),
            ("1t", 1 << 40),
        ];
        for (input, want) in cases {
            assert_eq!(
                ok(&format!("--memory {input}")).memory_bytes,
                Some(want),
                "{input}"
            );
        }
        assert_eq!(ok("-m 64m").memory_bytes, Some(64 << 20));
        assert_eq!(ok("--memory=64m").memory_bytes, Some(64 << 20));
        assert_eq!(ok("-m64m").memory_bytes, Some(64 << 20));
        let e = parse("--memory 12x").unwrap_err().to_string();
        assert_eq!(
            e,
            r#"EC2_DOCKER_FLAGS: --memory: cannot read "12x" as a size (e.g. 512m, 1g)"#
        );
        for bad in [
            "m",
            "1.m",
            ".5g",
            "1.2.3g",
            "1gg",
            "-1g",
            "99999999999p",
            "1e3",
        ] {
            refused(&format!("-m={bad}"), &["-m", "as a size"]);
        }
        refused("--memory 1m", &["--memory", "minimum"]);
        refused("--memory 1024", &["--memory", "minimum"]);
    }

    #[test]
    fn user() {
        for input in [
            "-u 1000:1000",
            "--user 1000:1000",
            "--user=1000:1000",
            "-u=1000:1000",
        ] {
            assert_eq!(ok(input).user.as_deref(), Some("1000:1000"), "{input}");
        }
        assert_eq!(ok("-u ec2-user").user.as_deref(), Some("ec2-user"));
        refused("--user 'a b'", &["--user"]);
    }

    #[test]
    fn ulimits() {
        let f = ok("--ulimit nofile=1024:2048 --ulimit=nproc=512 --ulimit core=-1");
        assert_eq!(
            f.ulimits,
            vec![
                Ulimit {
                    name: "nofile".into(),
                    soft: 1024,
                    hard: 2048
                },
                Ulimit {
                    name: "nproc".into(),
                    soft: 512,
                    hard: 512
                },
                Ulimit {
                    name: "core".into(),
                    soft: -1,
                    hard: -1
                },
            ]
        );
        assert_eq!(ok("--ulimit nofile=10 --ulimit nofile=20").ulimits.len(), 1);
        assert_eq!(ok("--ulimit nofile=10:-1").ulimits[0].hard, -1);
        refused("--ulimit nofile", &["--ulimit", "name=soft[:hard]"]);
        refused("--ulimit bogus=1", &["--ulimit", "unknown resource"]);
        refused("--ulimit nofile=x", &["--ulimit", "as a limit"]);
        refused("--ulimit nofile=-2", &["--ulimit", "as a limit"]);
        refused(
            "--ulimit nofile=10:5",
            &["--ulimit", "soft limit above hard"],
        );
        refused(
            "--ulimit nofile=-1:5",
            &["--ulimit", "soft limit above hard"],
        );
    }

    #[test]
    fn cap_add_and_tmpfs() {
        assert_eq!(
            ok("--cap-add NET_ADMIN --cap-add=sys_time --cap-add CAP_SYS_PTRACE").cap_add,
            vec!["NET_ADMIN", "SYS_TIME", "CAP_SYS_PTRACE"]
        );
        refused("--cap-add NET-ADMIN", &["--cap-add", "capability"]);
        let f = ok("--tmpfs /scratch --tmpfs=/run:rw,size=64m,mode=1777");
        assert_eq!(f.tmpfs["/scratch"], "");
        assert_eq!(f.tmpfs["/run"], "rw,size=64m,mode=1777");
        refused("--tmpfs scratch", &["--tmpfs", "/absolute/path"]);
    }

    #[test]
    fn everything_at_once() {
        let f = ok(concat!(
            "-e A=1 -v /h:/c -p 8080:80 --privileged --platform linux/amd64 --label k=v ",
            "--add-host h:1.2.3.4 --network n --dns 8.8.8.8 --cpus 0.5 --memory 256m ",
            "--user 0:0 --ulimit nofile=100 --cap-add NET_ADMIN --tmpfs /t"
        ));
        assert_eq!(f.env, vec!["A=1"]);
        assert_eq!(f.volumes, vec!["/h:/c"]);
        assert_eq!(
            f.publish,
            vec![publish("127.0.0.1", Some(8080), 80, Protocol::Tcp)]
        );
        assert!(f.privileged);
        assert_eq!(f.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(f.labels["k"], "v");
        assert_eq!(f.add_hosts, vec!["h:1.2.3.4"]);
        assert_eq!(f.network.as_deref(), Some("n"));
        assert_eq!(f.dns, vec!["8.8.8.8"]);
        assert_eq!(f.nano_cpus, Some(500_000_000));
        assert_eq!(f.memory_bytes, Some(256 << 20));
        assert_eq!(f.user.as_deref(), Some("0:0"));
        assert_eq!(f.ulimits.len(), 1);
        assert_eq!(f.cap_add, vec!["NET_ADMIN"]);
        assert!(f.tmpfs.contains_key("/t"));
    }

    #[test]
    fn structural_errors_name_the_flag() {
        let e = parse("--foo").unwrap_err().to_string();
        assert!(
            e.starts_with("EC2_DOCKER_FLAGS: unknown flag --foo (supported: "),
            "{e}"
        );
        refused("--foo=bar", &["unknown flag --foo"]);
        refused("-d", &["unknown flag -d"]);
        refused("-it", &["unknown flag -i"]);
        refused("--rm", &["unknown flag --rm"]);
        refused("-é", &["unknown flag -é"]);
        refused("---x", &["unknown flag ---x"]);
        refused("--memory", &["--memory", "missing value"]);
        refused("-e", &["-e", "missing value"]);
        refused(
            "--env --privileged",
            &["--env", "missing value", "--privileged"],
        );
        refused("-p -v /a:/b", &["-p", "missing value"]);
        refused("busybox", &["unexpected argument \"busybox\""]);
        refused("--privileged sh", &["unexpected argument \"sh\""]);
        refused("--", &["unexpected argument \"--\""]);
        refused("-", &["unexpected argument \"-\""]);
        refused("-e 'A=1", &["unbalanced quotes"]);
        refused("-e \"A=1", &["unbalanced quotes"]);
        refused("-e A=1\\", &["trailing backslash"]);
    }

    #[test]
    fn a_value_starting_with_a_dash_needs_the_equals_form() {
        assert_eq!(ok("--label=-x=1").labels["-x"], "1");
        refused("--label -x=1", &["--label", "missing value"]);
    }

    mod prop {
        use super::super::DockerFlags;
        use proptest::prelude::*;

        /// Words that look like flags, values and junk, so the fuzzing reaches the value parsers.
        fn word() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "-e",
                    "--env",
                    "-v",
                    "--volume",
                    "-p",
                    "--publish",
                    "--privileged",
                    "--platform",
                    "-l",
                    "--label",
                    "--add-host",
                    "--network",
                    "--net",
                    "--dns",
                    "--cpus",
                    "-m",
                    "--memory",
                    "-u",
                    "--user",
                    "--ulimit",
                    "--cap-add",
                    "--tmpfs",
                    "--",
                    "-",
                    "'",
                    "\"",
                    "\\",
                    "=",
                    ":",
                    "[",
                    "]",
                    "/",
                    "#",
                ])
                .prop_map(str::to_string),
                "[-=:/\\[\\]0-9a-zA-Z.,'\"\\\\ é]{0,12}",
                any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_strings_never_panic(s in any::<String>()) {
                let _ = DockerFlags::parse_with_env(&s, |_| Some("v".into()));
            }

            #[test]
            fn flag_like_word_soup_never_panics(words in prop::collection::vec(word(), 0..8), eq in any::<bool>()) {
                let input = words.join(if eq { "=" } else { " " });
                let _ = DockerFlags::parse_with_env(&input, |_| Some("v".into()));
                let _ = DockerFlags::parse_with_env(&words.join(" "), |_| None);
            }

            #[test]
            fn sizes_never_panic_and_are_positive(s in "[0-9.]{0,25}[kKmMgGtTpPbBiI ]{0,3}") {
                if let Some(n) = super::super::parse_size(&s) {
                    prop_assert!(n >= 0);
                }
            }
        }
    }
}
