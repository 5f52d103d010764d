//! The instance metadata service through `imds::router`, with the caller's address faked as a
//! `ConnectInfo` (the service trusts nothing else), over a store the EC2 API writes: the tree,
//! IMDSv1 and v2, metadata options, tags and Elastic IPs following changes, the identity
//! document, versioned paths; and one real socket, bound on loopback, where each client binds
//! its own 127.0.0.x source address.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use common::api::Harness;
use ec2d::imds::{self, ImdsState};
use ec2d::model::InstanceState;
use tower::ServiceExt;

const RSA_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDbckzN6bEirEqb96qxeJczV+T5EGyRJL76t8JHDJKfsyxt+D/a0BQ4zACfAFWtSBei79Bluxts+UPeEk/BEwJ2FApFxCsc0fTr7TSt/CNGR9VowTEXZZMB9V0V+eXjL/PgjIUEqYJlYXNC6g9+TIFe101IZ+oH5JazdvHE2BZjGRRqNmr9v/rsPsITw+uP0VDrnAAJpf6K0Ujje/NngKVb2uwSD+QNnHn6zdddK0bvNwK2v4/RIdWJaLXmPdFpseUL7uGwrJoyETvx89bKL1GBz7utQL3+9VEG/hCizXH5/mHO/AX4W/eYDaacuD/blbtHjXj2k9egXI5XT/uhDVeP vec@ec2d";

/// One answer of the service.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: String,
    ttl: Option<String>,
}

/// The API harness and a metadata service over its store.
struct World {
    h: Harness,
    imds: axum::Router,
}

impl World {
    fn new() -> Self {
        let h = Harness::docker();
        let imds = imds::router(ImdsState::new(h.store.spec_view()));
        Self { h, imds }
    }

    /// Launches one instance with `extra` parameters, observed running at `ip`.
    async fn launch(&self, ip: &str, extra: &[(&str, &str)]) -> String {
        let id = self
            .h
            .run(extra)
            .await
            .path("instancesSet/item/instanceId")
            .text
            .clone();
        self.h.observe(&id, InstanceState::Running, Some(ip));
        id
    }

    /// `method path` from `peer` with `headers`.
    async fn send(
        &self,
        peer: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::empty()).unwrap();
        let addr = SocketAddr::new(peer.parse().unwrap(), 40000);
        req.extensions_mut().insert(ConnectInfo(addr));
        let resp = self.imds.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ttl = resp
            .headers()
            .get(imds::TTL_HEADER)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
            ttl,
        }
    }

    /// IMDSv1 GET from `peer`.
    async fn get(&self, peer: &str, path: &str) -> Answer {
        self.send(peer, Method::GET, path, &[]).await
    }

    /// A 200's body.
    async fn value(&self, peer: &str, path: &str) -> String {
        let answer = self.get(peer, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {answer:?}");
        answer.body
    }

    /// Each `(path, value)` read by `peer` under `prefix` answers 200 with that value.
    async fn expect(&self, peer: &str, prefix: &str, table: &[(&str, &str)]) {
        for (path, value) in table {
            let path = format!("{prefix}{path}");
            assert_eq!(&self.value(peer, &path).await, value, "{path}");
        }
    }

    /// IMDSv2 token for `peer`.
    async fn token(&self, peer: &str, ttl: &str) -> Answer {
        self.send(
            peer,
            Method::PUT,
            "/latest/api/token",
            &[(imds::TTL_HEADER, ttl)],
        )
        .await
    }

    async fn modify_options(&self, id: &str, option: &str, value: &str) {
        self.h
            .post(&[
                ("Action", "ModifyInstanceMetadataOptions"),
                ("InstanceId", id),
                (option, value),
            ])
            .await
            .ok("ModifyInstanceMetadataOptions");
    }
}

