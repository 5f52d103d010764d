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

#[tokio::test]
async fn opt_in_regions_are_listed_with_all_regions() {
    let h = Harness::docker();
    let names = |doc: &common::api::Node| -> Vec<(String, String)> {
        doc.pairs("regionInfo", "regionName", "optInStatus")
    };
    let enabled = names(
        &h.post(&[("Action", "DescribeRegions")])
            .await
            .ok("DescribeRegions"),
    );
    assert_eq!(enabled.len(), 17, "the default regions only");
    assert!(enabled.iter().all(|(_, s)| s == "opt-in-not-required"));
    let all = names(
        &h.post(&[("Action", "DescribeRegions"), ("AllRegions", "true")])
            .await
            .ok("DescribeRegions"),
    );
    assert_eq!(all.len(), 34);
    for opt_in in [
        "af-south-1",
        "ap-southeast-7",
        "il-central-1",
        "mx-central-1",
        "ca-west-1",
    ] {
        assert!(
            all.contains(&(opt_in.to_string(), "not-opted-in".to_string())),
            "{opt_in}"
        );
    }
    // The caller's own opt-in region is enabled: listed, `opted-in`.
    let doc = h
        .post_in(
            "af-south-1",
            &[
                ("Action", "DescribeRegions"),
                ("Filter.1.Name", "opt-in-status"),
                ("Filter.1.Value.1", "opted-in"),
            ],
        )
        .await
        .ok("DescribeRegions");
    assert_eq!(
        names(&doc),
        vec![("af-south-1".to_string(), "opted-in".to_string())]
    );
    let doc = h
        .post(&[
            ("Action", "DescribeRegions"),
            ("AllRegions", "true"),
            ("Filter.1.Name", "opt-in-status"),
            ("Filter.1.Value.1", "not-opted-in"),
        ])
        .await
        .ok("DescribeRegions");
    assert_eq!(doc.items("regionInfo").len(), 17);
    // A region named is described even when not enabled.
    let doc = h
        .post(&[
            ("Action", "DescribeRegions"),
            ("RegionName.1", "eu-south-2"),
        ])
        .await
        .ok("DescribeRegions");
    assert_eq!(
        names(&doc),
        vec![("eu-south-2".to_string(), "not-opted-in".to_string())]
    );
}

#[tokio::test]
async fn zones_have_aws_ids_and_counts() {
    let h = Harness::docker();
    let zones = |region: &'static str| {
        let h = &h;
        async move {
            h.post_in(region, &[("Action", "DescribeAvailabilityZones")])
                .await
                .ok("DescribeAvailabilityZones")
                .pairs("availabilityZoneInfo", "zoneName", "zoneId")
        }
    };
    let east = zones("us-east-1").await;
    assert_eq!(east.len(), 6);
    assert_eq!(east[5], ("us-east-1f".to_string(), "use1-az6".to_string()));
    assert_eq!(zones("us-west-2").await.len(), 4);
    assert_eq!(
        zones("us-gov-west-1").await[0],
        ("us-gov-west-1a".to_string(), "usgw1-az1".to_string())
    );
    assert_eq!(
        zones("us-gov-east-1").await[1],
        ("us-gov-east-1b".to_string(), "usge1-az2".to_string())
    );
    assert_eq!(
        zones("ca-central-1").await[2],
        ("ca-central-1d".to_string(), "cac1-az4".to_string())
    );
    let doc = h
        .post(&[
            ("Action", "DescribeAvailabilityZones"),
            ("ZoneId.1", "use1-az5"),
        ])
        .await
        .ok("DescribeAvailabilityZones");
    let z = doc.path("availabilityZoneInfo/item");
    assert_eq!(z.text("zoneName"), "us-east-1e");
    assert_eq!(z.text("groupName"), "us-east-1");
    assert_eq!(z.text("zoneType"), "availability-zone");
    // A launch may go to any of them, into that zone's default subnet.
    let doc = h.run(&[("Placement.AvailabilityZone", "us-east-1f")]).await;
    assert_eq!(
        doc.text_at("instancesSet/item/placement/availabilityZone"),
        "us-east-1f"
    );
}
