//! The pure planner: from an instance's spec and status and the observed container, the Docker steps that converge them.
//!
//! This is where EC2 verbs meet Docker verbs, in one place: Stop pauses, Start unpauses,
//! Terminate stops (and removes, when configured). An opt-in real stop/start would change
//! only this file.

use std::time::Duration;

use crate::model::{DesiredState, Instance, InstanceState};
use crate::runtime::{ContainerSpec, ContainerState, ObservedContainer};

/// Settings the planner needs.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// Remove the container on termination (`EC2_REMOVE_CONTAINERS`).
    pub remove_containers: bool,
    /// Grace period for `docker stop`.
    pub stop_timeout: Duration,
}

/// One side effect on the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create and start a fresh container (a boot).
    Create(Box<ContainerSpec>),
    /// Start an existing, not running container.
    Start(String),
    /// Freeze the container (StopInstances).
    Pause(String),
    /// Thaw the container (StartInstances).
    Unpause(String),
    /// Stop the container (TerminateInstances).
    Stop(String),
    /// Remove the container.
    Remove(String),
}

/// What the planner decided: the steps, and the state reached once they succeed.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Steps to apply, in order.
    pub steps: Vec<Step>,
    /// The EC2 state the instance is in once the steps are done; `None` while the
    /// container is in a passing state (restarting, removing) and must be observed again.
    pub reaches: Option<InstanceState>,
}

impl Plan {
    fn reach(state: InstanceState, steps: Vec<Step>) -> Self {
        Self {
            steps,
            reaches: Some(state),
        }
    }

    fn wait() -> Self {
        Self {
            steps: Vec::new(),
            reaches: None,
        }
    }
}

