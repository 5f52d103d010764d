//! Launch templates through `api::router` (oneshot, temporary store): the seven actions, version semantics, EC2's errors, tags, and RunInstances from a template with its data merged under the request's own parameters.

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use common::api::{Harness, Node, AMI};
use ec2d::api::paging;

// ---------------------------------------------------------------------------------------------
// Helpers

const ACCOUNT_WIDE: &str = "To describe the launch template data for all your launch templates, for \u{2018}--versions\u{2019} specify \u{2018}$Latest\u{2019}, \u{2018}$Default\u{2019}, or both, and omit \u{2018}--launch-template-id\u{2019}, \u{2018}--launch-template-name\u{2019}, and version numbers. To describe the launch template data for a specific launch template, specify \u{2018}--launch-template-id\u{2019} or \u{2018}--launch-template-name\u{2019}, and for \u{2018}--versions\u{2019} specify one or more of the following values: \u{2018}$Latest\u{2019}, \u{2018}$Default\u{2019}, or one or more version numbers.";

impl Harness {
    /// CreateLaunchTemplate `name` with `extra` parameters; returns `<launchTemplate>`.
    async fn create_template(&self, name: &str, extra: &[(&str, &str)]) -> Node {
        let mut params = vec![
            ("Action", "CreateLaunchTemplate"),
            ("LaunchTemplateName", name),
        ];
        params.extend_from_slice(extra);
        self.post(&params)
            .await
            .ok("CreateLaunchTemplate")
            .child("launchTemplate")
            .clone()
    }

    /// CreateLaunchTemplateVersion; returns `<launchTemplateVersion>`.
    async fn create_version(&self, params: &[(&str, &str)]) -> Node {
        let mut all = vec![("Action", "CreateLaunchTemplateVersion")];
        all.extend_from_slice(params);
        self.post(&all)
            .await
            .ok("CreateLaunchTemplateVersion")
            .child("launchTemplateVersion")
            .clone()
    }

    /// DescribeLaunchTemplateVersions; returns the items.
    async fn versions(&self, params: &[(&str, &str)]) -> Vec<Node> {
        let mut all = vec![("Action", "DescribeLaunchTemplateVersions")];
        all.extend_from_slice(params);
        self.post(&all)
            .await
            .ok("DescribeLaunchTemplateVersions")
            .items("launchTemplateVersionSet")
            .into_iter()
            .cloned()
            .collect()
    }

    /// DescribeLaunchTemplates; returns the items.
    async fn templates(&self, params: &[(&str, &str)]) -> Vec<Node> {
        let mut all = vec![("Action", "DescribeLaunchTemplates")];
        all.extend_from_slice(params);
        self.post(&all)
            .await
            .ok("DescribeLaunchTemplates")
            .items("launchTemplates")
            .into_iter()
            .cloned()
            .collect()
    }
}

fn numbers(versions: &[Node]) -> Vec<u64> {
    versions
        .iter()
        .map(|v| v.text("versionNumber").parse().unwrap())
        .collect()
}

