//! VPC networks (of created VPCs) against the fake runtime: made before the first boot, the instance on it at its allocated address, made again and re-joined after a removal behind ec2d's back, removed after the VPC's last instance, and the default bridge (with a warning) when refused; a failure that names no overlap is tried again first.

use std::sync::Arc;

use ec2d::model::vpc::{vpc_record, VpcSpec};
use ec2d::model::{fixtures, now, DesiredState, Instance, InstanceId, InstanceState};
use ec2d::reconcile::{self, Context, ObjectRef, Settings};
use ec2d::runtime::fake::Op;
use ec2d::runtime::{labels, FakeRuntime};
use ec2d::store::{Store, StoreError};

const AMI_REF: &str = "localstack-ec2/test-ami:ami-000001";

/// Past the second for which one failure to make a network answers every pass of its VPC.
const RETRY_ROUND: std::time::Duration = std::time::Duration::from_millis(1100);

fn context(settings: Settings) -> (Arc<Context<FakeRuntime>>, FakeRuntime, Store) {
    let fake = FakeRuntime::new();
    fake.add_image(AMI_REF);
    let store = Store::temporary().unwrap();
    let ctx = Arc::new(Context::new(store.clone(), fake.clone(), settings));
    (ctx, fake, store)
}

/// Writes an instance of `vpc_id` holding `ip`, as RunInstances would.
fn launch_in(store: &Store, vpc_id: &str, ip: &str) -> InstanceId {
    let mut instance = fixtures::instance();
    instance.spec.vpc_id = Some(vpc_id.to_string());
    instance.spec.subnet_id = Some("subnet-0123456789abcdef0".to_string());
    instance.spec.private_ip = Some(ip.to_string());
    store
        .instances()
        .create(std::slice::from_ref(&instance))
        .unwrap();
    InstanceId::parse(&instance.metadata.name).unwrap()
}

fn store_vpc(store: &Store, id: &str, cidr: &str) {
    let spec = VpcSpec {
        cidr_block: cidr.to_string(),
        cidr_association_id: "vpc-cidr-assoc-0123456789abcdef0".to_string(),
        instance_tenancy: "default".to_string(),
        default_group_id: "sg-0123456789abcdef0".to_string(),
        enable_dns_support: true,
        enable_dns_hostnames: false,
        enable_network_address_usage_metrics: false,
        is_default: false,
        tags: Default::default(),
    };
    store
        .spec_view()
        .create_vpc(&vpc_record(id, "us-east-1", spec, now()))
        .unwrap();
}

fn get(ctx: &Context<FakeRuntime>, id: &InstanceId) -> Instance {
    ctx.store.instances().get(id.as_str()).unwrap().unwrap()
}

async fn run(ctx: &Arc<Context<FakeRuntime>>, key: ObjectRef) {
    // Errors are recorded in status; the assertions read the world afterwards.
    let _ = reconcile::reconcile(key, ctx.clone()).await;
}

fn terminate(store: &Store, id: &InstanceId) {
    store
        .instances()
        .update_spec::<StoreError>(id.as_str(), |o| {
            o.spec.desired = DesiredState::Terminated;
            Ok(true)
        })
        .unwrap();
}

#[tokio::test]
async fn instances_boot_on_their_vpcs_network_at_their_addresses_and_it_goes_with_the_last() {
    let (ctx, fake, store) = context(Settings::default());
    let vpc = "vpc-0eeeeeeeeeeeeeeee".to_string();
    store_vpc(&store, &vpc, "172.31.0.0/16");
    let a = launch_in(&store, &vpc, "172.31.0.4");
    let b = launch_in(&store, &vpc, "172.31.0.5");
    run(&ctx, ObjectRef::Instance(a.clone())).await;
    run(&ctx, ObjectRef::Instance(b.clone())).await;

    let name = labels::network_name(store.id(), &vpc);
    assert_eq!(
        fake.networks(),
        vec![(name.clone(), "172.31.0.0/16".into())]
    );
    let create_network = fake.ops().iter().position(|op| *op == Op::CreateNetwork);
    let first_boot = fake.ops().iter().position(|op| *op == Op::Create);
    assert!(
        create_network < first_boot,
        "the network exists before the first boot"
    );
    assert_eq!(
        fake.ops()
            .iter()
            .filter(|op| **op == Op::CreateNetwork)
            .count(),
        1,
        "two instances of one VPC share one network"
    );
    for (id, ip) in [(&a, "172.31.0.4"), (&b, "172.31.0.5")] {
        let instance = get(&ctx, id);
        assert_eq!(instance.status.state, Some(InstanceState::Running));
        let container = instance.status.container.unwrap();
        assert_eq!(container.ip_address.as_deref(), Some(ip));
        assert_eq!(
            fake.container_networks(id).into_iter().collect::<Vec<_>>(),
            vec![(name.clone(), ip.to_string())]
        );
        assert!(instance.status.network_warning.is_none());
    }

    // The network stays while one instance needs it, and goes with the last.
    terminate(&store, &a);
    run(&ctx, ObjectRef::Instance(a.clone())).await;
    run(&ctx, ObjectRef::Network(vpc.clone())).await;
    assert_eq!(fake.networks().len(), 1);
    terminate(&store, &b);
    run(&ctx, ObjectRef::Instance(b.clone())).await;
    run(&ctx, ObjectRef::Network(vpc.clone())).await;
    assert!(fake.networks().is_empty(), "no instance needs it any more");
}

