//! Protocol tests: the EC2 Query envelope driven through `api::router` with `oneshot` (no
//! socket), a temporary store and no runtime: DryRun, GET and POST, error envelopes, escaping,
//! request ids, body limits, the introspection routes. Per-resource actions are in
//! `ec2_instances.rs`, `ec2_images.rs`, `ec2_regions.rs`, `ec2_network.rs`, `ec2_key_pairs.rs`;
//! the properties over arbitrary requests in `fuzz_actions.rs`.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::api::{Harness, AMI};
use ec2d::model::{DesiredState, InstanceState};

// ---------------------------------------------------------------------------------------------
// DryRun

#[tokio::test]
async fn dry_run_validates_then_refuses_to_write() {
    let h = Harness::docker();
    let reply = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("DryRun", "true"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation"),
        "Request would have succeeded, but DryRun flag is set."
    );
    assert_eq!(h.store.instances().len(), 0);
    // Validation comes first: a dry run with a bad AMI reports the AMI.
    let reply = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12345678"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("DryRun", "true"),
        ])
        .await;
    reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIID.NotFound");

    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    for action in ["StopInstances", "TerminateInstances"] {
        let reply = h
            .post(&[
                ("Action", action),
                ("InstanceId.1", &id),
                ("DryRun", "true"),
            ])
            .await;
        reply.err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    }
    let inst = h.instance(&id);
    assert_eq!(inst.metadata.generation, 1);
    assert_eq!(inst.spec.desired, DesiredState::Running);

    let reply = h
        .post(&[
            ("Action", "CreateImage"),
            ("InstanceId", &id),
            ("Name", "dry"),
            ("DryRun", "true"),
        ])
        .await;
    reply.err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    assert_eq!(h.store.images().len(), 0);
    for action in [
        "DescribeInstances",
        "DescribeImages",
        "DescribeRegions",
        "DescribeAvailabilityZones",
    ] {
        h.post(&[("Action", action), ("DryRun", "true")])
            .await
            .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    }
    h.post(&[("Action", "DescribeInstances"), ("DryRun", "false")])
        .await
        .ok("DescribeInstances");
}

// ---------------------------------------------------------------------------------------------
// Protocol

#[tokio::test]
async fn get_and_post_are_equivalent() {
    let h = Harness::docker();
    let id = h.run_one().await;
    let strip = |body: &str| {
        let start = body.find("<requestId>").unwrap();
        let end = body.find("</requestId>").unwrap();
        format!("{}{}", &body[..start], &body[end..])
    };
    for params in [
        vec![
            ("Action", "DescribeInstances"),
            ("Version", "2016-11-15"),
            ("InstanceId.1", id.as_str()),
        ],
        vec![("Action", "DescribeRegions"), ("Version", "2016-11-15")],
        vec![("Action", "DescribeImages"), ("Owner.1", "self")],
    ] {
        let get = h.get(&params).await;
        let post = h.post(&params).await;
        assert_eq!(get.status, StatusCode::OK);
        assert_eq!(get.content_type, post.content_type);
        assert_eq!(strip(&get.body), strip(&post.body));
    }
    let get_err = h
        .get(&[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", "i-00000000000000001"),
        ])
        .await;
    get_err.err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound");
    // Parameters may also be split between the query string and the body.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/?Action=DescribeRegions")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("RegionName.1=eu-west-1"))
        .unwrap();
    let doc = h.send(req).await.ok("DescribeRegions");
    assert_eq!(doc.items("regionInfo").len(), 1);
}

#[tokio::test]
async fn hostile_tag_values_are_escaped() {
    let h = Harness::docker();
    let hostile = "<script>alert(\"x\")</script> & 'quotes' ]]> \u{1} \r\n";
    let key = "k<&>\"'";
    let doc = h
        .run(&[
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", key),
            ("TagSpecification.1.Tag.1.Value", hostile),
        ])
        .await;
    let tags = doc.path("instancesSet/item").tags();
    // Control characters XML cannot carry are replaced; everything else survives the round trip.
    assert_eq!(tags[key], hostile.replace('\u{1}', "\u{FFFD}"));
    let reply = h.post(&[("Action", "DescribeInstances")]).await;
    assert!(reply
        .body
        .contains("&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; 'quotes' ]]&gt;"));
    assert!(!reply.body.contains("<script>"));
    let tags = reply
        .ok("DescribeInstances")
        .path("reservationSet/item/instancesSet/item")
        .tags();
    assert_eq!(tags[key], hostile.replace('\u{1}', "\u{FFFD}"));

    // Error messages echo client input: escaped as well.
    let reply = h.post(&[("Action", "<Evil&Action>")]).await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidAction"),
        "The action <Evil&Action> is not valid for this web service."
    );
    assert!(reply.body.contains("&lt;Evil&amp;Action&gt;"));
}