fn texts(set: &Node) -> Vec<&str> {
    set.children.iter().map(|i| i.text.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// Create and describe

#[tokio::test]
async fn a_template_is_created_described_and_its_data_rendered_as_ec2_does() {
    let h = Harness::new();
    let user_data = base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\necho hi\n");
    let lt = h
        .create_template(
            "web-servers",
            &[
                ("VersionDescription", "first"),
                ("LaunchTemplateData.ImageId", "ami-12345678"),
                ("LaunchTemplateData.InstanceType", "t3.micro"),
                ("LaunchTemplateData.UserData", &user_data),
                ("LaunchTemplateData.EbsOptimized", "True"),
                (
                    "LaunchTemplateData.SecurityGroupId.1",
                    "sg-0123456789abcdef0",
                ),
                ("LaunchTemplateData.MetadataOptions.HttpTokens", "required"),
                ("LaunchTemplateData.NetworkInterface.1.DeviceIndex", "0"),
                (
                    "LaunchTemplateData.NetworkInterface.1.SecurityGroupId.1",
                    "sg-1",
                ),
                (
                    "LaunchTemplateData.TagSpecification.1.ResourceType",
                    "instance",
                ),
                ("LaunchTemplateData.TagSpecification.1.Tag.1.Key", "Name"),
                ("LaunchTemplateData.TagSpecification.1.Tag.1.Value", "<web>"),
                ("TagSpecification.1.ResourceType", "launch-template"),
                ("TagSpecification.1.Tag.1.Key", "team"),
                ("TagSpecification.1.Tag.1.Value", "platform"),
            ],
        )
        .await;
    let id = lt.text("launchTemplateId").to_string();
    assert!(
        id.len() == 20 && id.starts_with("lt-") && id[3..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(lt.text("launchTemplateName"), "web-servers");
    assert_eq!(
        lt.text("createdBy"),
        "arn:aws:iam::000000000000:user/default_user"
    );
    assert!(lt.text("createTime").ends_with('Z'));
    assert_eq!(lt.text("defaultVersionNumber"), "1");
    assert_eq!(lt.text("latestVersionNumber"), "1");
    assert_eq!(
        lt.tags(),
        BTreeMap::from([("team".into(), "platform".into())])
    );

    // By id, by name, all: the same template.
    for params in [
        vec![("LaunchTemplateId.1", id.as_str())],
        vec![("LaunchTemplateName.1", "web-servers")],
        vec![],
    ] {
        let found = h.templates(&params).await;
        assert_eq!(found.len(), 1, "{params:?}");
        assert_eq!(found[0].text("launchTemplateId"), id);
        assert_eq!(found[0].text("createTime"), lt.text("createTime"));
    }
    // Named twice (by id and by name), listed once.
    let found = h
        .templates(&[
            ("LaunchTemplateId.1", id.as_str()),
            ("LaunchTemplateName.1", "web-servers"),
        ])
        .await;
    assert_eq!(found.len(), 1);

    let [v1] = &h.versions(&[("LaunchTemplateId", &id)]).await[..] else {
        panic!("one version")
    };
    assert_eq!(v1.text("versionNumber"), "1");
    assert_eq!(v1.text("versionDescription"), "first");
    assert_eq!(v1.text("defaultVersion"), "true");
    assert_eq!(v1.text("createdBy"), lt.text("createdBy"));
    let data = v1.child("launchTemplateData");
    assert_eq!(data.text("imageId"), "ami-12345678");
    assert_eq!(data.text("instanceType"), "t3.micro");
    assert_eq!(data.text("userData"), user_data);
    assert_eq!(data.text("ebsOptimized"), "true");
    assert_eq!(
        texts(data.child("securityGroupIdSet")),
        vec!["sg-0123456789abcdef0"]
    );
    assert_eq!(data.text_at("metadataOptions/httpTokens"), "required");
    let interface = data.path("networkInterfaceSet/item");
    assert_eq!(interface.text("deviceIndex"), "0");
    assert_eq!(texts(interface.child("groupSet")), vec!["sg-1"]);
    let spec = data.path("tagSpecificationSet/item");
    assert_eq!(spec.text("resourceType"), "instance");
    assert_eq!(
        spec.tags(),
        BTreeMap::from([("Name".into(), "<web>".into())])
    );
    // The template's own tags are not the instances'.
    assert!(!data.has("tagSet"));
}

#[tokio::test]
async fn creation_errors_are_ec2s() {
    let h = Harness::new();
    let data = ("LaunchTemplateData.ImageId", "ami-12345678");
    h.create_template("web", &[data]).await;
    let post = |params: Vec<(&'static str, &'static str)>| {
        let mut all = vec![("Action", "CreateLaunchTemplate")];
        all.extend(params);
        all
    };
    assert_eq!(
        h.post(&post(vec![("LaunchTemplateName", "web"), data]))
            .await
            .err("InvalidLaunchTemplateName.AlreadyExistsException"),
        "Launch template name already in use."
    );
    // Names are unique per region.
    h.post_in(
        "eu-west-1",
        &post(vec![("LaunchTemplateName", "web"), data]),
    )
    .await
    .ok("CreateLaunchTemplate");
    assert_eq!(
        h.post(&post(vec![("LaunchTemplateName", "no spaces"), data]))
            .await
            .err("InvalidLaunchTemplateName.MalformedException"),
        "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _."
    );
    assert_eq!(
        h.post(&post(vec![("LaunchTemplateName", "other")]))
            .await
            .err("MissingParameter"),
        "No launch template data was provided. Launch template data is required to create a launch template."
    );
    assert_eq!(
        h.post(&post(vec![data])).await.err("MissingParameter"),
        "The request must contain the parameter LaunchTemplateName"
    );
    assert_eq!(
        h.post(&post(vec![
            ("LaunchTemplateName", "other"),
            ("LaunchTemplateData.Rockets", "3"),
        ]))
        .await
        .err("UnknownParameter"),
        "The parameter LaunchTemplateData.Rockets is not recognized"
    );
    assert_eq!(
        h.post(&post(vec![
            ("LaunchTemplateName", "other"),
            data,
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "k"),
        ]))
        .await
        .err("InvalidParameterValue"),
        "The value for the ResourceType member of the TagSpecification request parameter must be \u{2018}launch-template\u{2019}. Verify the ResourceType and try again."
    );
    // Nothing of the refused requests was stored.
    assert_eq!(h.store.launch_templates().len(), 2);
}

#[tokio::test]
async fn list_indexes_are_small_numbers_never_element_names() {
    let h = Harness::docker();
    let create = |name: &'static str, key: String| {
        let h = &h;
        async move {
            h.post(&[
                ("Action", "CreateLaunchTemplate"),
                ("LaunchTemplateName", name),
                ("LaunchTemplateData.ImageId", AMI),
                (&key, "sg-1"),
            ])
            .await
        }
    };
    // Past u64, past the bound, zero: refused in parsing, nothing stored.
    for index in [
        "99999999999999999999",
        "18446744073709551616",
        "1001",
        "0",
        "00",
    ] {
        for key in [
            format!("LaunchTemplateData.SecurityGroupId.{index}"),
            format!("LaunchTemplateData.NetworkInterface.{index}.SecurityGroupId.1"),
            format!("LaunchTemplateData.NetworkInterface.1.SecurityGroupId.{index}"),
        ] {
            assert_eq!(
                create("web", key.clone()).await.err("InvalidParameterValue"),
                format!("The list index {index} in parameter {key} is invalid. Expected an index from 1 to 1000."),
            );
        }
    }
    assert_eq!(h.store.launch_templates().len(), 0);
    // CreateLaunchTemplateVersion parses its data the same way.
    create("web", "LaunchTemplateData.SecurityGroupId.1000".into())
        .await
        .ok("CreateLaunchTemplate");
    h.post(&[
        ("Action", "CreateLaunchTemplateVersion"),
        ("LaunchTemplateName", "web"),
        (
            "LaunchTemplateData.SecurityGroupId.99999999999999999999",
            "sg-2",
        ),
    ])
    .await
    .err("InvalidParameterValue");
    // The bound itself is a list member; every listing stays well-formed XML.
    let [version] = &h.versions(&[("LaunchTemplateVersion.1", "$Latest")]).await[..] else {
        panic!("one version")
    };
    assert_eq!(
        texts(version.path("launchTemplateData/securityGroupIdSet")),
        vec!["sg-1"]
    );
    // RunInstances' own parameters laid over the template's are held to the same rule.
    let launch = |key: &'static str| {
        let h = &h;
        async move {
            h.post(&[
                ("Action", "RunInstances"),
                ("MinCount", "1"),
                ("MaxCount", "1"),
                ("LaunchTemplate.LaunchTemplateName", "web"),
                (key, "sg-3"),
            ])
            .await
        }
    };
    assert_eq!(
        launch("SecurityGroupId.99999999999999999999")
            .await
            .err("InvalidParameterValue"),
        "The list index 99999999999999999999 in parameter SecurityGroupId.99999999999999999999 is invalid. Expected an index from 1 to 1000."
    );
    assert_eq!(h.store.instances().len(), 0);
}

#[tokio::test]
async fn a_client_token_creates_once() {
    let h = Harness::new();
    let params = [
        ("LaunchTemplateData.ImageId", "ami-12345678"),
        ("ClientToken", "tok-1"),
    ];
    let first = h.create_template("web", &params).await;
    let again = h.create_template("web", &params).await;
    assert_eq!(
        again.text("launchTemplateId"),
        first.text("launchTemplateId")
    );
    assert_eq!(h.store.launch_templates().len(), 1);
    h.post(&[
        ("Action", "CreateLaunchTemplate"),
        ("LaunchTemplateName", "other"),
        ("LaunchTemplateData.ImageId", "ami-12345678"),
        ("ClientToken", "tok-1"),
    ])
    .await
    .err("IdempotentParameterMismatch");
    // Versions too: one version per token.
    let v = [
        ("LaunchTemplateName", "web"),
        ("LaunchTemplateData.InstanceType", "t3.small"),
        ("ClientToken", "tok-v"),
    ];
    assert_eq!(h.create_version(&v).await.text("versionNumber"), "2");
    assert_eq!(h.create_version(&v).await.text("versionNumber"), "2");
    assert_eq!(
        numbers(&h.versions(&[("LaunchTemplateName", "web")]).await),
        vec![1, 2]
    );
    // A deleted template's token is free again.
    h.post(&[
        ("Action", "DeleteLaunchTemplate"),
        ("LaunchTemplateName", "web"),
    ])
    .await
    .ok("DeleteLaunchTemplate");
    let fresh = h.create_template("web", &params).await;
    assert_ne!(
        fresh.text("launchTemplateId"),
        first.text("launchTemplateId")
    );
}

// ---------------------------------------------------------------------------------------------
// Versions

#[tokio::test]
async fn versions_latest_default_ranges_filters_and_pages() {
    let h = Harness::new();
    let lt = h
        .create_template(
            "web",
            &[
                ("LaunchTemplateData.ImageId", "ami-11111111"),
                ("LaunchTemplateData.InstanceType", "t3.micro"),
                ("LaunchTemplateData.MetadataOptions.HttpTokens", "required"),
                (
                    "LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit",
                    "2",
                ),
                ("LaunchTemplateData.SecurityGroupId.1", "sg-a"),
                ("LaunchTemplateData.SecurityGroupId.2", "sg-b"),
            ],
        )
        .await;
    let id = lt.text("launchTemplateId").to_string();
    // Version 2 from nothing: only what it names.
    let v2 = h
        .create_version(&[
            ("LaunchTemplateId", &id),
            ("VersionDescription", "bare"),
            ("LaunchTemplateData.ImageId", "ami-22222222"),
        ])
        .await;
    assert_eq!(v2.text("versionNumber"), "2");
    assert_eq!(v2.text("defaultVersion"), "false");
    assert_eq!(v2.child("launchTemplateData").names(), vec!["imageId"]);
    // Version 3 from version 1: its data with the new parameters laid over it.
    let v3 = h
        .create_version(&[
            ("LaunchTemplateName", "web"),
            ("SourceVersion", "1"),
            ("LaunchTemplateData.InstanceType", "t3.small"),
            (
                "LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit",
                "3",
            ),
            ("LaunchTemplateData.SecurityGroupId.1", "sg-c"),
        ])
        .await;
    let data = v3.child("launchTemplateData");
    assert_eq!(data.text("imageId"), "ami-11111111");
    assert_eq!(data.text("instanceType"), "t3.small");
    assert_eq!(data.text_at("metadataOptions/httpTokens"), "required");
    assert_eq!(data.text_at("metadataOptions/httpPutResponseHopLimit"), "3");
    assert_eq!(texts(data.child("securityGroupIdSet")), vec!["sg-c"]);

    let by = |v: &'static str| {
        [
            ("LaunchTemplateName", "web"),
            ("LaunchTemplateVersion.1", v),
        ]
    };
    assert_eq!(numbers(&h.versions(&by("$Latest")).await), vec![3]);
    assert_eq!(numbers(&h.versions(&by("$Default")).await), vec![1]);
    assert_eq!(numbers(&h.versions(&by("2")).await), vec![2]);
    let picked = h
        .versions(&[
            ("LaunchTemplateId", &id),
            ("LaunchTemplateVersion.1", "3"),
            ("LaunchTemplateVersion.2", "$Latest"),
            ("LaunchTemplateVersion.3", "1"),
        ])
        .await;
    assert_eq!(numbers(&picked), vec![1, 3], "each once, in order");
    let ranged = h
        .versions(&[
            ("LaunchTemplateId", &id),
            ("MinVersion", "2"),
            ("MaxVersion", "3"),
        ])
        .await;
    assert_eq!(numbers(&ranged), vec![2, 3]);
    assert_eq!(
        numbers(
            &h.versions(&[("LaunchTemplateId", &id), ("MaxVersion", "1")])
                .await
        ),
        vec![1]
    );

    // Filters.
    let filtered = |name: &'static str, value: &'static str| {
        [
            ("LaunchTemplateName", "web"),
            ("Filter.1.Name", name),
            ("Filter.1.Value.1", value),
        ]
    };
    assert_eq!(
        numbers(&h.versions(&filtered("is-default-version", "true")).await),
        vec![1]
    );
    assert_eq!(
        numbers(&h.versions(&filtered("image-id", "ami-1*")).await),
        vec![1, 3]
    );
    assert_eq!(
        numbers(&h.versions(&filtered("instance-type", "t3.small")).await),
        vec![3]
    );
    assert_eq!(
        numbers(&h.versions(&filtered("http-tokens", "required")).await),
        vec![1, 3]
    );
    h.post(&[
        ("Action", "DescribeLaunchTemplateVersions"),
        ("LaunchTemplateName", "web"),
        ("Filter.1.Name", "flavour"),
        ("Filter.1.Value.1", "x"),
    ])
    .await
    .err("InvalidParameterValue");

    // Pages of one, to the end.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = vec![
            ("Action", "DescribeLaunchTemplateVersions"),
            ("LaunchTemplateName", "web"),
            ("MaxResults", "1"),
        ];
        if let Some(t) = &token {
            params.push(("NextToken", t));
        }
        let doc = h.post(&params).await.ok("DescribeLaunchTemplateVersions");
        seen.extend(numbers(
            &doc.items("launchTemplateVersionSet")
                .into_iter()
                .cloned()
                .collect::<Vec<_>>(),
        ));
        match doc.opt("nextToken") {
            Some(next) => token = Some(next.text.clone()),
            None => break,
        }
    }
    assert_eq!(seen, vec![1, 2, 3]);

    // Every template of the region: its latest and default versions (once when they agree).
    h.create_template("dbs", &[("LaunchTemplateData.ImageId", "ami-33333333")])
        .await;
    let all = h
        .versions(&[
            ("LaunchTemplateVersion.1", "$Latest"),
            ("LaunchTemplateVersion.2", "$Default"),
        ])
        .await;
    let mut got: Vec<(String, u64)> = all
        .iter()
        .map(|v| {
            (
                v.text("launchTemplateName").to_string(),
                v.text("versionNumber").parse().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("dbs".into(), 1), ("web".into(), 1), ("web".into(), 3)]
    );
    // Nothing of another region.
    let doc = h
        .post_in(
            "eu-west-1",
            &[
                ("Action", "DescribeLaunchTemplateVersions"),
                ("LaunchTemplateVersion.1", "$Latest"),
            ],
        )
        .await
        .ok("DescribeLaunchTemplateVersions");
    assert!(doc.items("launchTemplateVersionSet").is_empty());
}

