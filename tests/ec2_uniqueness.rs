//! Uniqueness under real concurrency, through `api::router` on a multi-threaded runtime: names
//! (security groups), ClientTokens, DeleteSecurityGroup racing RunInstances, one internet
//! gateway per VPC, one route table per subnet, and one stored default VPC. The store decides
//! each race in one sled transaction; no API lock serialises the requests.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::api::{Harness, Reply};

const AMI: &str = "ami-000001";
const ROUNDS: usize = 10;
const CALLS: usize = 8;

/// Runs `CALLS` copies of the request made by `params(i)` at once and returns the replies.
async fn together(h: &Arc<Harness>, params: impl Fn(usize) -> Vec<(String, String)>) -> Vec<Reply> {
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLS));
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let (h, barrier, params) = (h.clone(), barrier.clone(), params(i));
            tokio::spawn(async move {
                let params: Vec<(&str, &str)> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                barrier.wait().await;
                h.post(&params).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for call in calls {
        replies.push(call.await.unwrap());
    }
    replies
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_creates_of_one_group_name_make_one_group() {
    let h = Arc::new(Harness::new());
    let vpc = ec2d::model::region::defaults("us-east-1")
        .vpc
        .vpc_id
        .clone();
    for round in 0..ROUNDS {
        let name = format!("web-{round}");
        let replies = together(&h, |_| {
            owned(&[
                ("Action", "CreateSecurityGroup"),
                ("GroupName", &name),
                ("GroupDescription", "d"),
            ])
        })
        .await;
        let mut created = 0;
        for reply in replies {
            if reply.status == StatusCode::OK {
                reply.ok("CreateSecurityGroup");
                created += 1;
            } else {
                assert_eq!(
                    reply.err("InvalidGroup.Duplicate"),
                    format!("The security group '{name}' already exists for VPC '{vpc}'")
                );
            }
        }
        assert_eq!(created, 1, "round {round}");
    }
    // The rounds' groups and the default group.
    assert_eq!(h.store.security_groups().len(), ROUNDS + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_launches_with_one_client_token_launch_once() {
    let h = Arc::new(Harness::new());
    for round in 0..ROUNDS {
        let token = format!("deploy-{round}");
        let replies = together(&h, |_| {
            owned(&[
                ("Action", "RunInstances"),
                ("ImageId", AMI),
                ("MinCount", "2"),
                ("MaxCount", "2"),
                ("ClientToken", &token),
            ])
        })
        .await;
        let answers: Vec<(String, Vec<String>)> = replies
            .iter()
            .map(|reply| {
                let doc = reply.ok("RunInstances");
                let ids = doc
                    .items("instancesSet")
                    .iter()
                    .map(|i| i.text("instanceId").to_string())
                    .collect();
                (doc.text("reservationId").to_string(), ids)
            })
            .collect();
        assert!(
            answers.iter().all(|a| *a == answers[0]),
            "every call answers the one launch: {answers:?}"
        );
        assert_eq!(answers[0].1.len(), 2);
    }
    assert_eq!(h.store.instances().len(), 2 * ROUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_group_is_never_deleted_while_a_launch_puts_an_instance_in_it() {
    let h = Arc::new(Harness::new());
    for round in 0..100 {
        let group_id = h
            .post(&[
                ("Action", "CreateSecurityGroup"),
                ("GroupName", &format!("g-{round}")),
                ("GroupDescription", "d"),
            ])
            .await
            .ok("CreateSecurityGroup")
            .text("groupId")
            .to_string();
        // Half the calls launch into the group, half delete it.
        let replies = together(&h, |i| {
            if i % 2 == 0 {
                owned(&[
                    ("Action", "RunInstances"),
                    ("ImageId", AMI),
                    ("MinCount", "1"),
                    ("MaxCount", "1"),
                    ("SecurityGroupId.1", &group_id),
                ])
            } else {
                owned(&[("Action", "DeleteSecurityGroup"), ("GroupId", &group_id)])
            }
        })
        .await;
        let (mut launched, mut deleted) = (0, 0);
        for (i, reply) in replies.iter().enumerate() {
            match (i % 2 == 0, reply.status == StatusCode::OK) {
                (true, true) => launched += 1,
                (false, true) => deleted += 1,
                (true, false) => {
                    reply.err("InvalidGroup.NotFound");
                }
                (false, false) => {
                    let code = parse_code(&reply.body);
                    assert!(
                        code == "DependencyViolation" || code == "InvalidGroup.NotFound",
                        "{}",
                        reply.body
                    );
                }
            }
        }
        assert!(deleted <= 1, "round {round}: deleted {deleted} times");
        let stored = h.store.security_groups().get(&group_id).unwrap();
        // Every launched instance is in a group that still exists.
        assert_eq!(stored.is_some(), launched > 0, "round {round}");
        assert_eq!(deleted == 1, launched == 0, "round {round}");
    }
}

fn parse_code(body: &str) -> String {
    let start = body.find("<Code>").expect("an error") + "<Code>".len();
    let end = body[start..].find("</Code>").unwrap() + start;
    body[start..end].to_string()
}

/// How many of the replies succeeded; the others must be `code`.
fn successes(replies: &[Reply], code: &str) -> usize {
    let mut ok = 0;
    for reply in replies {
        if reply.status == StatusCode::OK {
            ok += 1;
        } else {
            reply.err(code);
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_attaches_and_associations_keep_one_gateway_per_vpc_and_one_table_per_subnet() {
    let h = Arc::new(Harness::new());
    for _ in 0..ROUNDS {
        let vpc = h.create_vpc("10.0.0.0/16").await;
        let subnet = h.create_subnet(&vpc, "10.0.1.0/24", None).await;
        let mut gateways = Vec::new();
        let mut tables = Vec::new();
        for _ in 0..CALLS {
            let doc = h
                .post(&[("Action", "CreateInternetGateway")])
                .await
                .ok("CreateInternetGateway");
            gateways.push(doc.text_at("internetGateway/internetGatewayId").to_string());
            let doc = h
                .post(&[("Action", "CreateRouteTable"), ("VpcId", &vpc)])
                .await
                .ok("CreateRouteTable");
            tables.push(doc.text_at("routeTable/routeTableId").to_string());
        }
        let replies = together(&h, |i| {
            owned(&[
                ("Action", "AttachInternetGateway"),
                ("InternetGatewayId", &gateways[i]),
                ("VpcId", &vpc),
            ])
        })
        .await;
        assert_eq!(successes(&replies, "Resource.AlreadyAssociated"), 1);
        let replies = together(&h, |i| {
            owned(&[
                ("Action", "AssociateRouteTable"),
                ("RouteTableId", &tables[i]),
                ("SubnetId", &subnet),
            ])
        })
        .await;
        assert_eq!(successes(&replies, "Resource.AlreadyAssociated"), 1);
        let doc = h
            .post(&[
                ("Action", "DescribeRouteTables"),
                ("Filter.1.Name", "association.subnet-id"),
                ("Filter.1.Value.1", &subnet),
            ])
            .await
            .ok("DescribeRouteTables");
        assert_eq!(doc.items("routeTableSet").len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_first_writes_store_one_default_vpc() {
    let h = Arc::new(Harness::new());
    let vpc = ec2d::model::region::defaults("us-east-1")
        .vpc
        .vpc_id
        .clone();
    let replies = together(&h, |i| {
        let key = format!("k{i}");
        owned(&[
            ("Action", "CreateTags"),
            ("ResourceId.1", &vpc),
            ("Tag.1.Key", &key),
            ("Tag.1.Value", "v"),
        ])
    })
    .await;
    assert_eq!(successes(&replies, "none"), CALLS);
    assert_eq!(h.store.vpcs().len(), 1);
    let doc = h
        .post(&[("Action", "DescribeVpcs"), ("VpcId.1", &vpc)])
        .await
        .ok("DescribeVpcs");
    assert_eq!(doc.path("vpcSet/item").tags().len(), CALLS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_route_table_never_outlives_its_vpc() {
    let h = Arc::new(Harness::new());
    for _ in 0..ROUNDS {
        let vpc = h.create_vpc("10.0.0.0/16").await;
        let replies = together(&h, |i| {
            if i % 2 == 0 {
                owned(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
            } else {
                owned(&[("Action", "CreateRouteTable"), ("VpcId", &vpc)])
            }
        })
        .await;
        let vpc_gone = h.store.vpcs().get(&vpc).unwrap().is_none();
        let tables: Vec<_> = h
            .store
            .route_tables()
            .list()
            .unwrap()
            .objects
            .into_iter()
            .filter(|t| t.spec.vpc_id == vpc)
            .collect();
        if vpc_gone {
            assert!(tables.is_empty(), "tables outlived their VPC: {tables:?}");
        } else {
            let created = replies
                .iter()
                .enumerate()
                .filter(|(i, r)| i % 2 == 1 && r.status == StatusCode::OK)
                .count();
            assert_eq!(
                tables.len(),
                created + 1,
                "the main table and each one created"
            );
        }
    }
}
