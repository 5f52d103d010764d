//! The host's IMDS NAT rules against the real engine and iptables: an instance's request to
//! 169.254.169.254:80 reaches ec2d's IMDS listener, which answers it its own instance id, on
//! Docker's default bridge and on a VPC's network; a container that is not an instance is not
//! redirected; termination and shutdown remove the rules.

mod common;

use std::time::Duration;

use common::{docker, docker_available, tagged_test_ami, Ec2, TEST_IMAGE};
use ec2d::config::VmManager;
use ec2d::hostnet::{Firewall, SystemIptables};
use ec2d::{App, Config};

const WAIT: Duration = Duration::from_secs(60);

/// What a container gets from 169.254.169.254:80 (busybox `nc`; its `wget` crashes on this
/// engine's seccomp profile).
fn ask_metadata(container: &str) -> String {
    docker(&[
        "exec",
        container,
        "sh",
        "-c",
        "printf 'GET /latest/meta-data/instance-id HTTP/1.0\\r\\nHost: 169.254.169.254\\r\\n\\r\\n' | nc -w 5 169.254.169.254 80",
    ])
    .1
}

/// Polls a container until 169.254.169.254 answers it with `want` in the body.
async fn wait_answer(container: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = ask_metadata(container);
        if got.contains(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{container} never got {want:?}; last answer {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn chain_rules(iptables: &SystemIptables, chain: &str) -> Option<String> {
    iptables
        .run(&["-t", "nat", "-S"], &[chain.to_string()])
        .ok()
}

async fn wait_rules(iptables: &SystemIptables, chain: &str, ok: impl Fn(Option<&str>) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rules = chain_rules(iptables, chain);
        if ok(rules.as_deref()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chain {chain} never as expected: {rules:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_metadata_requests_reach_ec2d_and_nothing_else_is_redirected() {
    if !docker_available() {
        return;
    }
    let iptables = match SystemIptables::detect() {
        Ok(iptables) => iptables,
        Err(error) if std::env::var("EC2D_REQUIRE_DOCKER").is_ok_and(|v| v == "1") => {
            panic!("EC2D_REQUIRE_DOCKER=1 but iptables is unusable: {error}")
        }
        Err(error) => {
            eprintln!(
                "\n**************** SKIPPED: iptables is unusable ({error}) ****************\n"
            );
            return;
        }
    };
    let (ami, mut cleanup) = tagged_test_ami("imds-busybox");

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path().to_path_buf());
    config.vm_manager = VmManager::Docker;
    config.imds = true;
    // Any free port: the rules redirect to the one the listener bound.
    config.imds_listen = "0.0.0.0:0".parse().unwrap();
    // The sweep (part of every resync) is the full sync of the rules.
    config.resync_seconds = 2;
    let app = App::spawn(config).await.unwrap();
    let ec2 = Ec2::new(app.url(), "us-east-1");

    let (_, status) = ec2.get_json("/_ec2d/status").await;
    let routes = &status["imdsRoutes"];
    assert_eq!(routes["active"], true, "{routes}");
    let port = routes["port"].as_u64().expect("the bound port");
    assert_ne!(port, 0, "{routes}");
    let chain = routes["chain"].as_str().unwrap().to_string();
    let prerouting = iptables
        .run(&["-t", "nat", "-S"], &["PREROUTING".to_string()])
        .unwrap();
    let jump = format!("-A PREROUTING -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j {chain}");
    assert_eq!(
        prerouting.lines().filter(|l| *l == jump).count(),
        1,
        "{prerouting}"
    );

    // One instance on Docker's default bridge, one on a VPC's own network.
    let vpc = ec2
        .ok("CreateVpc", &[("CidrBlock", "10.213.0.0/16")])
        .await
        .one("vpcId");
    cleanup.vpcs.push(vpc.clone());
    let subnet = ec2
        .ok(
            "CreateSubnet",
            &[("VpcId", &vpc), ("CidrBlock", "10.213.1.0/24")],
        )
        .await
        .one("subnetId");
    let run = |extra: Vec<(&'static str, String)>| {
        let ec2 = &ec2;
        let ami = ami.to_string();
        async move {
            let mut params = vec![
                ("ImageId", ami),
                ("MinCount", "1".to_string()),
                ("MaxCount", "1".to_string()),
            ];
            params.extend(extra);
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ec2.ok("RunInstances", &params).await.one("instanceId")
        }
    };
    let on_bridge = run(vec![]).await;
    let in_vpc = run(vec![("SubnetId", subnet.clone())]).await;
    let names: Vec<String> = [&on_bridge, &in_vpc]
        .iter()
        .map(|id| format!("localstack-ec2.{id}"))
        .collect();
    cleanup.containers = names.clone();
    let mut ips = Vec::new();
    for id in [&on_bridge, &in_vpc] {
        ec2.wait_state(id, "running", WAIT).await;
        let described = ec2.ok("DescribeInstances", &[("InstanceId.1", id)]).await;
        ips.push(described.one("privateIpAddress"));
    }
    assert!(ips[1].starts_with("10.213.1."), "{ips:?}");

    // Each instance reaches ec2d's IMDS, which knows it by its address: its own id comes back.
    for (name, id) in names.iter().zip([&on_bridge, &in_vpc]) {
        wait_answer(name, id).await;
    }
    let rules = chain_rules(&iptables, &chain).unwrap();
    for ip in &ips {
        assert!(
            rules.contains(&format!("-s {ip}/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports {port}")),
            "{rules}"
        );
    }

    // A container that is not an instance is left to the machine's own network.
    let (_, stranger) = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        TEST_IMAGE,
        "-c",
        "printf 'GET /latest/meta-data/instance-id HTTP/1.0\\r\\n\\r\\n' | nc -w 3 169.254.169.254 80; true",
    ]);
    assert!(
        !stranger.contains(&on_bridge) && !stranger.contains(&in_vpc),
        "{stranger}"
    );

    // Termination removes the instance's rule; the other stays.
    ec2.ok("TerminateInstances", &[("InstanceId.1", &on_bridge)])
        .await;
    ec2.wait_state(&on_bridge, "terminated", WAIT).await;
    let gone = format!("-s {}/32 ", ips[0]);
    let kept = format!("-s {}/32 ", ips[1]);
    wait_rules(&iptables, &chain, |r| {
        r.is_some_and(|r| !r.contains(&gone) && r.contains(&kept))
    })
    .await;

    // A rule removed behind ec2d's back comes back at the next sweep.
    let spec: Vec<String> = format!("{chain} -s {}/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports {port}", ips[1])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    iptables.run(&["-t", "nat", "-D"], &spec).unwrap();
    wait_rules(&iptables, &chain, |r| r.is_some_and(|r| r.contains(&kept))).await;
    wait_answer(&names[1], &in_vpc).await;

    // A graceful stop removes the chain and its jump; the instance keeps running.
    app.shutdown().await.unwrap();
    assert_eq!(chain_rules(&iptables, &chain), None, "chain removed");
    let prerouting = iptables
        .run(&["-t", "nat", "-S"], &["PREROUTING".to_string()])
        .unwrap();
    assert!(!prerouting.contains(&chain), "{prerouting}");
    let answer = ask_metadata(&names[1]);
    assert!(!answer.contains(&in_vpc), "{answer}");
}
