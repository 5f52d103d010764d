//! The instances' console output: the reconciler copies each container's log into the store, bounded, for GetConsoleOutput (the API never asks the engine).
//!
//! A pass that leaves a container with a log (running, frozen or exited) reads what the log
//! gained since the last copy and appends it, keeping EC2's last 64 KiB. Reads are spaced out
//! per instance (`Settings::console_refresh_every`, [`REFRESH_EVERY`] by default): resyncs,
//! engine events and GetConsoleOutput's nudges all refresh the copy, but a burst of passes
//! reads the log once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::Context;
use crate::model::{now, ConsoleOutput, InstanceId, Timestamp};
use crate::runtime::{ConsoleLog, ContainerRuntime, ContainerState, ObservedContainer};

/// The least time between two reads of one instance's log, by default.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// When each instance's log was last read, and from which container. In memory only: after a
/// restart every log is read once more, from where the stored copy ends.
#[derive(Debug, Clone, Default)]
pub struct ConsoleReads {
    last: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl ConsoleReads {
    /// Whether the instance's log is due a read now (and if so, notes the read): a container
    /// never read, or one read at least `every` ago.
    fn due(&self, instance_id: &str, container_id: &str, every: Duration) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let at = Instant::now();
        let due = match last.get(instance_id) {
            Some((container, read)) => {
                container != container_id || at.duration_since(*read) >= every
            }
            None => true,
        };
        if due {
            last.insert(instance_id.to_string(), (container_id.to_string(), at));
        }
        due
    }

    /// Forgets an instance whose record is collected.
    pub fn forget(&self, instance_id: &str) {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(instance_id);
    }
}

/// Brings the instance's console copy up to date with its container's log, when due. Failures
/// are logged only: the console is a view, and the instance is where the pass left it.
pub(super) async fn refresh<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    container: &ObservedContainer,
) {
    // A created container has not run yet, and one in passing is looked at again soon.
    if !matches!(
        container.state,
        ContainerState::Running | ContainerState::Paused | ContainerState::Exited
    ) {
        return;
    }
    if !ctx.console_reads.due(
        id.as_str(),
        &container.id,
        ctx.settings.console_refresh_every,
    ) {
        return;
    }
    let copy = match ctx.store.console_output(id.as_str()) {
        Ok(copy) => copy,
        Err(error) => {
            // A corrupt copy is rebuilt from the whole log.
            warn!(instance_id = %id, %error, "cannot read the console output kept; reading it anew");
            None
        }
    };
    let after = copy
        .as_ref()
        .filter(|c| c.container_id == container.id)
        .and_then(|c| c.read_until);
    let log = match ctx.runtime.console_log(&container.id, after).await {
        Ok(log) => log,
        Err(error) => {
            debug!(instance_id = %id, %error, "cannot read the container's log");
            return;
        }
    };
    if let Some(next) = merge(copy.as_ref(), &container.id, log, now()) {
        if let Err(error) = ctx.store.write_console_output(id.as_str(), &next) {
            warn!(instance_id = %id, %error, "cannot keep the console output");
        }
    }
}

/// The copy after reading `log` from `container_id` at `at`, or `None` when it is unchanged
/// (nothing new; no write). A new container starts a new copy: the console shows the current
/// boot, and the old container's log is gone with it. A log the runtime `cut` replaces the copy
/// rather than leave a gap in it.
pub(super) fn merge(
    copy: Option<&ConsoleOutput>,
    container_id: &str,
    log: ConsoleLog,
    at: Timestamp,
) -> Option<ConsoleOutput> {
    let same = copy.filter(|c| c.container_id == container_id);
    if log.bytes.is_empty() {
        // Nothing new: an unchanged copy is not rewritten; another container's copy is
        // emptied once (no copy at all needs none: the answer is the same).
        return match (copy, same) {
            (Some(_), None) => Some(ConsoleOutput::new(container_id, &[], at, log.last_at)),
            _ => None,
        };
    }
    let mut bytes = match same {
        Some(kept) if !log.cut => kept.bytes(),
        _ => Vec::new(),
    };
    bytes.extend_from_slice(&log.bytes);
    let read_until = log.last_at.or(same.and_then(|c| c.read_until));
    Some(ConsoleOutput::new(container_id, &bytes, at, read_until))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::console::CONSOLE_OUTPUT_LIMIT;

    fn log(text: &str, last_at: Option<Timestamp>) -> ConsoleLog {
        ConsoleLog {
            bytes: text.as_bytes().to_vec(),
            last_at,
            cut: false,
        }
    }

    #[test]
    fn a_log_is_appended_to_its_containers_copy() {
        let t0 = now();
        let t1 = t0 + time::Duration::seconds(1);
        let first = merge(None, "c1", log("boot\n", Some(t0)), t0).expect("a first copy");
        assert_eq!(first.bytes(), b"boot\n");
        assert_eq!((first.updated_at, first.read_until), (t0, Some(t0)));

        let second = merge(Some(&first), "c1", log("user data\n", Some(t1)), t1).unwrap();
        assert_eq!(second.bytes(), b"boot\nuser data\n");
        assert_eq!((second.updated_at, second.read_until), (t1, Some(t1)));

        // Nothing new: no write, the copy keeps its time.
        assert_eq!(merge(Some(&second), "c1", log("", None), t1), None);
        assert_eq!(merge(None, "c1", log("", None), t1), None);
    }

    #[test]
    fn a_new_container_starts_a_new_copy() {
        let t0 = now();
        let old = merge(None, "c1", log("old boot\n", Some(t0)), t0).unwrap();
        let fresh = merge(Some(&old), "c2", log("new boot\n", Some(t0)), t0).unwrap();
        assert_eq!(fresh.bytes(), b"new boot\n");
        assert_eq!(fresh.container_id, "c2");
        let empty = merge(Some(&old), "c2", log("", None), t0).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.container_id, "c2");
    }

    #[test]
    fn the_copy_is_bounded_and_a_cut_log_replaces_it() {
        let t0 = now();
        let kept = merge(None, "c1", log("early\n", Some(t0)), t0).unwrap();
        let flood = "z".repeat(CONSOLE_OUTPUT_LIMIT);
        let bounded = merge(Some(&kept), "c1", log(&flood, Some(t0)), t0).unwrap();
        assert_eq!(bounded.bytes(), flood.as_bytes(), "the oldest bytes went");
        let cut = ConsoleLog {
            cut: true,
            ..log("late\n", Some(t0))
        };
        assert_eq!(
            merge(Some(&kept), "c1", cut, t0).unwrap().bytes(),
            b"late\n",
            "no gap between early and late"
        );
    }

    #[test]
    fn reads_are_spaced_per_instance_unless_the_container_changed() {
        let reads = ConsoleReads::default();
        let due = |instance, container| reads.due(instance, container, REFRESH_EVERY);
        assert!(due("i-1", "c1"));
        assert!(!due("i-1", "c1"), "read just now");
        assert!(due("i-2", "c9"), "another instance");
        assert!(due("i-1", "c2"), "a new container");
        reads.forget("i-1");
        assert!(due("i-1", "c2"));
        assert!(reads.due("i-1", "c2", Duration::ZERO), "no spacing asked");
    }
}