/// `http-protocol-ipv4` ("whether the IPv4 endpoint for the instance metadata service is
/// enabled"): launch template data has no such member, the endpoint serves IPv4 whenever the
/// metadata service is on, so a version reads `disabled` only when its `HttpEndpoint` is.
#[tokio::test]
async fn the_ipv4_metadata_filter_follows_the_http_endpoint() {
    let h = Harness::new();
    h.create_template("web", &[("LaunchTemplateData.ImageId", "ami-11111111")])
        .await;
    for endpoint in ["enabled", "disabled"] {
        h.create_version(&[
            ("LaunchTemplateName", "web"),
            ("LaunchTemplateData.MetadataOptions.HttpEndpoint", endpoint),
        ])
        .await;
    }
    h.create_version(&[
        ("LaunchTemplateName", "web"),
        ("LaunchTemplateData.MetadataOptions.HttpTokens", "required"),
    ])
    .await;
    let filtered = |value: &'static str| {
        [
            ("LaunchTemplateName", "web"),
            ("Filter.1.Name", "http-protocol-ipv4"),
            ("Filter.1.Value.1", value),
        ]
    };
    assert_eq!(
        numbers(&h.versions(&filtered("enabled")).await),
        vec![1, 2, 4]
    );
    assert_eq!(numbers(&h.versions(&filtered("disabled")).await), vec![3]);
    assert_eq!(numbers(&h.versions(&filtered("dis*")).await), vec![3]);
    // Account-wide too.
    assert_eq!(
        numbers(
            &h.versions(&[
                ("LaunchTemplateVersion.1", "$Latest"),
                ("Filter.1.Name", "http-protocol-ipv4"),
                ("Filter.1.Value.1", "enabled"),
            ])
            .await
        ),
        vec![4]
    );
}

