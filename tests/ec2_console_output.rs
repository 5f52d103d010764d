//! GetConsoleOutput through the router: the answer is made from the console copy the reconciler keeps, errors are EC2's, and a request nudges the reconciler.

mod common;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use base64::Engine;
use common::api::{Harness, AMI};
use ec2d::api::Nudge;
use ec2d::config::VmManager;
use ec2d::model::{format_timestamp, ConsoleOutput, ErrorRecord, InstanceId, InstanceState};

/// Remembers every instance the api nudged.
#[derive(Default)]
struct Nudges(Mutex<Vec<String>>);

impl Nudge for Nudges {
    fn instance(&self, instance_id: &InstanceId) {
        self.0.lock().unwrap().push(instance_id.to_string());
    }
}

impl Nudges {
    fn taken(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

async fn console(h: &Harness, extra: &[(&str, &str)]) -> common::api::Reply {
    let mut params: Vec<(&str, &str)> = vec![("Action", "GetConsoleOutput")];
    params.extend_from_slice(extra);
    h.post(&params).await
}

#[tokio::test]
async fn errors_are_ec2s() {
    let h = Harness::docker();
    let id = h.run_one().await;
    assert_eq!(
        console(&h, &[])
            .await
            .err_status(StatusCode::BAD_REQUEST, "MissingParameter"),
        "The request must contain the parameter InstanceId"
    );
    assert_eq!(
        console(&h, &[("InstanceId", "instance-1")])
            .await
            .err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.Malformed"),
        "Invalid id: \"instance-1\" (expecting \"i-...\")"
    );
    assert_eq!(
        console(&h, &[("InstanceId", "i-00000000000000001")])
            .await
            .err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound"),
        "The instance ID 'i-00000000000000001' does not exist"
    );
    assert_eq!(
        console(&h, &[("InstanceId", &id), ("Latest", "maybe")])
            .await
            .err("InvalidParameterValue"),
        "Value (maybe) for parameter Latest is invalid. Expected 'true' or 'false'."
    );
    // Instances live in their region.
    h.post_in(
        "eu-west-1",
        &[("Action", "GetConsoleOutput"), ("InstanceId", &id)],
    )
    .await
    .err("InvalidInstanceID.NotFound");
    // DryRun answers after the checks above and before anything else.
    console(&h, &[("InstanceId", &id), ("DryRun", "true")])
        .await
        .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
}

#[tokio::test]
async fn an_instance_that_printed_nothing_answers_without_output() {
    // Mock mode: no container, so never any output.
    let h = Harness::new();
    let doc = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await
        .ok("RunInstances");
    let id = doc.text_at("instancesSet/item/instanceId").to_string();
    let doc = console(&h, &[("InstanceId", &id), ("Latest", "true")])
        .await
        .ok("GetConsoleOutput");
    assert_eq!(doc.text("instanceId"), id);
    assert_eq!(
        doc.text("timestamp"),
        format_timestamp(h.instance(&id).metadata.creation_timestamp),
        "nothing was ever printed: the output is as old as the instance"
    );
    assert!(doc.opt("output").is_none(), "EC2 leaves output out");
}

#[tokio::test]
async fn the_kept_copy_is_answered_base64_with_its_time() {
    let h = Harness::docker();
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, Some("172.17.0.2"));
    let at = ec2d::model::now();
    let text = "ec2d boot <ok> & \"quoted\"\nmarker-42\n";
    let copy = ConsoleOutput::new("c0ffee", text.as_bytes(), at, None);
    h.store.write_console_output(&id, &copy).unwrap();

    let doc = console(&h, &[("InstanceId", &id)])
        .await
        .ok("GetConsoleOutput");
    assert_eq!(doc.text("instanceId"), id);
    assert_eq!(doc.text("timestamp"), format_timestamp(at));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(doc.text("output"))
        .unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), text);
}

#[tokio::test]
async fn a_request_nudges_the_reconciler_only_for_a_healthy_container() {
    let nudges = Arc::new(Nudges::default());
    let h = Harness::with_nudge(VmManager::Mock, Some("us-east-1"), nudges.clone());
    let doc = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await
        .ok("RunInstances");
    let id = doc.text_at("instancesSet/item/instanceId").to_string();
    let ask = [("InstanceId", id.as_str())];

    console(&h, &ask).await.ok("GetConsoleOutput");
    assert!(
        nudges.taken().is_empty(),
        "no container yet: nothing to read"
    );

    h.observe(&id, InstanceState::Running, Some("172.17.0.2"));
    console(&h, &ask).await.ok("GetConsoleOutput");
    assert_eq!(nudges.taken(), vec![id.clone()]);

    // DryRun asks nothing of anyone.
    console(&h, &[("InstanceId", &id), ("DryRun", "true")])
        .await
        .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    assert!(nudges.taken().is_empty());

    // A failing instance waits out its backoff, however often clients ask.
    let mut status = h.instance(&id).status;
    status.last_error = Some(ErrorRecord::new("engine down", ec2d::model::now()));
    h.store.instances().write_status(&id, &status).unwrap();
    console(&h, &ask).await.ok("GetConsoleOutput");
    assert!(nudges.taken().is_empty());
}
