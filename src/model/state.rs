//! The instance state machine: desired states, EC2 states, the pure display function and the API's guards.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::instance::{InstanceSpec, InstanceStatus};
use super::meta::ObjectMeta;

/// What the user asked for; written only by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DesiredState {
    /// RunInstances / StartInstances.
    Running,
    /// StopInstances.
    Stopped,
    /// TerminateInstances: a finalizer-style deletion request.
    Terminated,
}

/// EC2's instance states, with their documented codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// 0: booting.
    Pending,
    /// 16: booted.
    Running,
    /// 32: terminating.
    ShuttingDown,
    /// 48: gone (the record stays describable for a while).
    Terminated,
    /// 64: stopping.
    Stopping,
    /// 80: stopped.
    Stopped,
}

impl InstanceState {
    /// EC2's numeric state code.
    pub fn code(self) -> u16 {
        match self {
            Self::Pending => 0,
            Self::Running => 16,
            Self::ShuttingDown => 32,
            Self::Terminated => 48,
            Self::Stopping => 64,
            Self::Stopped => 80,
        }
    }

    /// EC2's state name, as used in responses and the `instance-state-name` filter.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }

    /// All states, for parsing filter values and tests.
    pub const ALL: [InstanceState; 6] = [
        Self::Pending,
        Self::Running,
        Self::ShuttingDown,
        Self::Terminated,
        Self::Stopping,
        Self::Stopped,
    ];

    /// StopInstances is accepted from here, as far as the state goes; a `pending` instance
    /// must also have reached `running` before (see [`stop_never_ran`]).
    pub fn can_stop(self) -> bool {
        !matches!(self, Self::ShuttingDown | Self::Terminated)
    }

