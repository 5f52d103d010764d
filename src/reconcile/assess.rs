//! The pure verdict on a pass: what applying the plan, and looking again, came to.
//!
//! The plan says what should happen; this says what did, so the reconciler's shell only
//! gathers evidence and writes the status the verdict names.

use super::plan::Plan;
use crate::model::InstanceState;
use crate::runtime::{ContainerState, ObservedContainer, RuntimeError};

/// What carrying out a plan came to: the evidence [`assess`] judges.
// One per reconcile pass, moved once or twice and never collected: boxing the container
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Applied {
    /// Every step succeeded; the container as observed afterwards.
    Done(Option<ObservedContainer>),
    /// A step, or the look afterwards, failed.
    Failed {
        /// What failed.
        error: RuntimeError,
        /// The instance's image was found missing. Asked of the engine only when
        /// [`image_cause_matters`]; `false` when not asked.
        image_gone: bool,
    },
}

/// How a pass ends, which decides the status it writes.
#[allow(clippy::large_enum_variant)] // as `Applied`: one per pass
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The plan's outcome stands: the status follows the container.
    Reached(Option<ObservedContainer>),
    /// A boot failed and the instance's image is gone: no boot can ever succeed, so the
    /// instance ends `terminated` and waiters stop waiting instead of retrying forever.
    ImageGone(RuntimeError),
    /// The container ended right after starting with 126/127 (command not executable or not
    /// found): no boot of this image can succeed, so the instance ends `terminated`.
    CannotRun(String),
    /// The container ended right after starting for another reason (a crash): retried with
    /// backoff rather than restarted in a tight loop.
    NotConverged(String),
    /// A step or the look afterwards failed: recorded where clients see it, retried per the
    /// error policy.
    Failed(RuntimeError),
}

/// Whether a failure turns on whether the instance's image still exists: a boot failed for
/// a reason retrying will not fix. Only then is it worth asking the engine.
pub fn image_cause_matters(plan: &Plan, error: &RuntimeError) -> bool {
    plan.creates() && !error.is_transient()
}

/// Judges what applying `plan` came to.
pub fn assess(plan: &Plan, applied: Applied) -> Verdict {
    match applied {
        Applied::Failed { error, image_gone }
            if image_gone && image_cause_matters(plan, &error) =>
        {
            Verdict::ImageGone(error)
        }
        Applied::Failed { error, .. } => Verdict::Failed(error),
        Applied::Done(after) => {
            // Only a pass that acted to make the instance run expects its container running.
            let expected_running = plan.reaches == Some(InstanceState::Running)
                && plan.steps.iter().any(|s| !s.is_mount());
            let Some(ended) = after
                .as_ref()
                .filter(|c| expected_running && c.state != ContainerState::Running)
            else {
                return Verdict::Reached(after);
            };
            let detail = format!(
                "the instance's container {} right after starting (exit code {})",
                ended.state.as_str(),
                ended
                    .exit_code
                    .map_or("unknown".to_string(), |c| c.to_string())
            );
            if matches!(ended.exit_code, Some(126 | 127)) {
                Verdict::CannotRun(detail)
            } else {
                Verdict::NotConverged(detail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, DesiredState};
    use crate::reconcile::fixtures::{container, plan_for};

    /// The plan for a fresh instance desired `desired` whose container is `observed`.
    fn planned(desired: DesiredState, observed: Option<ContainerState>) -> Plan {
        let mut inst = fixtures::instance();
        inst.spec.desired = desired;
        plan_for(&inst, observed)
    }

    fn after(state: ContainerState, exit_code: Option<i64>) -> Applied {
        Applied::Done(Some(ObservedContainer {
            exit_code,
            ..container(state)
        }))
    }

    fn failed(error: RuntimeError, image_gone: bool) -> Applied {
        Applied::Failed { error, image_gone }
    }

    /// The verdict's name, so the table below reads like a spec.
    fn word(verdict: &Verdict) -> &'static str {
        match verdict {
            Verdict::Reached(_) => "reached",
            Verdict::ImageGone(_) => "image gone",
            Verdict::CannotRun(_) => "cannot run",
            Verdict::NotConverged(_) => "not converged",
            Verdict::Failed(_) => "failed",
        }
    }

    fn check(plan: Plan, applied: Applied, expect: &str) {
        let case = format!("{:?} after {applied:?}", plan.steps);
        assert_eq!(word(&assess(&plan, applied)), expect, "{case}");
    }

    #[test]
    fn assess_table() {
        use ContainerState as C;
        use DesiredState as D;
        let boot = || planned(D::Running, None);
        let start = || planned(D::Running, Some(C::Exited));
        let settled = || planned(D::Running, Some(C::Running));
        let pause = || planned(D::Stopped, Some(C::Running));
        let gone = || RuntimeError::NotFound("no such image".into());
        let down = || RuntimeError::Unavailable("engine down".into());

        // The container runs as the plan asked, or the plan asked nothing of it.
        check(boot(), after(C::Running, None), "reached");
        check(boot(), Applied::Done(None), "reached");
        check(settled(), after(C::Exited, Some(127)), "reached");
        check(pause(), after(C::Paused, None), "reached");
        // It ended right after starting: its command cannot run, or it crashed.
        check(boot(), after(C::Exited, Some(127)), "cannot run");
        check(boot(), after(C::Exited, Some(126)), "cannot run");
        check(start(), after(C::Exited, Some(127)), "cannot run");
        check(boot(), after(C::Exited, Some(1)), "not converged");
        check(boot(), after(C::Exited, None), "not converged");
        check(boot(), after(C::Dead, Some(0)), "not converged");
        // A failed boot whose image is gone can never succeed; anything else is retried.
        check(boot(), failed(gone(), true), "image gone");
        check(boot(), failed(gone(), false), "failed");
        check(boot(), failed(down(), true), "failed");
        check(start(), failed(gone(), true), "failed");
        check(pause(), failed(down(), false), "failed");
    }

    #[test]
    fn the_image_is_asked_after_only_a_boot_that_retrying_will_not_fix() {
        use ContainerState as C;
        use DesiredState as D;
        let boot = planned(D::Running, None);
        let reboot = planned(D::Running, Some(C::Created));
        let start = planned(D::Running, Some(C::Exited));
        let gone = RuntimeError::NotFound("no such image".into());
        let refused = RuntimeError::Failed("bad config".into());
        assert!(image_cause_matters(&boot, &gone));
        assert!(image_cause_matters(&boot, &refused));
        assert!(image_cause_matters(&reboot, &gone));
        assert!(!image_cause_matters(&start, &gone), "not a boot");
        assert!(!image_cause_matters(
            &boot,
            &RuntimeError::Unavailable("down".into())
        ));
        assert!(!image_cause_matters(
            &boot,
            &RuntimeError::Conflict("busy".into())
        ));
    }

    #[test]
    fn an_ended_container_is_described_with_its_exit_code() {
        let boot = planned(DesiredState::Running, None);
        assert_eq!(
            assess(&boot, after(ContainerState::Exited, Some(127))),
            Verdict::CannotRun(
                "the instance's container exited right after starting (exit code 127)".into()
            )
        );
        assert_eq!(
            assess(&boot, after(ContainerState::Dead, None)),
            Verdict::NotConverged(
                "the instance's container dead right after starting (exit code unknown)".into()
            )
        );
    }
}
