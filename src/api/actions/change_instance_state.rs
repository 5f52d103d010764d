//! `StartInstances`, `StopInstances`, `TerminateInstances`: validate every id first, write nothing if one fails, then change desired state per instance.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{
    now, stop_never_ran, DesiredState, Instance, InstanceId, InstanceState, NeverRanError,
    Timestamp, TransitionError,
};

use crate::api::render::render_state;
use crate::api::{instances, kind};

/// Which state change is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// StopInstances.
    Stop,
    /// StartInstances.
    Start,
    /// TerminateInstances.
    Terminate,
}

/// A validated Stop/Start/TerminateInstances request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `InstanceId.N`, deduplicated, in request order.
    pub ids: Vec<InstanceId>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// One `InstanceStateChange`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The instance.
    pub instance_id: String,
    /// The state shown before the call.
    pub previous: InstanceState,
    /// The state shown after the call's write.
    pub current: InstanceState,
}

/// Parses the id list (required), `DryRun`, and for a stop `Force`/`Hibernate`.
pub fn parse(op: Op, params: &QueryParams) -> Result<Request, ApiError> {
    if op == Op::Stop {
        params.bool("Force")?;
        params.bool("Hibernate")?;
    }
    Ok(Request {
        ids: instances::required_instance_ids(params)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// The model's guards for `op` on the state the client currently sees.
fn guard(op: Op, instance: &Instance) -> Result<(), ApiError> {
    let shown = instances::shown_state(instance);
    if op == Op::Stop && stop_never_ran(shown, &instance.status) {
        return Err(NeverRanError {
            instance_id: instance.metadata.name.clone(),
        }
        .into());
    }
    let (allowed, verb) = match op {
        Op::Stop => (shown.can_stop(), "stopped"),
        Op::Start => (shown.can_start(), "started"),
        // Terminating is always allowed; terminating a terminated instance is a no-op.
        Op::Terminate => (true, "terminated"),
    };
    if allowed {
        Ok(())
    } else {
        Err(TransitionError {
            instance_id: instance.metadata.name.clone(),
            verb,
        }
        .into())
    }
}

/// `OperationNotPermitted` when the instance's `disableApiTermination`/`disableApiStop`
/// protects it from `op`.
fn protected(op: Op, instance: &Instance) -> Result<(), ApiError> {
    let (set, verb, attribute) = match op {
        Op::Terminate => (
            instance.spec.disable_api_termination,
            "terminated",
            "disableApiTermination",
        ),
        Op::Stop => (instance.spec.disable_api_stop, "stopped", "disableApiStop"),
        Op::Start => (false, "", ""),
    };
    if set {
        return Err(ApiError::client(
            "OperationNotPermitted",
            format!(
                "The instance '{}' may not be {verb}. Modify its '{attribute}' instance \
                 attribute and try again.",
                instance.metadata.name
            ),
        ));
    }
    Ok(())
}

/// Writes the wish into the spec; returns whether anything changed (no change, no generation bump).
fn apply(op: Op, instance: &mut Instance, at: Timestamp) -> bool {
    let shown = instances::shown_state(instance);
    let spec = &mut instance.spec;
    match op {
        Op::Stop => {
            if spec.desired == DesiredState::Stopped {
                return false;
            }
            spec.desired = DesiredState::Stopped;
            spec.user_transition_at = Some(at);
        }
        Op::Start => {
            // Desired running but shown stopped: the instance shut itself down at this
            // generation; a new generation is what tells the reconciler to start it again.
            let self_stopped =
                spec.desired == DesiredState::Running && shown == InstanceState::Stopped;
            if spec.desired == DesiredState::Running && !self_stopped {
                return false;
            }
            spec.desired = DesiredState::Running;
        }
        Op::Terminate => {
            if spec.desired == DesiredState::Terminated {
                return false;
            }
            spec.desired = DesiredState::Terminated;
            spec.user_transition_at = Some(at);
            instance.metadata.deletion_timestamp.get_or_insert(at);
        }
    }
    true
}

/// Validates every instance (existence in the region, then the guard) before writing any, so
/// one bad id leaves all untouched; then writes each with the store's compare-and-swap, which
/// re-checks the guard against the latest state.
pub fn handle(
    state: &ApiState,
    region: &str,
    op: Op,
    req: Request,
) -> Result<Vec<Change>, ApiError> {
    let instances = instances::load_instances(state, region, &req.ids)?;
    for instance in &instances {
        protected(op, instance)?;
        guard(op, instance)?;
    }
    kind::check_dry_run(req.dry_run)?;
    let at = now();
    let mut changes = Vec::with_capacity(instances.len());
    for instance in &instances {
        let (before, after) =
            state
                .store
                .instances()
                .update_spec::<ApiError>(&instance.metadata.name, |obj| {
                    protected(op, obj)?;
                    guard(op, obj)?;
                    Ok(apply(op, obj, at))
                })?;
        let change = Change {
            instance_id: before.metadata.name.clone(),
            previous: instances::shown_state(&before),
            current: instances::shown_state(&after),
        };
        if before.metadata.generation != after.metadata.generation {
            tracing::info!(
                instance_id = %change.instance_id,
                ?op,
                generation = after.metadata.generation,
                from = %change.previous,
                to = %change.current,
                "desired state changed"
            );
        }
        changes.push(change);
    }
    Ok(changes)
}

/// `StopInstances`: desired=stopped (a paused container); running→stopping. `Force` and
/// `Hibernate` must be booleans and are ignored: ec2d's stop is a pause, there is nothing to
/// force or hibernate.
pub fn call_stop(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    call(state, region, Op::Stop, params)
}

/// `StartInstances`: desired=running again; stopped→pending (`AdditionalInfo` is ignored).
pub fn call_start(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    call(state, region, Op::Start, params)
}

/// `TerminateInstances`: desired=terminated with a deletion timestamp; →shutting-down
/// ("if one fails, none are terminated").
pub fn call_terminate(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    call(state, region, Op::Terminate, params)
}

fn call(state: &ApiState, region: &str, op: Op, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, op, parse(op, params)?)?))
}

