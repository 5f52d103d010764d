//! IAM instance profiles through `api::router` with `oneshot`: RunInstances' `IamInstanceProfile`, DescribeInstances' `iamInstanceProfile` and its filters, and the association actions with EC2's errors.

mod common;

use common::api::{Harness, Reply};
use ec2d::model::{credentials_for, now, InstanceState, ACCOUNT_ID};

fn arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:instance-profile/{name}")
}

/// The associations DescribeIamInstanceProfileAssociations lists for `params`, as
/// (association id, instance id, profile arn, state).
async fn associations(
    h: &Harness,
    params: &[(&str, &str)],
) -> Vec<(String, String, String, String)> {
    let mut request = vec![("Action", "DescribeIamInstanceProfileAssociations")];
    request.extend_from_slice(params);
    h.post(&request)
        .await
        .ok("DescribeIamInstanceProfileAssociations")
        .items("iamInstanceProfileAssociationSet")
        .iter()
        .map(|a| {
            (
                a.text("associationId").to_string(),
                a.text("instanceId").to_string(),
                a.text_at("iamInstanceProfile/arn").to_string(),
                a.text("state").to_string(),
            )
        })
        .collect()
}

/// AssociateIamInstanceProfile of the profile `name` with `instance`, answered as it comes.
async fn associate(h: &Harness, instance: &str, name: &str) -> Reply {
    h.post(&[
        ("Action", "AssociateIamInstanceProfile"),
        ("InstanceId", instance),
        ("IamInstanceProfile.Name", name),
    ])
    .await
}

/// Launches one instance with the profile `web`; its id.
async fn run_with_web(h: &Harness) -> String {
    h.run(&[("IamInstanceProfile.Name", "web")])
        .await
        .text_at("instancesSet/item/instanceId")
        .to_string()
}

#[tokio::test]
async fn a_launch_with_a_profile_name_or_arn_shows_it_everywhere() {
    let h = Harness::new();
    let run = h.run(&[("IamInstanceProfile.Name", "web")]).await;
    let item = run.path("instancesSet/item");
    assert_eq!(item.text_at("iamInstanceProfile/arn"), arn("web"));
    let profile_id = item.text_at("iamInstanceProfile/id").to_string();
    assert!(
        profile_id.starts_with("AIPA") && profile_id.len() == 21,
        "{profile_id}"
    );
    let id = item.text("instanceId").to_string();
    let shown = h.instance_item(&id).await;
    assert_eq!(shown.text_at("iamInstanceProfile/arn"), arn("web"));
    assert_eq!(shown.text_at("iamInstanceProfile/id"), profile_id);

    let with_path = "arn:aws:iam::123456789012:instance-profile/team/api";
    let other = h
        .run(&[("IamInstanceProfile.Arn", with_path)])
        .await
        .text_at("instancesSet/item/instanceId")
        .to_string();
    let plain = h.run_one().await;
    assert!(!h.instance_item(&plain).await.has("iamInstanceProfile"));
    // The same profile has the same id on every instance; the filters read both.
    assert_eq!(
        h.instance_ids_matching("iam-instance-profile.arn", with_path)
            .await,
        vec![other.clone()]
    );
    assert_eq!(
        h.instance_ids_matching("iam-instance-profile.id", &profile_id)
            .await,
        vec![id.clone()]
    );

    let listed = associations(&h, &[]).await;
    assert_eq!(listed.len(), 2);
    for (assoc, instance, profile, state) in &listed {
        assert!(assoc.starts_with("iip-assoc-"), "{assoc}");
        assert_eq!(state, "associated");
        assert_eq!(
            *profile,
            if *instance == id {
                arn("web")
            } else {
                with_path.to_string()
            }
        );
    }
    let mine = associations(
        &h,
        &[("Filter.1.Name", "instance-id"), ("Filter.1.Value.1", &id)],
    )
    .await;
    assert_eq!(mine.len(), 1);
    assert_eq!(
        associations(&h, &[("AssociationId.1", &mine[0].0)]).await,
        mine
    );
    assert!(associations(
        &h,
        &[
            ("Filter.1.Name", "state"),
            ("Filter.1.Value.1", "disassociated")
        ]
    )
    .await
    .is_empty());
}

#[tokio::test]
async fn malformed_profiles_are_refused_with_ec2s_wording() {
    let h = Harness::new();
    for (k, v, message) in [
        (
            "IamInstanceProfile.Arn",
            "web",
            "Invalid IAM Instance Profile ARN",
        ),
        (
            "IamInstanceProfile.Arn",
            "arn:aws:iam::123456789012:role/web",
            "Invalid IAM Instance Profile ARN",
        ),
        (
            "IamInstanceProfile.Name",
            "a b",
            "Invalid IAM Instance Profile name",
        ),
    ] {
        let e = h
            .post(&[
                ("Action", "RunInstances"),
                ("ImageId", common::api::AMI),
                ("MinCount", "1"),
                ("MaxCount", "1"),
                (k, v),
            ])
            .await
            .err("InvalidParameterValue");
        assert_eq!(e, message);
    }
    let id = h.run_one().await;
    let e = h
        .post(&[
            ("Action", "AssociateIamInstanceProfile"),
            ("InstanceId", &id),
        ])
        .await
        .err("MissingParameter");
    assert!(e.contains("IamInstanceProfile"), "{e}");
}