#[tokio::test]
async fn a_network_removed_behind_ec2ds_back_is_made_again_and_rejoined_at_the_same_address() {
    let (ctx, fake, store) = context(Settings::default());
    store_vpc(&store, "vpc-0aaaaaaaaaaaaaaaa", "10.0.0.0/16");
    let id = launch_in(&store, "vpc-0aaaaaaaaaaaaaaaa", "10.0.1.4");
    run(&ctx, ObjectRef::Instance(id.clone())).await;
    let name = labels::network_name(store.id(), "vpc-0aaaaaaaaaaaaaaaa");
    assert!(fake.remove_network_behind_back(&name));
    ctx.networks.forget("vpc-0aaaaaaaaaaaaaaaa");

    run(&ctx, ObjectRef::Network("vpc-0aaaaaaaaaaaaaaaa".into())).await;
    assert_eq!(fake.networks(), vec![(name.clone(), "10.0.0.0/16".into())]);
    run(&ctx, ObjectRef::Instance(id.clone())).await;
    assert!(fake.ops().contains(&Op::ConnectNetwork));
    assert_eq!(
        fake.container_networks(&id).into_iter().collect::<Vec<_>>(),
        vec![(name, "10.0.1.4".to_string())]
    );
    assert_eq!(
        get(&ctx, &id)
            .status
            .container
            .unwrap()
            .ip_address
            .as_deref(),
        Some("10.0.1.4")
    );
}

#[tokio::test]
async fn a_stopped_instance_whose_network_was_removed_is_rejoined_before_it_starts() {
    let (ctx, fake, store) = context(Settings::default());
    store_vpc(&store, "vpc-0bbbbbbbbbbbbbbbb", "10.1.0.0/16");
    let id = launch_in(&store, "vpc-0bbbbbbbbbbbbbbbb", "10.1.2.9");
    run(&ctx, ObjectRef::Instance(id.clone())).await;
    // `docker kill` of the container, then `docker network rm`, which the engine allows with
    // no running endpoint.
    let container = fake.container_id(&id).unwrap();
    fake.signal_behind_back(&id, 137, false);
    let name = labels::network_name(store.id(), "vpc-0bbbbbbbbbbbbbbbb");
    assert!(fake.remove_network_behind_back(&name));
    ctx.networks.forget("vpc-0bbbbbbbbbbbbbbbb");
    fake.clear_calls();

    run(&ctx, ObjectRef::Instance(id.clone())).await;
    let ops = fake.ops();
    let connect = ops.iter().position(|op| *op == Op::ConnectNetwork);
    let start = ops.iter().position(|op| *op == Op::Start);
    assert!(
        connect.is_some() && connect < start,
        "re-joined before the start: {ops:?}"
    );
    assert_eq!(
        fake.container_id(&id).as_deref(),
        Some(container.as_str()),
        "same container"
    );
    assert_eq!(get(&ctx, &id).status.state, Some(InstanceState::Running));
}

#[tokio::test]
async fn a_refused_network_boots_the_instance_on_the_default_bridge_and_says_why() {
    let (ctx, fake, store) = context(Settings::default());
    store_vpc(&store, "vpc-0ccccccccccccccccc", "10.5.0.0/16");
    store_vpc(&store, "vpc-0dddddddddddddddd", "10.5.0.0/16");
    let first = launch_in(&store, "vpc-0ccccccccccccccccc", "10.5.0.4");
    let second = launch_in(&store, "vpc-0dddddddddddddddd", "10.5.0.4");
    run(&ctx, ObjectRef::Instance(first.clone())).await;
    run(&ctx, ObjectRef::Instance(second.clone())).await;

    assert_eq!(
        fake.networks().len(),
        1,
        "two live networks cannot share a block"
    );
    let refused = get(&ctx, &second);
    assert_eq!(refused.status.state, Some(InstanceState::Running));
    let warning = refused.status.network_warning.expect("a warning");
    assert!(
        warning.contains("vpc-0dddddddddddddddd") && warning.contains("default bridge"),
        "{warning}"
    );
    let shown = refused.status.container.unwrap().ip_address.unwrap();
    assert!(
        shown.starts_with("172.17."),
        "the bridge's address is shown: {shown}"
    );
    assert!(get(&ctx, &first).status.network_warning.is_none());
}