    /// StartInstances is accepted from here; starting a stopping instance is allowed
    /// because ec2d's stop is quick and the reconciler converges to the latest wish.
    pub fn can_start(self) -> bool {
        !matches!(self, Self::ShuttingDown | Self::Terminated)
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A guard refused an operation: EC2's `IncorrectInstanceState`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The instance '{instance_id}' is not in a state from which it can be {verb}.")]
pub struct TransitionError {
    /// The instance concerned.
    pub instance_id: String,
    /// `started` or `stopped`.
    pub verb: &'static str,
}

/// StopInstances on an instance whose first launch is still `pending`: EC2 refuses it with
/// `IncorrectInstanceState` and this wording (seen from real EC2, e.g.
/// cloud-custodian/cloud-custodian#6014, flatcar/mantle#315), unlike the generic
/// [`TransitionError`] wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Instance '{instance_id}' cannot be stopped as it has never reached the 'running' state.")]
pub struct NeverRanError {
    /// The instance concerned.
    pub instance_id: String,
}

/// Whether StopInstances must be refused because the instance, shown `shown`, is pending and
/// has never reached running ([`InstanceStatus::has_reached_running`]). A pending instance that
/// ran before (StartInstances after a stop) may be stopped.
pub fn stop_never_ran(shown: InstanceState, status: &InstanceStatus) -> bool {
    shown == InstanceState::Pending && !status.has_reached_running()
}

/// The state a client sees: a pure function of spec and status, so API handlers can answer
/// transitional states (`pending`, `stopping`, `shutting-down`) without writing status.
///
/// `status.state` is the last state the reconciler reached. When it matches what the spec
/// asks for and describes the current generation, it is shown as is; otherwise the
/// transitional state on the way to the desired one is shown. It never goes backwards:
/// a stop in progress always reads `stopping`, never `pending`.
pub fn display_state(
    meta: &ObjectMeta,
    spec: &InstanceSpec,
    status: &InstanceStatus,
) -> InstanceState {
    let reached = status.state;
    if reached == Some(InstanceState::Terminated) {
        return InstanceState::Terminated;
    }
    let current = status.observed_generation >= meta.generation;
    match spec.desired {
        DesiredState::Terminated => InstanceState::ShuttingDown,
        DesiredState::Stopped => match reached {
            Some(InstanceState::Stopped) if current => InstanceState::Stopped,
            _ => InstanceState::Stopping,
        },
        DesiredState::Running => match reached {
            Some(InstanceState::Running) if current => InstanceState::Running,
            // The instance shut itself down (its main process ended) while running was desired:
            // the reconciler recorded that against this generation, so it reads stopped until
            // StartInstances bumps the generation.
            Some(InstanceState::Stopped) if status.shutdown_generation == Some(meta.generation) => {
                InstanceState::Stopped
            }
            _ => InstanceState::Pending,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    fn check(
        desired: DesiredState,
        reached: Option<InstanceState>,
        gen: u64,
        observed: u64,
        expect: InstanceState,
    ) {
        let mut inst = fixtures::instance();
        inst.spec.desired = desired;
        inst.metadata.generation = gen;
        inst.status.state = reached;
        inst.status.observed_generation = observed;
        assert_eq!(
            display_state(&inst.metadata, &inst.spec, &inst.status),
            expect,
            "desired={desired:?} reached={reached:?} gen={gen} observed={observed}"
        );
    }

    #[test]
    fn display_state_table() {
        use DesiredState as D;
        use InstanceState as S;
        check(D::Running, None, 1, 0, S::Pending);
        check(D::Running, Some(S::Running), 1, 1, S::Running);
        check(D::Stopped, Some(S::Running), 2, 1, S::Stopping);
        check(D::Stopped, Some(S::Stopped), 2, 2, S::Stopped);
        check(D::Stopped, None, 2, 0, S::Stopping);
        check(D::Running, Some(S::Stopped), 3, 2, S::Pending);
        check(D::Running, Some(S::Running), 3, 2, S::Pending);
        check(D::Terminated, Some(S::Running), 2, 1, S::ShuttingDown);
        check(D::Terminated, Some(S::Stopped), 2, 1, S::ShuttingDown);
        check(D::Terminated, Some(S::Terminated), 2, 2, S::Terminated);
        // A failed boot ends terminated whatever was desired, so waiters fail fast.
        check(D::Running, Some(S::Terminated), 1, 1, S::Terminated);
    }

    #[test]
    fn a_first_launch_still_pending_cannot_stop() {
        use crate::model::Transition;
        let mut status = InstanceStatus::default();
        assert!(stop_never_ran(InstanceState::Pending, &status));
        assert!(!stop_never_ran(InstanceState::Running, &status));
        // Restarted after a stop: pending again, but it ran.
        status.state = Some(InstanceState::Stopped);
        assert!(!stop_never_ran(InstanceState::Pending, &status));
        // Back to pending from running (a foreign container took the name).
        status.state = Some(InstanceState::Pending);
        assert!(stop_never_ran(InstanceState::Pending, &status));
        status.transitions.push(Transition {
            from: Some(InstanceState::Running),
            to: InstanceState::Pending,
            reason: None,
            at: crate::model::now(),
        });
        assert!(!stop_never_ran(InstanceState::Pending, &status));
        let status = InstanceStatus {
            reboots_done: 1,
            ..InstanceStatus::default()
        };
        assert!(!stop_never_ran(InstanceState::Pending, &status));
        assert_eq!(
            NeverRanError {
                instance_id: "i-1".into()
            }
            .to_string(),
            "Instance 'i-1' cannot be stopped as it has never reached the 'running' state."
        );
    }

    #[test]
    fn guards() {
        assert!(InstanceState::Running.can_stop());
        assert!(InstanceState::Stopped.can_stop());
        assert!(!InstanceState::Terminated.can_stop());
        assert!(!InstanceState::ShuttingDown.can_start());
        assert!(InstanceState::Stopped.can_start());
    }

    #[test]
    fn codes_and_names() {
        let codes: Vec<u16> = InstanceState::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, vec![0, 16, 32, 48, 64, 80]);
        assert_eq!(InstanceState::ShuttingDown.name(), "shutting-down");
        assert_eq!(
            serde_json::to_string(&InstanceState::ShuttingDown).unwrap(),
            "\"shutting-down\""
        );
    }
}