#[tokio::test]
async fn version_errors_are_ec2s() {
    let h = Harness::new();
    let lt = h
        .create_template("web", &[("LaunchTemplateData.ImageId", "ami-12345678")])
        .await;
    let id = lt.text("launchTemplateId").to_string();
    let describe = |extra: Vec<(&'static str, String)>| {
        let mut params = vec![("Action", "DescribeLaunchTemplateVersions".to_string())];
        params.extend(extra);
        params
    };
    let post = |params: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let borrowed: Vec<(&str, &str)> =
                params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.post(&borrowed).await
        }
    };
    assert_eq!(
        post(describe(vec![
            ("LaunchTemplateName", "web".into()),
            ("LaunchTemplateVersion.1", "3".into()),
        ]))
        .await
        .err("InvalidLaunchTemplateId.VersionNotFound"),
        format!("Could not find the specified version 3 for the launch template with ID {id}.")
    );
    assert_eq!(
        post(describe(vec![("LaunchTemplateName", "nope".into())]))
            .await
            .err("InvalidLaunchTemplateName.NotFoundException"),
        "The specified launch template, with template name nope, does not exist."
    );
    assert_eq!(
        post(describe(vec![(
            "LaunchTemplateId",
            "lt-07ff4bb0369cd679c".into()
        )]))
        .await
        .err("InvalidLaunchTemplateId.NotFound"),
        "The specified launch template, with template ID lt-07ff4bb0369cd679c, does not exist."
    );
    assert_eq!(
        post(describe(vec![("LaunchTemplateId", "lt-nope".into())]))
            .await
            .err("InvalidLaunchTemplateId.Malformed"),
        "Invalid id: \"lt-nope\" (expecting \"lt-...\")"
    );
    assert_eq!(
        post(describe(vec![])).await.err("MissingParameter"),
        ACCOUNT_WIDE
    );
    assert_eq!(
        post(describe(vec![("LaunchTemplateVersion.1", "1".into())]))
            .await
            .err("InvalidParameterValue"),
        ACCOUNT_WIDE
    );
    // DescribeLaunchTemplates words a missing name for the whole list.
    assert_eq!(
        h.post(&[
            ("Action", "DescribeLaunchTemplates"),
            ("LaunchTemplateName.1", "web"),
            ("LaunchTemplateName.2", "nope"),
        ])
        .await
        .err("InvalidLaunchTemplateName.NotFoundException"),
        "At least one of the launch templates specified in the request does not exist."
    );
    // A source version that does not exist.
    h.post(&[
        ("Action", "CreateLaunchTemplateVersion"),
        ("LaunchTemplateId", &id),
        ("SourceVersion", "9"),
    ])
    .await
    .err("InvalidLaunchTemplateId.VersionNotFound");
    assert_eq!(
        numbers(&h.versions(&[("LaunchTemplateId", &id)]).await),
        vec![1]
    );
}

