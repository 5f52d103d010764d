//! Regions and availability zones through `api::router` with `oneshot` (no socket): resources
//! are scoped by the request's SigV4 region; DescribeRegions, DescribeAvailabilityZones.

mod common;

use axum::http::StatusCode;
use common::api::{Harness, AMI};
use ec2d::model::{DesiredState, InstanceState};

// ---------------------------------------------------------------------------------------------
// Regions

#[tokio::test]
async fn resources_are_scoped_per_region() {
    let h = Harness::docker();
    let west = h
        .post_in(
            Some("us-west-2"),
            &[
                ("Action", "RunInstances"),
                ("ImageId", AMI),
                ("MinCount", "1"),
                ("MaxCount", "1"),
            ],
        )
        .await
        .ok("RunInstances");
    let id = west.text_at("instancesSet/item/instanceId").to_string();
    assert_eq!(
        west.text_at("instancesSet/item/placement/availabilityZone"),
        "us-west-2a"
    );
    assert_eq!(h.instance(&id).metadata.namespace, "us-west-2");

    let east = h
        .post(&[("Action", "DescribeInstances")])
        .await
        .ok("DescribeInstances");
    assert!(
        east.items("reservationSet").is_empty(),
        "not visible from us-east-1"
    );
    h.post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
        .await
        .err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound");
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound");
    assert_eq!(h.instance(&id).spec.desired, DesiredState::Running);

    let doc = h
        .post_in(Some("us-west-2"), &[("Action", "DescribeInstances")])
        .await
        .ok("DescribeInstances");
    assert_eq!(doc.items("reservationSet").len(), 1);

    // CreateImage records belong to their region; catalog AMIs are everywhere.
    h.observe(&id, InstanceState::Running, None);
    let ami = h
        .post_in(
            Some("us-west-2"),
            &[
                ("Action", "CreateImage"),
                ("InstanceId", &id),
                ("Name", "west-image"),
            ],
        )
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    let east_images = h
        .post(&[("Action", "DescribeImages")])
        .await
        .ok("DescribeImages");
    let east_ids: Vec<&str> = east_images
        .items("imagesSet")
        .iter()
        .map(|i| i.text_at("imageId"))
        .collect();
    assert_eq!(east_ids, vec![AMI]);
    h.post(&[("Action", "DescribeImages"), ("ImageId.1", &ami)])
        .await
        .err_status(StatusCode::BAD_REQUEST, "InvalidAMIID.NotFound");
    let west_images = h
        .post_in(Some("us-west-2"), &[("Action", "DescribeImages")])
        .await
        .ok("DescribeImages");
    assert_eq!(west_images.items("imagesSet").len(), 2);
    // The same name is free in another region.
    h.observe(&id, InstanceState::Running, None);
    let east_id = h.run_one().await;
    h.observe(&east_id, InstanceState::Running, None);
    h.post(&[
        ("Action", "CreateImage"),
        ("InstanceId", &east_id),
        ("Name", "west-image"),
    ])
    .await
    .ok("CreateImage");
}

#[tokio::test]
async fn describe_regions_and_zones() {
    let h = Harness::docker();
    let doc = h
        .post(&[("Action", "DescribeRegions")])
        .await
        .ok("DescribeRegions");
    let regions = doc.items("regionInfo");
    assert!(regions.len() >= 17);
    let east = regions
        .iter()
        .find(|r| r.text_at("regionName") == "us-east-1")
        .expect("us-east-1 listed");
    assert_eq!(
        east.names(),
        vec!["regionName", "regionEndpoint", "optInStatus"]
    );
    assert_eq!(
        east.text_at("regionEndpoint"),
        "ec2.us-east-1.amazonaws.com"
    );
    assert_eq!(east.text_at("optInStatus"), "opt-in-not-required");

    let doc = h
        .post(&[
            ("Action", "DescribeRegions"),
            ("RegionName.1", "eu-west-1"),
            ("RegionName.2", "ap-south-1"),
        ])
        .await
        .ok("DescribeRegions");
    let names: Vec<&str> = doc
        .items("regionInfo")
        .iter()
        .map(|r| r.text_at("regionName"))
        .collect();
    assert_eq!(names, vec!["ap-south-1", "eu-west-1"]);
    let doc = h
        .post(&[
            ("Action", "DescribeRegions"),
            ("Filter.1.Name", "region-name"),
            ("Filter.1.Value.1", "eu-*"),
        ])
        .await
        .ok("DescribeRegions");
    assert!(doc
        .items("regionInfo")
        .iter()
        .all(|r| r.text_at("regionName").starts_with("eu-")));
    let reply = h
        .post(&[
            ("Action", "DescribeRegions"),
            ("RegionName.1", "mars-north-1"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "Invalid region: [mars-north-1]"
    );

    let doc = h
        .post_in(
            Some("eu-central-1"),
            &[("Action", "DescribeAvailabilityZones")],
        )
        .await
        .ok("DescribeAvailabilityZones");
    let zones = doc.items("availabilityZoneInfo");
    let names: Vec<&str> = zones.iter().map(|z| z.text_at("zoneName")).collect();
    assert_eq!(
        names,
        vec!["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    );
    let z = zones[0];
    assert_eq!(
        z.names(),
        vec![
            "zoneName",
            "zoneState",
            "regionName",
            "messageSet",
            "optInStatus",
            "zoneId",
            "groupName",
            "networkBorderGroup",
            "zoneType"
        ]
    );
    assert_eq!(z.text_at("zoneState"), "available");
    assert_eq!(z.text_at("regionName"), "eu-central-1");
    assert_eq!(z.text_at("zoneId"), "euc1-az1");
    assert_eq!(z.text_at("zoneType"), "availability-zone");
    assert_eq!(z.text_at("networkBorderGroup"), "eu-central-1");

    let doc = h
        .post(&[
            ("Action", "DescribeAvailabilityZones"),
            ("ZoneName.1", "us-east-1b"),
        ])
        .await
        .ok("DescribeAvailabilityZones");
    assert_eq!(doc.items("availabilityZoneInfo").len(), 1);
    let doc = h
        .post(&[
            ("Action", "DescribeAvailabilityZones"),
            ("Filter.1.Name", "zone-name"),
            ("Filter.1.Value.1", "*c"),
        ])
        .await
        .ok("DescribeAvailabilityZones");
    assert_eq!(
        doc.text_at("availabilityZoneInfo/item/zoneName"),
        "us-east-1c"
    );
    let reply = h
        .post(&[
            ("Action", "DescribeAvailabilityZones"),
            ("ZoneName.1", "us-east-1z"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "Invalid availability zone: [us-east-1z]"
    );
}