#[tokio::test]
async fn associate_replace_and_disassociate_follow_ec2() {
    let h = Harness::new();
    let id = h.run_one().await;
    let doc = associate(&h, &id, "web")
        .await
        .ok("AssociateIamInstanceProfile");
    let a = doc.path("iamInstanceProfileAssociation");
    assert_eq!(a.text("instanceId"), id);
    assert_eq!(a.text("state"), "associating");
    assert_eq!(a.text_at("iamInstanceProfile/arn"), arn("web"));
    let first = a.text("associationId").to_string();
    assert_eq!(
        h.instance_item(&id).await.text_at("iamInstanceProfile/arn"),
        arn("web")
    );
    assert_eq!(
        associations(&h, &[]).await,
        vec![(
            first.clone(),
            id.clone(),
            arn("web"),
            "associated".to_string()
        )]
    );
    // An association tells nothing to the reconciler: the instance stays where it was.
    assert_eq!(h.instance(&id).metadata.generation, 1);

    // A second one is refused while the first is in force.
    let e = associate(&h, &id, "db").await.err("IncorrectState");
    assert_eq!(
        e,
        format!("There is an existing association for instance {id}")
    );

    let replaced = h
        .post(&[
            ("Action", "ReplaceIamInstanceProfileAssociation"),
            ("AssociationId", &first),
            ("IamInstanceProfile.Name", "db"),
        ])
        .await
        .ok("ReplaceIamInstanceProfileAssociation");
    let second = replaced
        .text_at("iamInstanceProfileAssociation/associationId")
        .to_string();
    assert_ne!(second, first);
    assert_eq!(
        replaced.text_at("iamInstanceProfileAssociation/state"),
        "associating"
    );
    assert_eq!(
        h.instance_item(&id).await.text_at("iamInstanceProfile/arn"),
        arn("db")
    );
    // The replaced association is gone.
    for (action, key) in [
        ("DisassociateIamInstanceProfile", "AssociationId"),
        ("DescribeIamInstanceProfileAssociations", "AssociationId.1"),
    ] {
        let e = h
            .post(&[("Action", action), (key, &first)])
            .await
            .err("InvalidAssociationID.NotFound");
        assert_eq!(
            e,
            format!("An invalid association-id of '{first}' was given")
        );
    }

    let gone = h
        .post(&[
            ("Action", "DisassociateIamInstanceProfile"),
            ("AssociationId", &second),
        ])
        .await
        .ok("DisassociateIamInstanceProfile");
    assert_eq!(
        gone.text_at("iamInstanceProfileAssociation/state"),
        "disassociating"
    );
    assert_eq!(
        gone.text_at("iamInstanceProfileAssociation/iamInstanceProfile/arn"),
        arn("db")
    );
    assert!(!h.instance_item(&id).await.has("iamInstanceProfile"));
    assert!(associations(&h, &[]).await.is_empty());
    // Now a new association is accepted again.
    associate(&h, &id, "web")
        .await
        .ok("AssociateIamInstanceProfile");
}

#[tokio::test]
async fn a_terminated_instance_holds_no_profile() {
    let h = Harness::new();
    let id = run_with_web(&h).await;
    let association = associations(&h, &[]).await[0].0.clone();
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .ok("TerminateInstances");
    assert!(associations(&h, &[]).await.is_empty());
    h.post(&[
        ("Action", "DisassociateIamInstanceProfile"),
        ("AssociationId", &association),
    ])
    .await
    .err("InvalidAssociationID.NotFound");
    h.observe(&id, InstanceState::Terminated, None);
    let e = associate(&h, &id, "web")
        .await
        .err("IncorrectInstanceState");
    assert!(e.contains(&id), "{e}");
    associate(&h, "i-00000000000000000", "web")
        .await
        .err("InvalidInstanceID.NotFound");
    h.post(&[
        ("Action", "DescribeIamInstanceProfileAssociations"),
        ("AssociationId.1", "assoc-1"),
    ])
    .await
    .err("InvalidAssociationID.Malformed");
}

#[tokio::test]
async fn the_stored_profile_gives_stable_credentials_for_imds() {
    let h = Harness::new();
    let id = run_with_web(&h).await;
    // What IMDS reads: the instance's stored profile, and credentials derived from it.
    let profile = h.instance(&id).spec.iam_instance_profile.expect("stored");
    let at = now();
    let a = credentials_for(&id, &profile, at);
    assert_eq!(
        a,
        credentials_for(&id, &h.instance(&id).spec.iam_instance_profile.unwrap(), at)
    );
    assert_eq!(a.role_name, "web");
    assert!(a.expiration > at && a.last_updated <= at);
}

#[tokio::test]
async fn a_launch_template_carries_the_profile() {
    let h = Harness::new();
    h.post(&[
        ("Action", "CreateLaunchTemplate"),
        ("LaunchTemplateName", "with-role"),
        ("LaunchTemplateData.ImageId", common::api::AMI),
        ("LaunchTemplateData.IamInstanceProfile.Name", "web"),
    ])
    .await
    .ok("CreateLaunchTemplate");
    let run = h
        .post(&[
            ("Action", "RunInstances"),
            ("LaunchTemplate.LaunchTemplateName", "with-role"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await
        .ok("RunInstances");
    assert_eq!(
        run.text_at("instancesSet/item/iamInstanceProfile/arn"),
        arn("web")
    );
}