#[tokio::test]
async fn action_errors() {
    let h = Harness::docker();
    let reply = h.post(&[("Version", "2016-11-15")]).await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "MissingAction"),
        "The request must contain the parameter Action"
    );
    let reply = h.get(&[]).await;
    reply.err_status(StatusCode::BAD_REQUEST, "MissingAction");
    let reply = h.post(&[("Action", "LaunchRockets")]).await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidAction"),
        "The action LaunchRockets is not valid for this web service."
    );
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/?Action=DescribeRegions")
        .body(Body::empty())
        .unwrap();
    h.send(req)
        .await
        .err_status(StatusCode::METHOD_NOT_ALLOWED, "InvalidRequest");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"Action\":\"DescribeRegions\"}"))
        .unwrap();
    h.send(req)
        .await
        .err_status(StatusCode::BAD_REQUEST, "InvalidRequest");
    // A POST without a body or content type may carry everything in the query string.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/?Action=DescribeRegions")
        .body(Body::empty())
        .unwrap();
    h.send(req).await.ok("DescribeRegions");
    let reply = h
        .post(&[("Action", "DescribeInstances"), ("DryRun", "yes please")])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "Value (yes please) for parameter DryRun is invalid. Expected 'true' or 'false'."
    );
}

#[tokio::test]
async fn request_ids_are_fresh_per_request() {
    let h = Harness::docker();
    let a = h
        .post(&[("Action", "DescribeRegions")])
        .await
        .ok("DescribeRegions")
        .text_at("requestId")
        .to_string();
    let b = h
        .post(&[("Action", "DescribeRegions")])
        .await
        .ok("DescribeRegions")
        .text_at("requestId")
        .to_string();
    assert_ne!(a, b);
}

#[tokio::test]
async fn oversized_bodies_get_an_ec2_error() {
    let h = Harness::docker();
    let big = format!(
        "Action=DescribeRegions&Padding={}",
        "a".repeat(ec2d::api::BODY_LIMIT + 1)
    );
    // With a Content-Length the limit layer refuses before the handler runs...
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let msg = h
        .send(req)
        .await
        .err_status(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge");
    assert!(msg.contains("1048576"), "{msg}");
    // ...and a streamed body without one is cut off while it is read.
    let stream = futures::stream::iter(
        big.into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from_stream(stream))
        .unwrap();
    h.send(req)
        .await
        .err_status(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge");
    // Just under the limit is fine.
    let fits = format!(
        "Action=DescribeRegions&Padding={}",
        "a".repeat(ec2d::api::BODY_LIMIT - 100)
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(fits))
        .unwrap();
    h.send(req).await.ok("DescribeRegions");
}

#[tokio::test]
async fn introspection_routes_are_merged() {
    let h = Harness::docker();
    let req = Request::builder()
        .uri("/_ec2d/health")
        .body(Body::empty())
        .unwrap();
    let reply = h.send(req).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains("\"stub\":true"));
}

#[tokio::test]
async fn localstack_health_says_ec2_is_running_to_get_and_head() {
    let h = Harness::docker();
    let req = Request::builder()
        .uri("/_localstack/health")
        .body(Body::empty())
        .unwrap();
    let reply = h.send(req).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(doc["services"], serde_json::json!({"ec2": "running"}));
    assert_eq!(doc["edition"], "community");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));

    // `curl -I` and health checks that only look at the status line.
    let req = Request::builder()
        .method(Method::HEAD)
        .uri("/_localstack/health")
        .body(Body::empty())
        .unwrap();
    let reply = h.send(req).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "");
}