#[tokio::test]
async fn a_passing_failure_to_make_the_network_is_tried_again_and_the_instance_boots_on_it() {
    let (ctx, fake, store) = context(Settings::default());
    store_vpc(&store, "vpc-0eeeeeeeeeeeeeeee", "10.6.0.0/16");
    let id = launch_in(&store, "vpc-0eeeeeeeeeeeeeeee", "10.6.0.4");
    fake.fail_next(
        Op::CreateNetwork,
        ec2d::runtime::RuntimeError::Failed(
            "create network: iptables: Resource temporarily unavailable (HTTP 500)".into(),
        ),
        1,
    );
    run(&ctx, ObjectRef::Instance(id.clone())).await;
    let waiting = get(&ctx, &id);
    assert!(
        waiting.status.container.is_none(),
        "no boot on the bridge after one failure"
    );
    assert!(
        waiting
            .status
            .last_error
            .is_some_and(|e| e.message.contains("iptables")),
        "the failure is recorded while the boot waits"
    );

    // The instance's backoff: the next pass comes after the failure's one-second answer.
    tokio::time::sleep(RETRY_ROUND).await;
    run(&ctx, ObjectRef::Instance(id.clone())).await;
    let booted = get(&ctx, &id);
    assert_eq!(booted.status.state, Some(InstanceState::Running));
    assert!(booted.status.network_warning.is_none());
    assert_eq!(
        booted.status.container.unwrap().ip_address.as_deref(),
        Some("10.6.0.4")
    );
    assert_eq!(fake.networks().len(), 1);
}

#[tokio::test]
async fn one_passing_failure_counts_once_however_many_instances_wait_for_the_network() {
    let (ctx, fake, store) = context(Settings::default());
    store_vpc(&store, "vpc-0abababababababab", "10.8.0.0/16");
    let ids: Vec<InstanceId> = (4..7)
        .map(|n| launch_in(&store, "vpc-0abababababababab", &format!("10.8.0.{n}")))
        .collect();
    fake.fail_next(
        Op::CreateNetwork,
        ec2d::runtime::RuntimeError::Failed(
            "create network: device or resource busy (HTTP 500)".into(),
        ),
        3,
    );
    let creates = |fake: &FakeRuntime| {
        fake.calls()
            .iter()
            .filter(|c| c.op == Op::CreateNetwork)
            .count()
    };
    futures::future::join_all(
        ids.iter()
            .map(|id| run(&ctx, ObjectRef::Instance(id.clone()))),
    )
    .await;
    assert_eq!(
        creates(&fake),
        1,
        "the waiting passes take the first one's answer"
    );
    for id in &ids {
        assert!(
            get(&ctx, id).status.container.is_none(),
            "one failure boots nobody on the bridge"
        );
    }
}

#[tokio::test]
async fn a_network_the_engine_keeps_failing_to_make_leaves_the_instance_on_the_bridge_in_the_end() {
    let (ctx, fake, store) = context(Settings::default());
    store_vpc(&store, "vpc-0ffffffffffffffff", "10.7.0.0/16");
    let id = launch_in(&store, "vpc-0ffffffffffffffff", "10.7.0.4");
    fake.fail_next(
        Op::CreateNetwork,
        ec2d::runtime::RuntimeError::Failed("create network: no such driver (HTTP 500)".into()),
        100,
    );
    for round in 0..3 {
        if round > 0 {
            tokio::time::sleep(RETRY_ROUND).await;
        }
        run(&ctx, ObjectRef::Instance(id.clone())).await;
    }
    let booted = get(&ctx, &id);
    assert_eq!(booted.status.state, Some(InstanceState::Running));
    let warning = booted.status.network_warning.expect("a warning");
    assert!(warning.contains("no such driver"), "{warning}");
    assert!(fake.networks().is_empty());
}

#[tokio::test]
async fn with_vpc_networks_off_every_container_is_on_the_default_bridge() {
    let (ctx, fake, store) = context(Settings {
        vpc_networks: false,
        ..Settings::default()
    });
    let vpc = "vpc-0eeeeeeeeeeeeeeee";
    store_vpc(&store, vpc, "10.7.0.0/16");
    let id = launch_in(&store, vpc, "10.7.0.4");
    run(&ctx, ObjectRef::Instance(id.clone())).await;
    assert!(fake.networks().is_empty());
    assert!(!fake.ops().contains(&Op::ListNetworks));
    assert_eq!(get(&ctx, &id).status.state, Some(InstanceState::Running));
}