#[tokio::test]
async fn the_default_version_moves_and_cannot_be_deleted() {
    let h = Harness::new();
    let lt = h
        .create_template("web", &[("LaunchTemplateData.ImageId", "ami-12345678")])
        .await;
    let id = lt.text("launchTemplateId").to_string();
    for _ in 0..3 {
        h.create_version(&[
            ("LaunchTemplateName", "web"),
            ("SourceVersion", "$Latest"),
            ("LaunchTemplateData.InstanceType", "t3.small"),
        ])
        .await;
    }
    let doc = h
        .post(&[
            ("Action", "ModifyLaunchTemplate"),
            ("LaunchTemplateId", &id),
            ("SetDefaultVersion", "2"),
        ])
        .await
        .ok("ModifyLaunchTemplate");
    assert_eq!(doc.text_at("launchTemplate/defaultVersionNumber"), "2");
    assert_eq!(doc.text_at("launchTemplate/latestVersionNumber"), "4");
    let listed = h.versions(&[("LaunchTemplateId", &id)]).await;
    let defaults: Vec<&str> = listed.iter().map(|v| v.text("defaultVersion")).collect();
    assert_eq!(defaults, vec!["false", "true", "false", "false"]);
    assert_eq!(
        h.post(&[
            ("Action", "ModifyLaunchTemplate"),
            ("LaunchTemplateName", "web"),
            ("SetDefaultVersion", "9"),
        ])
        .await
        .err("InvalidLaunchTemplateId.VersionNotFound"),
        "The launch template version 9 is not found for the specified launch template."
    );
    assert_eq!(
        h.post(&[
            ("Action", "ModifyLaunchTemplate"),
            ("LaunchTemplateName", "web"),
            ("LaunchTemplateId", &id),
            ("SetDefaultVersion", "1"),
        ])
        .await
        .err("InvalidParameterCombination"),
        "Either provide launch template ID or launch template name to modify the template."
    );

    // Delete 1 and 4 (fine), 2 (the default) and 9 (never was).
    let doc = h
        .post(&[
            ("Action", "DeleteLaunchTemplateVersions"),
            ("LaunchTemplateName", "web"),
            ("LaunchTemplateVersion.1", "1"),
            ("LaunchTemplateVersion.2", "2"),
            ("LaunchTemplateVersion.3", "9"),
            ("LaunchTemplateVersion.4", "4"),
        ])
        .await
        .ok("DeleteLaunchTemplateVersions");
    let deleted = doc.pairs(
        "successfullyDeletedLaunchTemplateVersionSet",
        "launchTemplateId",
        "versionNumber",
    );
    assert_eq!(
        deleted,
        vec![(id.clone(), "1".into()), (id.clone(), "4".into())]
    );
    let refused: Vec<(String, String, String)> = doc
        .items("unsuccessfullyDeletedLaunchTemplateVersionSet")
        .iter()
        .map(|i| {
            assert_eq!(i.text("launchTemplateName"), "web");
            (
                i.text("versionNumber").to_string(),
                i.text_at("responseError/code").to_string(),
                i.text_at("responseError/message").to_string(),
            )
        })
        .collect();
    assert_eq!(refused[0].0, "2");
    assert_eq!(refused[0].1, "unexpectedError");
    assert!(refused[0].2.contains("default version"), "{}", refused[0].2);
    assert_eq!(
        refused[1],
        (
            "9".into(),
            "launchTemplateVersionDoesNotExist".into(),
            "The specified launch template version does not exist.".into()
        )
    );
    // What is left: 2 and 3; $Latest is 3 now, and the next version is 5, never a reused 4.
    assert_eq!(
        numbers(&h.versions(&[("LaunchTemplateId", &id)]).await),
        vec![2, 3]
    );
    let found = h.templates(&[("LaunchTemplateId.1", &id)]).await;
    assert_eq!(found[0].text("latestVersionNumber"), "3");
    let next = h
        .create_version(&[("LaunchTemplateId", &id), ("SourceVersion", "$Default")])
        .await;
    assert_eq!(next.text("versionNumber"), "5");
    assert_eq!(
        next.text_at("launchTemplateData/instanceType"),
        "t3.small",
        "a copy of the default version"
    );
}