/// Plans the steps that make the observed container match the instance's spec.
/// `container_spec` builds the container to create; it is only called when a boot is needed.
pub fn plan(
    instance: &Instance,
    observed: Option<&ObservedContainer>,
    settings: &PlanSettings,
    container_spec: impl FnOnce() -> ContainerSpec,
) -> Plan {
    use ContainerState as C;
    use InstanceState as S;

    // A terminated instance is finished; only a leftover container is cleaned up.
    let terminated = instance.status.state == Some(S::Terminated);
    let desired = if terminated {
        DesiredState::Terminated
    } else {
        instance.spec.desired
    };

    match (desired, observed) {
        (DesiredState::Running, None) => Plan::reach(S::Running, vec![Step::Create(Box::new(container_spec()))]),
        (DesiredState::Running, Some(c)) => match c.state {
            C::Running => Plan::reach(S::Running, vec![]),
            C::Paused => Plan::reach(S::Running, vec![Step::Unpause(c.id.clone())]),
            C::Created | C::Exited => Plan::reach(S::Running, vec![Step::Start(c.id.clone())]),
            // A dead container cannot be started again: boot a fresh one.
            C::Dead => Plan::reach(
                S::Running,
                vec![Step::Remove(c.id.clone()), Step::Create(Box::new(container_spec()))],
            ),
            C::Restarting | C::Removing => Plan::wait(),
        },
        (DesiredState::Stopped, None) => Plan::reach(S::Stopped, vec![]),
        (DesiredState::Stopped, Some(c)) => match c.state {
            C::Running => Plan::reach(S::Stopped, vec![Step::Pause(c.id.clone())]),
            C::Paused | C::Created | C::Exited | C::Dead => Plan::reach(S::Stopped, vec![]),
            C::Restarting | C::Removing => Plan::wait(),
        },
        (DesiredState::Terminated, None) => Plan::reach(S::Terminated, vec![]),
        (DesiredState::Terminated, Some(c)) => {
            let mut steps = Vec::new();
            match c.state {
                // Docker refuses to stop a frozen container: thaw it first.
                C::Paused => {
                    steps.push(Step::Unpause(c.id.clone()));
                    steps.push(Step::Stop(c.id.clone()));
                }
                C::Running | C::Restarting => steps.push(Step::Stop(c.id.clone())),
                C::Created | C::Exited | C::Dead | C::Removing => {}
            }
            if settings.remove_containers && c.state != C::Removing {
                steps.push(Step::Remove(c.id.clone()));
            }
            Plan::reach(S::Terminated, steps)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::fixtures;

    fn container(state: ContainerState) -> ObservedContainer {
        ObservedContainer {
            id: "c1".into(),
            name: "localstack-ec2.i-1".into(),
            instance_id: crate::model::InstanceId::parse("i-1").unwrap(),
            state,
            exit_code: None,
            ip_address: None,
            image: "img".into(),
            ports: vec![],
            labels: BTreeMap::new(),
        }
    }

    fn settings(remove: bool) -> PlanSettings {
        PlanSettings {
            remove_containers: remove,
            stop_timeout: Duration::from_secs(1),
        }
    }

    /// Renders steps as short words so the table below reads like a spec.
    fn words(plan: &Plan) -> Vec<&'static str> {
        plan.steps
            .iter()
            .map(|s| match s {
                Step::Create(_) => "create",
                Step::Start(_) => "start",
                Step::Pause(_) => "pause",
                Step::Unpause(_) => "unpause",
                Step::Stop(_) => "stop",
                Step::Remove(_) => "remove",
            })
            .collect()
    }

    fn check(desired: DesiredState, observed: Option<ContainerState>, remove: bool, expect: &[&str], reaches: Option<InstanceState>) {
        let mut inst = fixtures::instance();
        inst.spec.desired = desired;
        let obs = observed.map(container);
        let plan = plan(&inst, obs.as_ref(), &settings(remove), ContainerSpec::default);
        assert_eq!(words(&plan), expect, "desired={desired:?} observed={observed:?} remove={remove}");
        assert_eq!(plan.reaches, reaches, "desired={desired:?} observed={observed:?}");
    }

    #[test]
    fn plan_table() {
        use ContainerState as C;
        use DesiredState as D;
        use InstanceState as S;
        check(D::Running, None, true, &["create"], Some(S::Running));
        check(D::Running, Some(C::Running), true, &[], Some(S::Running));
        check(D::Running, Some(C::Paused), true, &["unpause"], Some(S::Running));
        check(D::Running, Some(C::Exited), true, &["start"], Some(S::Running));
        check(D::Running, Some(C::Created), true, &["start"], Some(S::Running));
        check(D::Running, Some(C::Dead), true, &["remove", "create"], Some(S::Running));
        check(D::Running, Some(C::Restarting), true, &[], None);
        check(D::Stopped, Some(C::Running), true, &["pause"], Some(S::Stopped));
        check(D::Stopped, Some(C::Paused), true, &[], Some(S::Stopped));
        check(D::Stopped, None, true, &[], Some(S::Stopped));
        check(D::Terminated, Some(C::Running), true, &["stop", "remove"], Some(S::Terminated));
        check(D::Terminated, Some(C::Running), false, &["stop"], Some(S::Terminated));
        check(D::Terminated, Some(C::Paused), true, &["unpause", "stop", "remove"], Some(S::Terminated));
        check(D::Terminated, Some(C::Exited), true, &["remove"], Some(S::Terminated));
        check(D::Terminated, Some(C::Exited), false, &[], Some(S::Terminated));
        check(D::Terminated, None, true, &[], Some(S::Terminated));
    }

    #[test]
    fn a_terminated_instance_never_boots_again() {
        let mut inst = fixtures::instance();
        inst.status.state = Some(InstanceState::Terminated);
        let plan = plan(&inst, None, &settings(true), ContainerSpec::default);
        assert!(plan.steps.is_empty());
        let running = container(ContainerState::Running);
        let plan2 = super::plan(&inst, Some(&running), &settings(true), ContainerSpec::default);
        assert_eq!(words(&plan2), ["stop", "remove"]);
    }
}