/// `instancesSet` of `{instanceId, currentState, previousState}`.
pub fn render(changes: &[Change]) -> String {
    let mut w = XmlWriter::new();
    w.set("instancesSet", changes, |w, c| {
        w.field("instanceId", &c.instance_id);
        render_state(w, "currentState", c.current);
        render_state(w, "previousState", c.previous);
    });
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    #[test]
    fn parse_ids() {
        let req = parse(
            Op::Start,
            &QueryParams::from_query("InstanceId.2=i-00000002&InstanceId.1=i-00000001&DryRun=true"),
        )
        .unwrap();
        let ids: Vec<_> = req.ids.iter().map(|i| i.as_str()).collect();
        assert_eq!(ids, vec!["i-00000001", "i-00000002"]);
        assert!(req.dry_run);
        let e = parse(Op::Start, &QueryParams::from_query("InstanceId.1=nope")).unwrap_err();
        assert_eq!(e.code, "InvalidInstanceID.Malformed");
    }

    #[test]
    fn parse_requires_ids() {
        for op in [Op::Stop, Op::Start, Op::Terminate] {
            let e = parse(op, &QueryParams::from_query("DryRun=false")).unwrap_err();
            assert_eq!(e.code, "InvalidParameterCombination");
            assert_eq!(e.message, "No instances specified");
        }
        assert!(parse(
            Op::Terminate,
            &QueryParams::from_query("InstanceId.1=i-00000001")
        )
        .is_ok());
    }

    #[test]
    fn stop_accepts_force_and_rejects_garbage() {
        let req = parse(
            Op::Stop,
            &QueryParams::from_query("InstanceId.1=i-00000001&Force=true"),
        )
        .unwrap();
        assert_eq!(req.ids.len(), 1);
        let e = parse(
            Op::Stop,
            &QueryParams::from_query("InstanceId.1=i-00000001&Force=sure"),
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        let e = parse(Op::Stop, &QueryParams::from_query("Force=true")).unwrap_err();
        assert_eq!(e.code, "InvalidParameterCombination");
    }

    fn running() -> Instance {
        let mut inst = fixtures::instance();
        inst.status.observed_generation = 1;
        inst.status.state = Some(InstanceState::Running);
        inst
    }

    #[test]
    fn stop_then_stop_again_is_a_no_op() {
        let mut inst = running();
        assert!(apply(Op::Stop, &mut inst, now()));
        assert_eq!(inst.spec.desired, DesiredState::Stopped);
        assert!(inst.spec.user_transition_at.is_some());
        assert!(!apply(Op::Stop, &mut inst, now()));
    }

    #[test]
    fn start_of_running_is_a_no_op_but_self_stopped_restarts() {
        let mut inst = running();
        assert!(!apply(Op::Start, &mut inst, now()));
        inst.status.state = Some(InstanceState::Stopped);
        inst.status.shutdown_generation = Some(1);
        assert_eq!(instances::shown_state(&inst), InstanceState::Stopped);
        assert!(apply(Op::Start, &mut inst, now()));
    }

    #[test]
    fn terminate_sets_deletion_timestamp_once() {
        let mut inst = running();
        let at = now();
        assert!(apply(Op::Terminate, &mut inst, at));
        assert_eq!(inst.metadata.deletion_timestamp, Some(at));
        assert!(!apply(Op::Terminate, &mut inst, now()));
    }

    #[test]
    fn guards_use_the_shown_state() {
        let mut inst = running();
        inst.spec.desired = DesiredState::Terminated;
        inst.metadata.generation = 2;
        let e = guard(Op::Start, &inst).unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "The instance '{}' is not in a state from which it can be started.",
                inst.metadata.name
            )
        );
        assert!(guard(Op::Stop, &inst).is_err());
        assert!(guard(Op::Terminate, &inst).is_ok());
    }

    #[test]
    fn a_first_launch_still_pending_cannot_be_stopped() {
        let inst = fixtures::instance();
        assert_eq!(instances::shown_state(&inst), InstanceState::Pending);
        let e = guard(Op::Stop, &inst).unwrap_err();
        assert_eq!(e.code, "IncorrectInstanceState");
        assert_eq!(
            e.message,
            format!(
                "Instance '{}' cannot be stopped as it has never reached the 'running' state.",
                inst.metadata.name
            )
        );
        assert!(guard(Op::Terminate, &inst).is_ok());
        assert!(guard(Op::Stop, &running()).is_ok());
    }

    #[test]
    fn render_shape() {
        let doc = render(&[Change {
            instance_id: "i-1".into(),
            previous: InstanceState::Running,
            current: InstanceState::Stopping,
        }]);
        assert_eq!(
            doc,
            "<instancesSet><item><instanceId>i-1</instanceId><currentState><code>64</code><name>stopping</name></currentState>\
             <previousState><code>16</code><name>running</name></previousState></item></instancesSet>"
        );
    }
}