#[tokio::test]
async fn a_deleted_template_frees_its_name() {
    let h = Harness::new();
    let lt = h
        .create_template("web", &[("LaunchTemplateData.ImageId", "ami-12345678")])
        .await;
    let id = lt.text("launchTemplateId").to_string();
    let doc = h
        .post(&[
            ("Action", "DeleteLaunchTemplate"),
            ("LaunchTemplateId", &id),
        ])
        .await
        .ok("DeleteLaunchTemplate");
    assert_eq!(doc.text_at("launchTemplate/launchTemplateName"), "web");
    assert_eq!(
        h.post(&[
            ("Action", "DeleteLaunchTemplate"),
            ("LaunchTemplateId", &id)
        ])
        .await
        .err("InvalidLaunchTemplateId.NotFound"),
        format!("The specified launch template, with template ID {id}, does not exist.")
    );
    h.post(&[
        ("Action", "DeleteLaunchTemplate"),
        ("LaunchTemplateName", "web"),
    ])
    .await
    .err("InvalidLaunchTemplateName.NotFoundException");
    assert_eq!(
        h.post(&[("Action", "DeleteLaunchTemplate")])
            .await
            .err("MissingParameter"),
        "The request must contain the parameter launch template ID or launch template name"
    );
    assert!(h.templates(&[]).await.is_empty());
    h.create_template("web", &[("LaunchTemplateData.ImageId", "ami-12345678")])
        .await;
}

// ---------------------------------------------------------------------------------------------
// Tags and filters

#[tokio::test]
async fn templates_take_tags_and_filters() {
    let h = Harness::new();
    let web = h
        .create_template("web", &[("LaunchTemplateData.ImageId", "ami-12345678")])
        .await;
    let db = h
        .create_template("dbs", &[("LaunchTemplateData.ImageId", "ami-12345678")])
        .await;
    let web_id = web.text("launchTemplateId").to_string();
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &web_id),
        ("Tag.1.Key", "team"),
        ("Tag.1.Value", "blue"),
    ])
    .await
    .ok("CreateTags");
    let doc = h
        .post(&[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-type"),
            ("Filter.1.Value.1", "launch-template"),
        ])
        .await
        .ok("DescribeTags");
    assert_eq!(
        doc.pairs("tagSet", "resourceId", "key"),
        vec![(web_id.clone(), "team".into())]
    );
    let named = |found: Vec<Node>| -> Vec<String> {
        found
            .iter()
            .map(|t| t.text("launchTemplateName").to_string())
            .collect()
    };
    let filter = |name: &'static str, value: &'static str| {
        [("Filter.1.Name", name), ("Filter.1.Value.1", value)]
    };
    assert_eq!(
        named(h.templates(&filter("tag:team", "blue")).await),
        vec!["web"]
    );
    assert_eq!(
        named(h.templates(&filter("tag-key", "team")).await),
        vec!["web"]
    );
    assert_eq!(
        named(h.templates(&filter("launch-template-name", "d*")).await),
        vec!["dbs"]
    );
    let created = db.text("createTime").to_string();
    let by_time = h
        .templates(&[
            ("Filter.1.Name", "create-time"),
            ("Filter.1.Value.1", &created),
        ])
        .await;
    assert!(named(by_time).contains(&"dbs".to_string()));
    h.post(&[
        ("Action", "DescribeLaunchTemplates"),
        ("Filter.1.Name", "image-id"),
        ("Filter.1.Value.1", "x"),
    ])
    .await
    .err("InvalidParameterValue");
    // Pages of 1 to 200.
    let doc = h
        .post(&[("Action", "DescribeLaunchTemplates"), ("MaxResults", "1")])
        .await
        .ok("DescribeLaunchTemplates");
    assert_eq!(doc.items("launchTemplates").len(), 1);
    let token = doc.text("nextToken").to_string();
    let doc = h
        .post(&[
            ("Action", "DescribeLaunchTemplates"),
            ("MaxResults", "1"),
            ("NextToken", &token),
        ])
        .await
        .ok("DescribeLaunchTemplates");
    assert_eq!(doc.items("launchTemplates").len(), 1);
    assert!(!doc.has("nextToken"));
    assert_eq!(
        h.post(&[("Action", "DescribeLaunchTemplates"), ("MaxResults", "201")])
            .await
            .err("InvalidParameterValue"),
        "Value ( 201 ) for parameter maxResults is invalid. Expecting a value between 1 and 200."
    );
    h.post(&[
        ("Action", "DescribeLaunchTemplates"),
        ("NextToken", &paging::token("bogus")),
    ])
    .await
    .err("InvalidNextToken");
    // Tags of a template that does not exist.
    assert_eq!(
        h.post(&[
            ("Action", "CreateTags"),
            ("ResourceId.1", "lt-0123456789abcdef0"),
            ("Tag.1.Key", "k"),
        ])
        .await
        .err("InvalidLaunchTemplateId.NotFound"),
        "The specified launch template, with template ID lt-0123456789abcdef0, does not exist."
    );
    h.post(&[("Action", "DeleteTags"), ("ResourceId.1", &web_id)])
        .await
        .ok("DeleteTags");
    assert!(h.templates(&[("LaunchTemplateId.1", &web_id)]).await[0]
        .opt("tagSet")
        .is_none());
}