#[tokio::test]
async fn each_instance_reads_its_own_metadata_and_nobody_else_any() {
    let w = World::new();
    let user_data = "#!/bin/sh\necho hello\n";
    let encoded = base64_encode(user_data);
    let a = w
        .launch(
            "172.17.0.2",
            &[
                ("InstanceType", "t3.small"),
                ("UserData", &encoded),
                ("Placement.AvailabilityZone", "us-east-1b"),
            ],
        )
        .await;
    let b = w.launch("172.17.0.3", &[]).await;

    assert_eq!(
        w.value("172.17.0.2", "/latest/meta-data/instance-id").await,
        a
    );
    assert_eq!(
        w.value("172.17.0.3", "/latest/meta-data/instance-id").await,
        b
    );
    assert_eq!(
        w.value("172.17.0.2", "/latest/meta-data/instance-type")
            .await,
        "t3.small"
    );
    assert_eq!(
        w.value(
            "172.17.0.2",
            "/latest/meta-data/placement/availability-zone"
        )
        .await,
        "us-east-1b"
    );
    assert_eq!(
        w.value(
            "172.17.0.2",
            "/latest/meta-data/placement/availability-zone-id"
        )
        .await,
        "use1-az2"
    );
    w.expect(
        "172.17.0.2",
        "",
        &[
            ("/latest/meta-data/placement/region", "us-east-1"),
            ("/latest/meta-data/local-ipv4", "172.17.0.2"),
            (
                "/latest/meta-data/local-hostname",
                "ip-172-17-0-2.ec2.internal",
            ),
            ("/latest/user-data", user_data),
        ],
    )
    .await;
    // No user data: 404, and `user-data` is not listed.
    assert_eq!(
        w.get("172.17.0.3", "/latest/user-data").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.value("172.17.0.3", "/latest/").await,
        "dynamic/\nmeta-data/"
    );
    assert_eq!(
        w.value("172.17.0.2", "/latest").await,
        "dynamic/\nmeta-data/\nuser-data"
    );

    // An instance's refusals carry EC2's page; anyone else's body is empty.
    let missing = w.get("172.17.0.3", "/latest/meta-data/nothing-here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body.contains("<h1>404 - Not Found</h1>"),
        "{}",
        missing.body
    );

    // The host, another container, and IPv6: nothing at all.
    for peer in ["127.0.0.1", "172.17.0.9", "::1"] {
        for path in ["/", "/latest/meta-data/instance-id", "/latest/api/token"] {
            let answer = w.get(peer, path).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{peer} {path}");
            assert_eq!(answer.body, "");
        }
    }
    // An IPv4-mapped IPv6 peer (a dual-stack listener) is its IPv4 address.
    assert_eq!(
        w.value("::ffff:172.17.0.3", "/latest/meta-data/instance-id")
            .await,
        b
    );

    // A terminated instance's address answers nobody.
    w.h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &b)])
        .await
        .ok("TerminateInstances");
    assert_eq!(
        w.get("172.17.0.3", "/latest/meta-data/instance-id")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_meta_data_listing_and_its_categories() {
    let w = World::new();
    w.h.post(&[
        ("Action", "ImportKeyPair"),
        ("KeyName", "laptop"),
        ("PublicKeyMaterial", &base64_encode(RSA_KEY)),
    ])
    .await
    .ok("ImportKeyPair");
    let id = w.launch("10.9.0.5", &[("KeyName", "laptop")]).await;
    let ip = "10.9.0.5";
    let listing = w.value(ip, "/latest/meta-data/").await;
    let entries: Vec<&str> = listing.lines().collect();
    for expected in [
        "ami-id",
        "ami-launch-index",
        "ami-manifest-path",
        "block-device-mapping/",
        "hostname",
        "instance-action",
        "instance-id",
        "instance-life-cycle",
        "instance-type",
        "local-hostname",
        "local-ipv4",
        "mac",
        "network/",
        "placement/",
        "public-hostname",
        "public-ipv4",
        "public-keys/",
        "reservation-id",
        "security-groups",
        "services/",
    ] {
        if expected == "public-hostname" {
            continue; // only with an Elastic IP, below
        }
        assert!(entries.contains(&expected), "{expected} in {entries:?}");
    }
    // No tags unless InstanceMetadataTags is enabled; no iam/ without a profile.
    assert!(!entries.contains(&"tags/"), "{entries:?}");
    assert!(!entries.contains(&"iam/"), "{entries:?}");
    assert_eq!(
        w.get(ip, "/latest/meta-data/iam/info").await.status,
        StatusCode::NOT_FOUND
    );

    let item = w.h.instance_item(&id).await;
    w.expect(
        ip,
        "",
        &[
            ("/latest/meta-data/ami-id", common::api::AMI),
            ("/latest/meta-data/ami-launch-index", "0"),
            (
                "/latest/meta-data/reservation-id",
                w.h.post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
                    .await
                    .ok("DescribeInstances")
                    .text_at("reservationSet/item/reservationId"),
            ),
            ("/latest/meta-data/security-groups", "default"),
            ("/latest/meta-data/instance-action", "none"),
            ("/latest/meta-data/instance-life-cycle", "on-demand"),
            ("/latest/meta-data/block-device-mapping/", "ami\nroot"),
            ("/latest/meta-data/services/domain", "amazonaws.com"),
            ("/latest/meta-data/public-keys/", "0=laptop"),
            ("/latest/meta-data/public-keys/0/", "openssh-key"),
            (
                "/latest/meta-data/public-keys/0/openssh-key",
                &w.h.instance(&id).spec.public_key.unwrap(),
            ),
            ("/latest/meta-data/hostname", item.text("privateDnsName")),
        ],
    )
    .await;

    // The interface under its MAC: the MAC DescribeInstances would show for a VPC instance.
    let mac = w.value(ip, "/latest/meta-data/mac").await;
    assert!(mac.starts_with("02:") && mac.len() == 17, "{mac}");
    assert_eq!(
        w.value(ip, "/latest/meta-data/network/interfaces/macs/")
            .await,
        format!("{mac}/")
    );
    let iface = format!("/latest/meta-data/network/interfaces/macs/{mac}/");
    w.expect(
        ip,
        &iface,
        &[
            ("local-ipv4s", ip),
            ("device-number", "0"),
            ("mac", &mac),
            ("owner-id", ec2d::model::ACCOUNT_ID),
        ],
    )
    .await;
    assert_eq!(
        w.get(ip, "/latest/meta-data/no-such-thing").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.get(ip, "/latest/meta-data/instance-id/deeper")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn instances_in_a_created_vpc_see_their_subnet_and_interface() {
    let w = World::new();
    let vpc = w.h.create_vpc("10.20.0.0/16").await;
    let subnet = w.h.create_subnet(&vpc, "10.20.1.0/24", None).await;
    let id = w.launch("10.20.1.4", &[("SubnetId", &subnet)]).await;
    let item = w.h.instance_item(&id).await;
    let ip = "10.20.1.4";
    let mac = w.value(ip, "/latest/meta-data/mac").await;
    assert_eq!(mac, item.text_at("networkInterfaceSet/item/macAddress"));
    let iface = format!("/latest/meta-data/network/interfaces/macs/{mac}/");
    w.expect(
        ip,
        &iface,
        &[
            (
                "interface-id",
                item.text_at("networkInterfaceSet/item/networkInterfaceId"),
            ),
            ("subnet-id", &subnet),
            ("vpc-id", &vpc),
            ("subnet-ipv4-cidr-block", "10.20.1.0/24"),
            ("vpc-ipv4-cidr-block", "10.20.0.0/16"),
            ("security-group-ids", item.text_at("groupSet/item/groupId")),
        ],
    )
    .await;
}

#[tokio::test]
async fn imdsv2_tokens_are_bound_to_their_instance_and_expire() {
    let w = World::new();
    w.launch("172.17.0.2", &[]).await;
    w.launch("172.17.0.3", &[]).await;
    let a = "172.17.0.2";

    let issued = w.token(a, "21600").await;
    assert_eq!(issued.status, StatusCode::OK);
    assert_eq!(issued.ttl.as_deref(), Some("21600"));
    let token = issued.body;
    assert!(token.len() >= 40, "{token}");
    let get_with = |peer: &'static str, t: String| {
        let w = &w;
        async move {
            w.send(
                peer,
                Method::GET,
                "/latest/meta-data/local-ipv4",
                &[(imds::TOKEN_HEADER, &t)],
            )
            .await
        }
    };
    let ok = get_with(a, token.clone()).await;
    assert_eq!((ok.status, ok.body.as_str()), (StatusCode::OK, a));
    // Another instance's token, a forged one: 401, even though v1 is allowed.
    assert_eq!(
        get_with("172.17.0.3", token.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_with(a, "forged".into()).await.status,
        StatusCode::UNAUTHORIZED
    );

    // TTLs outside 1..=21600, or none: 400.
    for ttl in ["0", "21601", "-1", "soon", ""] {
        assert_eq!(
            w.token(a, ttl).await.status,
            StatusCode::BAD_REQUEST,
            "{ttl:?}"
        );
    }
    assert_eq!(
        w.send(a, Method::PUT, "/latest/api/token", &[])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // Through a proxy: 403. GET of the token path, and PUT elsewhere: 405.
    assert_eq!(
        w.send(
            a,
            Method::PUT,
            "/latest/api/token",
            &[(imds::TTL_HEADER, "60"), ("X-Forwarded-For", "10.0.0.1")],
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        w.get(a, "/latest/api/token").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        w.send(
            a,
            Method::PUT,
            "/latest/meta-data/",
            &[(imds::TTL_HEADER, "60")]
        )
        .await
        .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        w.send(a, Method::POST, "/latest/meta-data/", &[])
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // An expired token: 401.
    let short = w.token(a, "1").await.body;
    assert_eq!(get_with(a, short.clone()).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get_with(a, short).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metadata_options_apply_at_once() {
    let w = World::new();
    let id = w.launch("172.17.0.2", &[]).await;
    let a = "172.17.0.2";
    assert_eq!(
        w.get(a, "/latest/meta-data/instance-id").await.status,
        StatusCode::OK
    );

    w.modify_options(&id, "HttpTokens", "required").await;
    for path in ["/latest/meta-data/instance-id", "/", "/latest/user-data"] {
        assert_eq!(
            w.get(a, path).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let token = w.token(a, "60").await.body;
    let v2 = w
        .send(
            a,
            Method::GET,
            "/latest/meta-data/instance-id",
            &[(imds::TOKEN_HEADER, &token)],
        )
        .await;
    assert_eq!((v2.status, v2.body), (StatusCode::OK, id.clone()));

    // Tags only once InstanceMetadataTags is enabled, and then as they are now.
    w.modify_options(&id, "HttpTokens", "optional").await;
    w.h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "Name"),
        ("Tag.1.Value", "web"),
    ])
    .await
    .ok("CreateTags");
    assert_eq!(
        w.get(a, "/latest/meta-data/tags/instance/Name")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    w.modify_options(&id, "InstanceMetadataTags", "enabled")
        .await;
    assert!(w
        .value(a, "/latest/meta-data/")
        .await
        .lines()
        .any(|l| l == "tags/"));
    // ec2d's own `ec2_vm_manager` tag is the instance's tag too, as DescribeInstances shows.
    assert_eq!(
        w.value(a, "/latest/meta-data/tags/instance").await,
        "Name\nec2_vm_manager"
    );
    assert_eq!(
        w.value(a, "/latest/meta-data/tags/instance/Name").await,
        "web"
    );
    w.h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "Env"),
        ("Tag.1.Value", "prod"),
    ])
    .await
    .ok("CreateTags");
    assert_eq!(
        w.value(a, "/latest/meta-data/tags/instance/").await,
        "Env\nName\nec2_vm_manager"
    );

    // The endpoint off: 403 for everything, tokens included.
    w.modify_options(&id, "HttpEndpoint", "disabled").await;
    assert_eq!(
        w.get(a, "/latest/meta-data/instance-id").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(w.token(a, "60").await.status, StatusCode::FORBIDDEN);
    w.modify_options(&id, "HttpEndpoint", "enabled").await;
    assert_eq!(w.value(a, "/latest/meta-data/instance-id").await, id);
}

#[tokio::test]
async fn an_elastic_ip_shows_as_the_public_address() {
    let w = World::new();
    let id = w.launch("172.17.0.2", &[]).await;
    let a = "172.17.0.2";
    let allocation =
        w.h.post(&[("Action", "AllocateAddress"), ("Domain", "vpc")])
            .await
            .ok("AllocateAddress");
    let public = allocation.text("publicIp").to_string();
    w.h.post(&[
        ("Action", "AssociateAddress"),
        ("AllocationId", allocation.text("allocationId")),
        ("InstanceId", &id),
    ])
    .await
    .ok("AssociateAddress");
    assert_eq!(w.value(a, "/latest/meta-data/public-ipv4").await, public);
    let dns = w.value(a, "/latest/meta-data/public-hostname").await;
    assert_eq!(
        dns,
        format!("ec2-{}.compute-1.amazonaws.com", public.replace('.', "-"))
    );
    assert_eq!(w.h.instance_item(&id).await.text("dnsName"), dns);
    // Still the caller's own metadata: the private address is unchanged.
    assert_eq!(w.value(a, "/latest/meta-data/local-ipv4").await, a);
}

#[tokio::test]
async fn the_identity_document_and_versioned_paths() {
    let w = World::new();
    let id = w
        .launch("172.17.0.2", &[("InstanceType", "m5.large")])
        .await;
    let a = "172.17.0.2";
    let doc = w
        .value(a, "/latest/dynamic/instance-identity/document")
        .await;
    let json: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(json["instanceId"], id.as_str());
    assert_eq!(json["imageId"], common::api::AMI);
    assert_eq!(json["instanceType"], "m5.large");
    assert_eq!(json["privateIp"], a);
    assert_eq!(json["region"], "us-east-1");
    assert_eq!(json["availabilityZone"], "us-east-1a");
    assert_eq!(json["accountId"], ec2d::model::ACCOUNT_ID);
    assert_eq!(json["architecture"], "x86_64");
    assert_eq!(json["version"], "2017-09-30");
    assert!(json["pendingTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        w.value(a, "/latest/dynamic/instance-identity/").await,
        "document\npkcs7\nrsa2048\nsignature"
    );
    let signature = w
        .value(a, "/latest/dynamic/instance-identity/signature")
        .await;
    assert_eq!(signature.len(), 344, "base64 of 256 bytes: {signature}");
    // Signed alike on every read.
    assert_eq!(
        w.value(a, "/latest/dynamic/instance-identity/rsa2048")
            .await,
        signature
    );

    // `/` lists the versions; each answers as latest; an unknown one is 404.
    let versions = w.value(a, "/").await;
    assert!(versions.lines().any(|v| v == "2009-04-04"), "{versions}");
    assert!(versions.lines().any(|v| v == "2021-03-23"), "{versions}");
    assert_eq!(versions.lines().last(), Some("latest"));
    for version in ["2009-04-04", "2021-03-23", "1.0", "latest"] {
        assert_eq!(
            w.value(a, &format!("/{version}/meta-data/instance-id"))
                .await,
            id
        );
        assert_eq!(
            w.value(a, &format!("/{version}/dynamic/instance-identity/document"))
                .await,
            doc
        );
    }
    assert_eq!(
        w.get(a, "/2099-01-01/meta-data/instance-id").await.status,
        StatusCode::NOT_FOUND
    );
}

/// Through a real socket: the peer address is the connection's own, so each client, bound to
/// its 127.0.0.x source, reads its own instance, and the host's 127.0.0.1 reads nothing.
#[tokio::test]
async fn over_a_socket_the_source_address_is_the_caller() {
    let w = World::new();
    let a = w.launch("127.0.0.2", &[]).await;
    let b = w.launch("127.0.0.3", &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(imds::serve(
        listener,
        ImdsState::new(w.h.store.spec_view()),
        async move {
            let _ = stopped.await;
        },
    ));
    let from = |source: &str| {
        reqwest::Client::builder()
            .local_address(source.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let url = format!("http://{addr}/latest/meta-data/instance-id");
    for (source, id) in [("127.0.0.2", &a), ("127.0.0.3", &b)] {
        let resp = from(source).get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(&resp.text().await.unwrap(), id);
    }
    let token = from("127.0.0.2")
        .put(format!("http://{addr}/latest/api/token"))
        .header(imds::TTL_HEADER, "60")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = from("127.0.0.3")
        .get(&url)
        .header(imds::TOKEN_HEADER, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "a token does not travel to another instance"
    );
    let resp = from("127.0.0.1").get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.unwrap(), "");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// ec2d serves its API when the metadata service's address is taken (another ec2d has it):
/// the service is what it goes without, and the app starts and stops cleanly; with the address
/// free, the app's own metadata listener answers (a non-instance: 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_starts_without_the_service_when_its_address_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = ec2d::config::Config::for_tests(dir.path().join("taken"));
    config.imds = true;
    config.imds_listen = taken.local_addr().unwrap();
    let app = ec2d::app::App::spawn(config).await.unwrap();
    let health = reqwest::get(format!("{}/_ec2d/health", app.url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    app.shutdown().await.unwrap();

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let mut config = ec2d::config::Config::for_tests(dir.path().join("free"));
    config.imds = true;
    config.imds_listen = addr;
    let app = ec2d::app::App::spawn(config).await.unwrap();
    let url = format!("http://{addr}/latest/meta-data/instance-id");
    let status = async {
        loop {
            if let Ok(resp) = reqwest::get(&url).await {
                return resp.status();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let status = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("the metadata listener answers");
    assert_eq!(status, 404);
    app.shutdown().await.unwrap();
}
