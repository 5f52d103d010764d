//! Observed containers for the reconcilers' unit tests (`model::fixtures` cannot build runtime types).

use std::collections::BTreeMap;

use crate::model::InstanceId;
use crate::runtime::{ContainerState, ObservedContainer};

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
    }
}