// ---------------------------------------------------------------------------------------------
// RunInstances from a template

#[tokio::test]
async fn run_instances_merges_the_template_under_its_own_parameters() {
    let h = Harness::docker();
    let user_data =
        base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\necho from-template\n");
    let lt = h
        .create_template(
            "web",
            &[
                ("LaunchTemplateData.ImageId", AMI),
                ("LaunchTemplateData.InstanceType", "t3.micro"),
                ("LaunchTemplateData.UserData", &user_data),
                (
                    "LaunchTemplateData.InstanceInitiatedShutdownBehavior",
                    "terminate",
                ),
                (
                    "LaunchTemplateData.TagSpecification.1.ResourceType",
                    "instance",
                ),
                ("LaunchTemplateData.TagSpecification.1.Tag.1.Key", "Name"),
                ("LaunchTemplateData.TagSpecification.1.Tag.1.Value", "web"),
                ("LaunchTemplateData.TagSpecification.1.Tag.2.Key", "Owner"),
                ("LaunchTemplateData.TagSpecification.1.Tag.2.Value", "TeamB"),
                (
                    "LaunchTemplateData.TagSpecification.2.ResourceType",
                    "volume",
                ),
                ("LaunchTemplateData.TagSpecification.2.Tag.1.Key", "v"),
                ("LaunchTemplateData.InstanceRequirements.VCpuCount.Min", "2"),
            ],
        )
        .await;
    let id = lt.text("launchTemplateId").to_string();
    h.create_version(&[
        ("LaunchTemplateId", &id),
        ("SourceVersion", "1"),
        ("LaunchTemplateData.InstanceType", "t3.small"),
    ])
    .await;

    // By id, $Latest, with the request's own type and an extra tag over the template's.
    let doc = h
        .run(&[
            ("ImageId", ""),
            ("LaunchTemplate.LaunchTemplateId", &id),
            ("LaunchTemplate.Version", "$Latest"),
            ("InstanceType", "t3.nano"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Owner"),
            ("TagSpecification.1.Tag.1.Value", "TeamA"),
        ])
        .await;
    let item = doc.path("instancesSet/item");
    assert_eq!(item.text("imageId"), AMI);
    assert_eq!(item.text("instanceType"), "t3.nano");
    let instance = h.instance(item.text("instanceId"));
    assert_eq!(instance.spec.user_data.as_deref(), Some(user_data.as_str()));
    assert_eq!(
        instance.spec.shutdown_behavior,
        ec2d::model::ShutdownBehavior::Terminate
    );
    assert_eq!(
        instance.spec.tags,
        BTreeMap::from([
            ("Name".to_string(), "web".to_string()),
            ("Owner".to_string(), "TeamA".to_string()),
            ("aws:ec2launchtemplate:id".to_string(), id.clone()),
            ("aws:ec2launchtemplate:version".to_string(), "2".to_string()),
            ("ec2_vm_manager".to_string(), "docker".to_string()),
        ])
    );

    // By name, no version: the default (1), all from the template.
    let doc = h
        .run(&[
            ("ImageId", ""),
            ("LaunchTemplate.LaunchTemplateName", "web"),
        ])
        .await;
    let item = doc.path("instancesSet/item");
    assert_eq!(item.text("instanceType"), "t3.micro");
    let tags = item.tags();
    assert_eq!(tags["aws:ec2launchtemplate:version"], "1");
    assert_eq!(tags["Owner"], "TeamB");
    let from_default = item.text("instanceId").to_string();

    // Terraform's aws_instance read: DescribeTags by resource and key, then the template.
    let doc = h
        .post(&[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-id"),
            ("Filter.1.Value.1", &from_default),
            ("Filter.2.Name", "key"),
            ("Filter.2.Value.1", "aws:ec2launchtemplate:id"),
        ])
        .await
        .ok("DescribeTags");
    assert_eq!(
        doc.pairs("tagSet", "key", "value"),
        vec![("aws:ec2launchtemplate:id".to_string(), id.clone())]
    );
    assert_eq!(h.templates(&[("LaunchTemplateId.1", &id)]).await.len(), 1);
    let [version] = &h
        .versions(&[("LaunchTemplateId", &id), ("LaunchTemplateVersion.1", "1")])
        .await[..]
    else {
        panic!("one version")
    };
    assert_eq!(version.text("defaultVersion"), "true");
    // And DescribeInstances' tag filter finds the instances of the template.
    let doc = h
        .post(&[
            ("Action", "DescribeInstances"),
            ("Filter.1.Name", "tag:aws:ec2launchtemplate:id"),
            ("Filter.1.Value.1", &id),
        ])
        .await
        .ok("DescribeInstances");
    assert_eq!(doc.items("reservationSet").len(), 2);
}

#[tokio::test]
async fn a_launch_from_a_template_fails_as_ec2_says() {
    let h = Harness::docker();
    let lt = h
        .create_template("bare", &[("LaunchTemplateData.InstanceType", "t3.micro")])
        .await;
    let id = lt.text("launchTemplateId").to_string();
    let launch = |extra: Vec<(&'static str, String)>| {
        let mut params = vec![
            ("Action", "RunInstances".to_string()),
            ("MinCount", "1".to_string()),
            ("MaxCount", "1".to_string()),
        ];
        params.extend(extra);
        params
    };
    let post = |params: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let borrowed: Vec<(&str, &str)> =
                params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.post(&borrowed).await
        }
    };
    // No AMI in the template nor the request.
    assert_eq!(
        post(launch(vec![(
            "LaunchTemplate.LaunchTemplateId",
            id.clone()
        )]))
        .await
        .err("MissingParameter"),
        "The request must contain the parameter ImageId"
    );
    // The request supplies it.
    let ok = post(launch(vec![
        ("LaunchTemplate.LaunchTemplateId", id.clone()),
        ("ImageId", AMI.to_string()),
    ]))
    .await
    .ok("RunInstances");
    assert_eq!(ok.text_at("instancesSet/item/instanceType"), "t3.micro");
    post(launch(vec![
        ("LaunchTemplate.LaunchTemplateId", id.clone()),
        ("LaunchTemplate.Version", "2".to_string()),
        ("ImageId", AMI.to_string()),
    ]))
    .await
    .err("InvalidLaunchTemplateId.VersionNotFound");
    post(launch(vec![(
        "LaunchTemplate.LaunchTemplateName",
        "nope".to_string(),
    )]))
    .await
    .err("InvalidLaunchTemplateName.NotFoundException");
    post(launch(vec![(
        "LaunchTemplate.LaunchTemplateId",
        "lt-0123456789abcdef0".to_string(),
    )]))
    .await
    .err("InvalidLaunchTemplateId.NotFound");
    post(launch(vec![(
        "LaunchTemplate.LaunchTemplateId",
        "lt-zz".to_string(),
    )]))
    .await
    .err("InvalidLaunchTemplateId.Malformed");
    // A template's value RunInstances refuses is refused at launch, in RunInstances' words.
    h.create_version(&[
        ("LaunchTemplateId", &id),
        ("LaunchTemplateData.ImageId", AMI),
        ("LaunchTemplateData.InstanceType", "t3.mega"),
    ])
    .await;
    assert_eq!(
        post(launch(vec![
            ("LaunchTemplate.LaunchTemplateId", id.clone()),
            ("LaunchTemplate.Version", "$Latest".to_string()),
        ]))
        .await
        .err("InvalidParameterValue"),
        "Invalid value 't3.mega' for InstanceType."
    );
    assert_eq!(h.store.instances().len(), 1, "only the good launch wrote");
}

