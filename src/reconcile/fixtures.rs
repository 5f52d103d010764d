//! Observed containers and plans for the reconcilers' unit tests (`model::fixtures` cannot build runtime types).

use std::collections::BTreeMap;
use std::time::Duration;

use super::plan::{plan, Facts, Plan, PlanSettings};
use crate::model::{Instance, InstanceId};
use crate::runtime::{ContainerSpec, ContainerState, ObservedContainer};

/// Instance `i-00000001`'s container `c1`, in `state`, with no address, ports or exit code.
pub(crate) fn container(state: ContainerState) -> ObservedContainer {
    ObservedContainer {
        id: "c1".into(),
        name: "localstack-ec2.i-00000001".into(),
        instance_id: InstanceId::parse("i-00000001").expect("valid id"),
        state,
        exit_code: None,
        ip_address: None,
        image: "img".into(),
        ports: vec![],
        labels: BTreeMap::new(),
        started_at: None,
        finished_at: None,
        limits: None,
        networks: BTreeMap::new(),
        volume_mounts: vec![],
        binds: vec![],
    }
}

/// The plan for `instance` with its container in `observed` (or none), removing finished
/// containers, with no facts from outside.
pub(crate) fn plan_for(instance: &Instance, observed: Option<ContainerState>) -> Plan {
    let settings = PlanSettings {
        remove_containers: true,
        stop_timeout: Duration::from_secs(1),
    };
    let observed = observed.map(container);
    plan(
        instance,
        observed.as_ref(),
        Facts::default(),
        &settings,
        ContainerSpec::default,
    )
}
