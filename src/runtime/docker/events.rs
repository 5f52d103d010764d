//! The never-ending engine event stream: subscribes, maps events to ours, and resubscribes after gaps.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::system::EventsOptions;
use bollard::Docker;
use futures::stream::{BoxStream, Stream, StreamExt};
use tracing::{debug, info, warn};

use super::errors::map_error;
use super::DockerRuntime;
use crate::backoff::{Backoff, ExponentialJitterBackoff};
use crate::model::InstanceId;
use crate::runtime::{labels, RuntimeEvent};

/// First and largest delay between event-stream resubscriptions.
const EVENTS_FIRST_DELAY: Duration = Duration::from_millis(250);
const EVENTS_MAX_DELAY: Duration = Duration::from_secs(5);

/// The delays between resubscriptions: doubling from [`EVENTS_FIRST_DELAY`] up to
/// [`EVENTS_MAX_DELAY`], without jitter.
fn resubscribe_backoff() -> ExponentialJitterBackoff {
    ExponentialJitterBackoff::without_jitter(EVENTS_FIRST_DELAY, EVENTS_MAX_DELAY)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<EventMessage, BollardError>> + Send>>;

/// Subscribes to container, image, network and volume events. Container events are filtered by our label in
/// code: Docker ANDs filters of different keys, so `label=` would drop every image event.
fn subscribe(docker: &Docker, since: Option<i64>) -> EventStream {
    let filters = HashMap::from([(
        "type".to_string(),
        vec![
            "container".to_string(),
            "image".to_string(),
            "network".to_string(),
            "volume".to_string(),
        ],
    )]);
    docker
        .events(Some(EventsOptions::<String> {
            since: since.map(|s| s.to_string()),
            until: None,
            filters,
        }))
        .boxed()
}

/// Container actions that change nothing the reconciler looks at.
fn ignored_container_action(action: &str) -> bool {
    action.starts_with("exec_")
        || matches!(
            action,
            "attach"
                | "detach"
                | "resize"
                | "top"
                | "export"
                | "copy"
                | "archive-path"
                | "extract-to-dir"
        )
}

/// Image actions that can add or remove an AMI.
fn relevant_image_action(action: &str) -> bool {
    matches!(
        action,
        "tag"
            | "untag"
            | "delete"
            | "import"
            | "load"
            | "pull"
            | "commit"
            | "prune"
            | "create"
            | "remove"
    )
}

/// Maps one engine event to ours (zero, one or two of them).
fn map_event(msg: EventMessage) -> Vec<RuntimeEvent> {
    // "exec_start: sh -c …" and "health_status: healthy" carry details after a colon.
    let action = msg
        .action
        .as_deref()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if action.is_empty() {
        return Vec::new();
    }
    match msg.typ {
        Some(EventMessageTypeEnum::CONTAINER) => {
            if ignored_container_action(&action) {
                return Vec::new();
            }
            let mut out = Vec::new();
            let owner = msg
                .actor
                .as_ref()
                .and_then(|a| a.attributes.as_ref())
                .and_then(|a| a.get(labels::INSTANCE_ID));
            if let Some(owner) = owner {
                match InstanceId::parse(owner) {
                    Ok(instance_id) => out.push(RuntimeEvent::Container {
                        instance_id,
                        action: action.clone(),
                    }),
                    Err(e) => {
                        debug!(label = %owner, error = %e, "event for a container with a malformed owner label")
                    }
                }
            }
            // A commit makes an image (possibly an AMI) without any image event of its own.
            if action == "commit" {
                out.push(RuntimeEvent::Image { action });
            }
            out
        }
        Some(EventMessageTypeEnum::IMAGE) if relevant_image_action(&action) => {
            vec![RuntimeEvent::Image { action }]
        }
        // A VPC's network removed, or a container taken off it, behind ec2d's back. The event
        // names the network but carries no labels: ec2d's networks are told by their name.
        Some(EventMessageTypeEnum::NETWORK)
            if matches!(action.as_str(), "destroy" | "disconnect") =>
        {
            let name = msg
                .actor
                .as_ref()
                .and_then(|a| a.attributes.as_ref())
                .and_then(|a| a.get("name"))
                .filter(|name| name.starts_with(labels::NETWORK_PREFIX));
            name.map(|name| RuntimeEvent::Network {
                name: name.clone(),
                action,
            })
            .into_iter()
            .collect()
        }
        // A volume removed (by ec2d, or behind its back). Its event names it (the actor's id)
        // but carries no labels: ec2d's volumes are told by their name.
        Some(EventMessageTypeEnum::VOLUME) if action == "destroy" => msg
            .actor
            .and_then(|a| a.id)
            .filter(|name| name.starts_with(labels::NETWORK_PREFIX))
            .map(|name| RuntimeEvent::Volume { name, action })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// State of the never-ending event stream.
struct EventsState {
    runtime: DockerRuntime,
    stream: Option<EventStream>,
    /// Events mapped but not yet handed out (a commit yields two).
    pending: VecDeque<RuntimeEvent>,
    /// Consecutive failures; drives the warn-once logging.
    failures: u32,
    /// The wait before each resubscription while `failures > 0`; reset on recovery.
    backoff: ExponentialJitterBackoff,
    /// A subscription was lost (or never made): the next successful one must say `Resubscribed`.
    gap: bool,
    /// Engine time of the last event seen; resubscriptions replay from shortly before it.
    last_event_time: Option<i64>,
}

impl EventsState {
    fn note_failure(&mut self, what: &str, error: &dyn fmt::Display) {
        if self.failures == 0 {
            warn!(%error, "docker event stream {what}; resubscribing");
            self.pending.push_back(RuntimeEvent::Interrupted);
        } else {
            debug!(%error, failures = self.failures, "docker event stream {what}; still retrying");
        }
        self.failures += 1;
        self.gap = true;
        self.stream = None;
    }

    /// Makes sure a subscription exists; returns `Resubscribed` when it had to make one after a gap.
    async fn ensure_subscribed(&mut self) -> Option<RuntimeEvent> {
        while self.stream.is_none() {
            if self.failures > 0 {
                let delay = self.backoff.next_delay().unwrap_or(EVENTS_MAX_DELAY);
                tokio::time::sleep(delay).await;
            }
            // Subscribing is lazy in bollard (the request goes out on first poll, and an idle
            // stream yields nothing), so a ping first tells a live engine from a dead one and keeps
            // `Resubscribed` from being announced once per failed attempt.
            let docker = match self.runtime.docker().await {
                Ok(d) => d,
                Err(e) => {
                    self.note_failure("cannot connect", &e);
                    continue;
                }
            };
            if let Err(e) = docker.ping().await {
                self.note_failure("cannot connect", &map_error("ping", e));
                continue;
            }
            // Replay from a little before the last event (or now) so events between the ping
            // and the subscription are not lost; duplicates are harmless to a level-triggered
            // reconciler.
            let since = if self.gap {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                Some(self.last_event_time.unwrap_or(now).min(now) - 1)
            } else {
                None
            };
            self.stream = Some(subscribe(&docker, since));
            debug!(?since, "subscribed to docker events");
            if self.gap {
                self.gap = false;
                return Some(RuntimeEvent::Resubscribed);
            }
        }
        None
    }

    async fn next_event(&mut self) -> RuntimeEvent {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return ev;
            }
            if let Some(ev) = self.ensure_subscribed().await {
                return ev;
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            match stream.next().await {
                Some(Ok(msg)) => {
                    if self.failures > 0 {
                        info!("docker event stream recovered");
                        self.backoff.reset();
                    }
                    self.failures = 0;
                    if let Some(t) = msg.time {
                        self.last_event_time = Some(t);
                    }
                    self.pending.extend(map_event(msg));
                }
                Some(Err(e)) => self.note_failure("failed", &map_error("events", e)),
                None => self.note_failure("ended", &"end of stream"),
            }
        }
    }
}

/// Engine events as ours, for as long as the stream is polled: never ends, resubscribes after any
/// failure, and says [`RuntimeEvent::Resubscribed`] after a gap.
pub(super) fn stream(runtime: DockerRuntime) -> BoxStream<'static, RuntimeEvent> {
    let state = EventsState {
        runtime,
        stream: None,
        pending: VecDeque::new(),
        failures: 0,
        backoff: resubscribe_backoff(),
        gap: false,
        last_event_time: None,
    };
    futures::stream::unfold(state, |mut state| async move {
        let ev = state.next_event().await;
        Some((ev, state))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resubscriptions_wait_250ms_doubling_to_5s() {
        // The delay before the k-th resubscription after a failure, as the stream computed it
        // before it shared the controller's backoff: 250 ms * 2^(k-1), at most 5 s.
        let old = |failures: u32| {
            let factor = 1u32 << failures.saturating_sub(1).min(6);
            (EVENTS_FIRST_DELAY * factor).min(EVENTS_MAX_DELAY)
        };
        let mut b = resubscribe_backoff();
        for failures in 1..=12 {
            assert_eq!(b.next_delay(), Some(old(failures)), "failure {failures}");
        }
        b.reset();
        assert_eq!(b.next_delay(), Some(EVENTS_FIRST_DELAY));
    }

    #[test]
    fn event_actions_are_normalised() {
        let ev = |typ, action: &str, owner: Option<&str>| EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some("abc".into()),
                attributes: owner
                    .map(|o| HashMap::from([(labels::INSTANCE_ID.to_string(), o.to_string())])),
            }),
            ..Default::default()
        };
        let id = "i-0123456789abcdef0";
        assert_eq!(
            map_event(ev(EventMessageTypeEnum::CONTAINER, "pause", Some(id))),
            vec![RuntimeEvent::Container {
                instance_id: InstanceId::parse(id).unwrap(),
                action: "pause".into()
            }]
        );
        assert!(map_event(ev(
            EventMessageTypeEnum::CONTAINER,
            "exec_start: sh -c true",
            Some(id)
        ))
        .is_empty());
        assert!(map_event(ev(EventMessageTypeEnum::CONTAINER, "die", None)).is_empty());
        assert_eq!(
            map_event(ev(
                EventMessageTypeEnum::CONTAINER,
                "health_status: healthy",
                Some(id)
            ))
            .len(),
            1
        );
        assert_eq!(
            map_event(ev(EventMessageTypeEnum::CONTAINER, "commit", Some(id))).len(),
            2
        );
        assert_eq!(
            map_event(ev(EventMessageTypeEnum::IMAGE, "tag", None)),
            vec![RuntimeEvent::Image {
                action: "tag".into()
            }]
        );
        assert!(map_event(ev(EventMessageTypeEnum::IMAGE, "push", None)).is_empty());
        let volume = |name: &str, action: &str| EventMessage {
            typ: Some(EventMessageTypeEnum::VOLUME),
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some(name.into()),
                attributes: Some(HashMap::from([("driver".to_string(), "local".to_string())])),
            }),
            ..Default::default()
        };
        let ours = "ec2d-01234567-vol-0123456789abcdef0";
        assert_eq!(
            map_event(volume(ours, "destroy")),
            vec![RuntimeEvent::Volume {
                name: ours.into(),
                action: "destroy".into()
            }]
        );
        assert!(map_event(volume(ours, "mount")).is_empty());
        assert!(map_event(volume("somebody-elses", "destroy")).is_empty());
    }
}