#[tokio::test]
async fn the_reserved_launch_template_tags_stay() {
    let h = Harness::docker();
    h.create_template("web", &[("LaunchTemplateData.ImageId", AMI)])
        .await;
    let id = h
        .run(&[
            ("ImageId", ""),
            ("LaunchTemplate.LaunchTemplateName", "web"),
        ])
        .await
        .text_at("instancesSet/item/instanceId")
        .to_string();
    // No tags given: every tag the user set goes, the aws: ones stay.
    h.post(&[("Action", "DeleteTags"), ("ResourceId.1", &id)])
        .await
        .ok("DeleteTags");
    let kept: Vec<String> = h.instance(&id).spec.tags.into_keys().collect();
    assert_eq!(
        kept,
        vec!["aws:ec2launchtemplate:id", "aws:ec2launchtemplate:version"]
    );
    for action in ["CreateTags", "DeleteTags"] {
        h.post(&[
            ("Action", action),
            ("ResourceId.1", &id),
            ("Tag.1.Key", "aws:ec2launchtemplate:id"),
            ("Tag.1.Value", "lt-0123456789abcdef0"),
        ])
        .await
        .err("InvalidParameterValue");
    }
    // They do not count against the 50 tags a user may set.
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let mut params = vec![("Action", "CreateTags"), ("ResourceId.1", id.as_str())];
    let tag_keys: Vec<String> = (1..=50).map(|i| format!("Tag.{i}.Key")).collect();
    for (name, key) in tag_keys.iter().zip(&keys) {
        params.push((name, key));
    }
    h.post(&params).await.ok("CreateTags");
    assert_eq!(h.instance(&id).spec.tags.len(), 52);
}
