//! The NAT chain's lifecycle and convergence against the in-memory firewall.

use super::*;

const STORE: &str = "3f2a9c1e-0000-4000-8000-000000000000";
const CHAIN: &str = "EC2D-IMDS-3F2A9C1E";

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 17, 0, last)
}

fn rule(last: u8, port: u16) -> String {
    format!("-s 172.17.0.{last}/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports {port}")
}

async fn wired(fake: &Arc<FakeFirewall>, port: u16) -> ImdsRoutes {
    ImdsRoutes::setup(fake.clone(), STORE, port).await
}

/// A fresh nat table, wired for port 4567.
async fn fresh() -> (Arc<FakeFirewall>, ImdsRoutes) {
    let fake = Arc::new(FakeFirewall::new());
    let routes = wired(&fake, 4567).await;
    (fake, routes)
}

#[test]
fn the_chain_is_named_after_the_store() {
    assert_eq!(chain_name(STORE), CHAIN);
    assert!(chain_name(STORE).len() <= 28, "iptables' limit");
}

#[tokio::test]
async fn setup_makes_the_chain_and_one_jump_for_metadata_traffic_only() {
    let (fake, routes) = fresh().await;
    assert!(routes.is_active());
    assert_eq!(fake.chain(CHAIN), Some(vec![]));
    let jump = format!("-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j {CHAIN}");
    assert_eq!(fake.chain("PREROUTING"), Some(vec![jump.clone()]));
    // A second setup (a restart) adds no second jump.
    let _again = wired(&fake, 4567).await;
    assert_eq!(fake.chain("PREROUTING"), Some(vec![jump]));
}

#[tokio::test]
async fn one_rule_per_running_instance_added_and_removed() {
    let (fake, routes) = fresh().await;
    routes.converge("i-1", Some(ip(2))).await;
    routes.converge("i-2", Some(ip(3))).await;
    assert_eq!(fake.chain(CHAIN), Some(vec![rule(2, 4567), rule(3, 4567)]));
    let calls = fake.calls().len();
    routes.converge("i-1", Some(ip(2))).await;
    assert_eq!(
        fake.calls().len(),
        calls,
        "an unchanged instance costs no command"
    );
    routes.converge("i-1", None).await;
    assert_eq!(fake.chain(CHAIN), Some(vec![rule(3, 4567)]));
    assert_eq!(routes.report().addresses, vec![ip(3)]);
}

#[tokio::test]
async fn an_address_taken_over_by_another_instance_keeps_its_rule() {
    let (fake, routes) = fresh().await;
    routes.converge("i-old", Some(ip(2))).await;
    routes.converge("i-new", Some(ip(2))).await;
    routes.converge("i-old", None).await;
    assert_eq!(fake.chain(CHAIN), Some(vec![rule(2, 4567)]));
}

#[tokio::test]
async fn a_restart_adopts_the_rules_and_the_sweep_converges_them() {
    let fake = Arc::new(FakeFirewall::new());
    let first = wired(&fake, 4567).await;
    first.converge("i-1", Some(ip(2))).await;
    first.converge("i-gone", Some(ip(9))).await;
    // Crash: no teardown. The next run adopts the chain as it is.
    let routes = wired(&fake, 4567).await;
    assert_eq!(routes.report().addresses, vec![ip(2), ip(9)]);
    routes
        .sync(BTreeMap::from([
            ("i-1".to_string(), ip(2)),
            ("i-3".to_string(), ip(4)),
        ]))
        .await;
    assert_eq!(fake.chain(CHAIN), Some(vec![rule(2, 4567), rule(4, 4567)]));
}

#[tokio::test]
async fn the_sweep_rewires_a_chain_removed_behind_ec2ds_back_and_drops_stale_rules() {
    let fake = Arc::new(FakeFirewall::new());
    let old = wired(&fake, 4000).await;
    old.converge("i-1", Some(ip(2))).await;
    // Restarted on another port: the old port's rule is not ours any more.
    let routes = wired(&fake, 4567).await;
    routes
        .sync(BTreeMap::from([("i-1".to_string(), ip(2))]))
        .await;
    assert_eq!(fake.chain(CHAIN), Some(vec![rule(2, 4567)]));
    // Someone flushes and deletes it all.
    let flush = |verb: &str, chain: &str| fake.run(&["-t", "nat", verb], &[chain.to_string()]);
    flush("-F", CHAIN).unwrap();
    flush("-F", "PREROUTING").unwrap();
    flush("-X", CHAIN).unwrap();
    routes
        .sync(BTreeMap::from([("i-1".to_string(), ip(2))]))
        .await;
    assert_eq!(fake.chain(CHAIN), Some(vec![rule(2, 4567)]));
    assert_eq!(fake.chain("PREROUTING").map(|r| r.len()), Some(1));
}

#[tokio::test]
async fn teardown_removes_everything_it_added() {
    let (fake, routes) = fresh().await;
    routes.converge("i-1", Some(ip(2))).await;
    routes.teardown().await;
    assert_eq!(fake.chain(CHAIN), None);
    assert_eq!(fake.chain("PREROUTING"), Some(vec![]));
}

#[tokio::test]
async fn without_permission_ec2d_runs_on_and_says_why() {
    let fake = Arc::new(FakeFirewall::denying(
        "Permission denied (you must be root)",
    ));
    let routes = wired(&fake, 4567).await;
    assert!(!routes.is_active());
    let problem = routes.problem().unwrap();
    assert!(
        problem.contains("IMDS is unreachable from instances"),
        "{problem}"
    );
    assert!(problem.contains("Permission denied"), "{problem}");
    let calls = fake.calls().len();
    routes.converge("i-1", Some(ip(2))).await;
    routes.sync(BTreeMap::new()).await;
    routes.teardown().await;
    assert_eq!(
        fake.calls().len(),
        calls,
        "a wiring that is off runs nothing"
    );
    assert!(!routes.report().active);
}
