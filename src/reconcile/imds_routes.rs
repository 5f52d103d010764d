//! Which instances' containers the host's IMDS NAT rules redirect (`hostnet`), converged from observed status.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::Context;
use crate::model::{DesiredState, Instance, InstanceId, InstanceState};
use crate::runtime::ContainerRuntime;

/// The address an instance's metadata requests come from while it should get answers: its
/// container's observed address, while the container is up and the instance is not being
/// terminated. Pure; `None` removes its rule.
pub fn route_address(instance: &Instance) -> Option<Ipv4Addr> {
    if instance.spec.desired == DesiredState::Terminated
        || instance.metadata.deletion_timestamp.is_some()
        || instance.status.state == Some(InstanceState::Terminated)
    {
        return None;
    }
    let container = instance.status.container.as_ref()?;
    // A paused (stopped) container keeps its address and its rule: it sends nothing, and a
    // start then needs no rule change.
    if !matches!(
        container.state.as_str(),
        "running" | "paused" | "restarting"
    ) {
        return None;
    }
    container.ip_address.as_deref()?.parse().ok()
}

/// After an instance's pass: its rule follows the status just written (a record gone: no rule).
pub(super) async fn converge<R: ContainerRuntime>(id: &InstanceId, ctx: &Context<R>) {
    if !ctx.imds_routes.is_active() {
        return;
    }
    let address = match ctx.store.instances().get_shared(id.as_str()) {
        Ok(instance) => instance
            .as_deref()
            .filter(|i| on_this_host(ctx, i))
            .and_then(route_address),
        // Unknown now: the sweep's full sync settles it.
        Err(_) => return,
    };
    ctx.imds_routes.converge(id.as_str(), address).await;
}

/// The sweep's full sync, from every instance of the store.
pub(super) async fn sync<R: ContainerRuntime>(ctx: &Context<R>) {
    if !ctx.imds_routes.is_active() {
        return;
    }
    let listing = match ctx.store.instances().list_shared() {
        Ok(listing) => listing,
        Err(error) => {
            tracing::warn!(%error, "cannot list instances for the IMDS NAT rules");
            return;
        }
    };
    let desired: BTreeMap<String, Ipv4Addr> = listing
        .objects
        .iter()
        .filter(|i| on_this_host(ctx, i))
        .filter_map(|i| Some((i.metadata.name.clone(), route_address(i)?)))
        .collect();
    ctx.imds_routes.sync(desired).await;
}

/// Whether the instance's container is on an engine of this host: the NAT rules are this
/// host's, and a remote engine's bridge addresses mean nothing here (they may even repeat
/// a local one).
fn on_this_host<R: ContainerRuntime>(ctx: &Context<R>, instance: &Instance) -> bool {
    !ctx.engines.is_multi() || super::instance::engine_of(ctx, instance).is_local()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, ContainerObservation};

    fn with_container(state: &str, ip: Option<&str>) -> Instance {
        let mut instance = fixtures::instance();
        instance.status.state = Some(InstanceState::Running);
        instance.status.container = Some(ContainerObservation {
            id: "c1".into(),
            state: state.into(),
            ip_address: ip.map(str::to_string),
            ports: vec![],
        });
        instance
    }

    #[test]
    fn a_running_or_paused_container_with_an_address_is_redirected() {
        let ip = Some(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(
            route_address(&with_container("running", Some("172.17.0.2"))),
            ip
        );
        assert_eq!(
            route_address(&with_container("paused", Some("172.17.0.2"))),
            ip
        );
    }

    #[test]
    fn no_rule_without_an_up_container_an_address_or_while_terminating() {
        assert_eq!(route_address(&fixtures::instance()), None);
        assert_eq!(
            route_address(&with_container("exited", Some("172.17.0.2"))),
            None
        );
        assert_eq!(route_address(&with_container("running", None)), None);
        assert_eq!(
            route_address(&with_container("running", Some("fd00::2"))),
            None
        );
        let mut terminating = with_container("running", Some("172.17.0.2"));
        terminating.spec.desired = DesiredState::Terminated;
        assert_eq!(route_address(&terminating), None);
        let mut terminated = with_container("running", Some("172.17.0.2"));
        terminated.status.state = Some(InstanceState::Terminated);
        assert_eq!(route_address(&terminated), None);
    }
}
