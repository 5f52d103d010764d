//! What IaC reads about an instance, through `api::router` with `oneshot`: metadata options,
//! credit specifications, monitoring, the echoed option blocks, source/dest check, and the
//! attributes ModifyInstanceAttribute records (groups, user data, EBS optimization).

mod common;

use common::api::Harness;
use ec2d::model::InstanceState;

#[tokio::test]
async fn a_plain_launch_echoes_ec2s_defaults_in_every_block_terraform_reads() {
    let h = Harness::new();
    let id = h
        .run(&[("InstanceType", "t3.micro")])
        .await
        .text_at("instancesSet/item/instanceId")
        .to_string();
    let i = h.instance_item(&id).await;
    assert_eq!(i.text_at("monitoring/state"), "disabled");
    assert_eq!(i.text_at("metadataOptions/state"), "applied");
    assert_eq!(i.text_at("metadataOptions/httpTokens"), "optional");
    assert_eq!(i.text_at("metadataOptions/httpPutResponseHopLimit"), "1");
    assert_eq!(i.text_at("metadataOptions/httpEndpoint"), "enabled");
    assert_eq!(i.text_at("metadataOptions/httpProtocolIpv6"), "disabled");
    assert_eq!(
        i.text_at("metadataOptions/instanceMetadataTags"),
        "disabled"
    );
    assert_eq!(i.text_at("hibernationOptions/configured"), "false");
    assert_eq!(i.text_at("cpuOptions/coreCount"), "1");
    assert_eq!(i.text_at("cpuOptions/threadsPerCore"), "2");
    assert_eq!(i.text_at("enclaveOptions/enabled"), "false");
    assert_eq!(i.text_at("maintenanceOptions/autoRecovery"), "default");
    assert_eq!(i.text_at("privateDnsNameOptions/hostnameType"), "ip-name");
    assert_eq!(
        i.text_at("privateDnsNameOptions/enableResourceNameDnsARecord"),
        "false"
    );
    assert_eq!(
        i.text_at("capacityReservationSpecification/capacityReservationPreference"),
        "open"
    );
    assert_eq!(i.text("sourceDestCheck"), "true");
    assert_eq!(i.text("ebsOptimized"), "false");
    // RunInstances' own answer carries the same blocks.
    let run = h.run(&[("InstanceType", "t3.micro")]).await;
    assert_eq!(
        run.text_at("instancesSet/item/metadataOptions/httpTokens"),
        "optional"
    );
}

#[tokio::test]
async fn launch_options_are_recorded_shown_and_filterable() {
    let h = Harness::new();
    let id = h
        .run(&[
            ("InstanceType", "t3.small"),
            ("MetadataOptions.HttpTokens", "required"),
            ("MetadataOptions.HttpPutResponseHopLimit", "2"),
            ("MetadataOptions.InstanceMetadataTags", "enabled"),
            ("Monitoring.Enabled", "true"),
            ("HibernationOptions.Configured", "false"),
            ("EnclaveOptions.Enabled", "true"),
            ("MaintenanceOptions.AutoRecovery", "disabled"),
            ("PrivateDnsNameOptions.HostnameType", "resource-name"),
            ("PrivateDnsNameOptions.EnableResourceNameDnsARecord", "true"),
            ("CpuOptions.CoreCount", "1"),
            ("CpuOptions.ThreadsPerCore", "1"),
            ("EbsOptimized", "true"),
            ("CreditSpecification.CpuCredits", "standard"),
        ])
        .await
        .text_at("instancesSet/item/instanceId")
        .to_string();
    let other = h.run_one().await;
    let i = h.instance_item(&id).await;
    assert_eq!(i.text_at("metadataOptions/httpTokens"), "required");
    assert_eq!(i.text_at("metadataOptions/httpPutResponseHopLimit"), "2");
    assert_eq!(i.text_at("metadataOptions/instanceMetadataTags"), "enabled");
    assert_eq!(i.text_at("monitoring/state"), "enabled");
    assert_eq!(i.text_at("enclaveOptions/enabled"), "true");
    assert_eq!(i.text_at("maintenanceOptions/autoRecovery"), "disabled");
    assert_eq!(
        i.text_at("privateDnsNameOptions/hostnameType"),
        "resource-name"
    );
    assert_eq!(i.text_at("cpuOptions/threadsPerCore"), "1");
    assert_eq!(i.text("ebsOptimized"), "true");
    for (name, value) in [
        ("metadata-options.http-tokens", "required"),
        ("metadata-options.http-put-response-hop-limit", "2"),
        ("monitoring-state", "enabled"),
        ("enclave-options.enabled", "true"),
        ("ebs-optimized", "true"),
        ("private-dns-name-options.hostname-type", "resource-name"),
    ] {
        assert_eq!(
            h.instance_ids_matching(name, value).await,
            vec![id.clone()],
            "{name}"
        );
    }
    assert_eq!(
        h.instance_ids_matching("metadata-options.http-tokens", "optional")
            .await,
        vec![other]
    );
}

#[tokio::test]
async fn bad_launch_options_are_refused_before_anything_is_written() {
    let h = Harness::new();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("MetadataOptions.HttpTokens", "sometimes")],
            "InvalidParameterValue",
        ),
        (
            &[("MetadataOptions.HttpPutResponseHopLimit", "65")],
            "InvalidParameterValue",
        ),
        (
            &[("MetadataOptions.HttpEndpoint", "on")],
            "InvalidParameterValue",
        ),
        (
            &[
                ("InstanceType", "m5.large"),
                ("CreditSpecification.CpuCredits", "unlimited"),
            ],
            "InstanceCreditSpecification.NotSupported",
        ),
        (
            &[("CreditSpecification.CpuCredits", "infinite")],
            "InvalidParameterValue",
        ),
        (&[("Monitoring.Enabled", "yes")], "InvalidParameterValue"),
        (
            &[("InstanceType", "t3.micro"), ("CpuOptions.CoreCount", "8")],
            "InvalidParameterValue",
        ),
    ];
    for (extra, code) in cases {
        let mut params = vec![
            ("Action", "RunInstances"),
            ("ImageId", common::api::AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ];
        params.extend_from_slice(extra);
        h.post(&params).await.err(code);
    }
    assert!(h.store.instances().list().unwrap().objects.is_empty());
}

#[tokio::test]
async fn modify_instance_metadata_options_changes_only_what_it_names() {
    let h = Harness::new();
    let id = h.run_one().await;
    let doc = h
        .post(&[
            ("Action", "ModifyInstanceMetadataOptions"),
            ("InstanceId", &id),
            ("HttpTokens", "required"),
            ("HttpPutResponseHopLimit", "3"),
        ])
        .await
        .ok("ModifyInstanceMetadataOptions");
    assert_eq!(doc.text("instanceId"), id);
    assert_eq!(doc.text_at("instanceMetadataOptions/state"), "pending");
    assert_eq!(
        doc.text_at("instanceMetadataOptions/httpTokens"),
        "required"
    );
    assert_eq!(
        doc.text_at("instanceMetadataOptions/httpPutResponseHopLimit"),
        "3"
    );
    let generation = h.instance(&id).metadata.generation;
    h.post(&[
        ("Action", "ModifyInstanceMetadataOptions"),
        ("InstanceId", &id),
        ("HttpEndpoint", "disabled"),
    ])
    .await
    .ok("ModifyInstanceMetadataOptions");
    let i = h.instance_item(&id).await;
    assert_eq!(i.text_at("metadataOptions/state"), "applied");
    assert_eq!(i.text_at("metadataOptions/httpTokens"), "required");
    assert_eq!(i.text_at("metadataOptions/httpPutResponseHopLimit"), "3");
    assert_eq!(i.text_at("metadataOptions/httpEndpoint"), "disabled");
    assert_eq!(
        h.instance(&id).metadata.generation,
        generation,
        "nothing for the reconciler to do"
    );
    // Errors: a bad value, a bad id, an unknown instance.
    h.post(&[
        ("Action", "ModifyInstanceMetadataOptions"),
        ("InstanceId", &id),
        ("HttpPutResponseHopLimit", "0"),
    ])
    .await
    .err("InvalidParameterValue");
    h.post(&[
        ("Action", "ModifyInstanceMetadataOptions"),
        ("InstanceId", "i-zz"),
    ])
    .await
    .err("InvalidInstanceID.Malformed");
    assert_eq!(
        h.post(&[
            ("Action", "ModifyInstanceMetadataOptions"),
            ("InstanceId", "i-0123456789abcdef0"),
            ("HttpTokens", "required"),
        ])
        .await
        .err("InvalidInstanceID.NotFound"),
        "The instance ID 'i-0123456789abcdef0' does not exist"
    );
}

#[tokio::test]
async fn credit_specifications_follow_the_family_and_can_be_changed() {
    let h = Harness::new();
    let run = |t: &'static str| {
        let h = &h;
        async move {
            h.run(&[("InstanceType", t)])
                .await
                .text_at("instancesSet/item/instanceId")
                .to_string()
        }
    };
    let t3 = run("t3.micro").await;
    let t2 = run("t2.micro").await;
    let m5 = run("m5.large").await;
    let credits = |doc: &common::api::Node| -> Vec<(String, String)> {
        doc.pairs("instanceCreditSpecificationSet", "instanceId", "cpuCredits")
    };
    // By id: each burstable instance's option, T2 standard and T3 unlimited.
    let doc = h
        .post(&[
            ("Action", "DescribeInstanceCreditSpecifications"),
            ("InstanceId.1", &t3),
            ("InstanceId.2", &t2),
        ])
        .await
        .ok("DescribeInstanceCreditSpecifications");
    let mut expected = vec![
        (t3.clone(), "unlimited".to_string()),
        (t2.clone(), "standard".to_string()),
    ];
    expected.sort();
    assert_eq!(credits(&doc), expected);
    // Without ids: the unlimited ones only.
    let doc = h
        .post(&[("Action", "DescribeInstanceCreditSpecifications")])
        .await
        .ok("DescribeInstanceCreditSpecifications");
    assert_eq!(credits(&doc), vec![(t3.clone(), "unlimited".to_string())]);
    // A type without credits, named: EC2's error.
    h.post(&[
        ("Action", "DescribeInstanceCreditSpecifications"),
        ("InstanceId.1", &m5),
    ])
    .await
    .err("InstanceCreditSpecification.NotSupported");
    h.post(&[
        ("Action", "DescribeInstanceCreditSpecifications"),
        ("InstanceId.1", "i-0123456789abcdef0"),
    ])
    .await
    .err("InvalidInstanceID.NotFound");
    h.post(&[
        ("Action", "DescribeInstanceCreditSpecifications"),
        ("InstanceId.1", &t3),
        ("MaxResults", "5"),
    ])
    .await
    .err("InvalidParameterCombination");

    // Modify: each entry succeeds or fails alone.
    let doc = h
        .post(&[
            ("Action", "ModifyInstanceCreditSpecification"),
            ("InstanceCreditSpecification.1.InstanceId", &t3),
            ("InstanceCreditSpecification.1.CpuCredits", "standard"),
            ("InstanceCreditSpecification.2.InstanceId", &m5),
            ("InstanceCreditSpecification.2.CpuCredits", "standard"),
            (
                "InstanceCreditSpecification.3.InstanceId",
                "i-0123456789abcdef0",
            ),
            ("InstanceCreditSpecification.3.CpuCredits", "standard"),
        ])
        .await
        .ok("ModifyInstanceCreditSpecification");
    let ok: Vec<String> = doc
        .items("successfulInstanceCreditSpecificationSet")
        .iter()
        .map(|i| i.text("instanceId").to_string())
        .collect();
    assert_eq!(ok, vec![t3.clone()]);
    let failed: Vec<(String, String)> = doc
        .items("unsuccessfulInstanceCreditSpecificationSet")
        .iter()
        .map(|i| {
            (
                i.text("instanceId").to_string(),
                i.text_at("error/code").to_string(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            (
                m5.clone(),
                "InstanceCreditSpecification.NotSupported".into()
            ),
            (
                "i-0123456789abcdef0".into(),
                "InvalidInstanceID.NotFound".into()
            ),
        ]
    );
    let doc = h
        .post(&[
            ("Action", "DescribeInstanceCreditSpecifications"),
            ("InstanceId.1", &t3),
        ])
        .await
        .ok("DescribeInstanceCreditSpecifications");
    assert_eq!(credits(&doc), vec![(t3.clone(), "standard".to_string())]);
    h.post(&[
        ("Action", "ModifyInstanceCreditSpecification"),
        ("InstanceCreditSpecification.1.InstanceId", &t3),
        ("InstanceCreditSpecification.1.CpuCredits", "boundless"),
    ])
    .await
    .err("InvalidParameterValue");

    // A resize keeps the option; a resize onto a burstable type gets the family's default.
    h.observe(&m5, InstanceState::Running, Some("172.17.0.3"));
    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &m5)])
        .await
        .ok("StopInstances");
    h.observe(&m5, InstanceState::Stopped, None);
    h.post(&[
        ("Action", "ModifyInstanceAttribute"),
        ("InstanceId", &m5),
        ("InstanceType.Value", "t3.large"),
    ])
    .await
    .ok("ModifyInstanceAttribute");
    let doc = h
        .post(&[
            ("Action", "DescribeInstanceCreditSpecifications"),
            ("InstanceId.1", &m5),
        ])
        .await
        .ok("DescribeInstanceCreditSpecifications");
    assert_eq!(credits(&doc), vec![(m5, "unlimited".to_string())]);
}

#[tokio::test]
async fn monitor_and_unmonitor_switch_the_monitoring_state() {
    let h = Harness::new();
    let a = h.run_one().await;
    let b = h.run_one().await;
    let doc = h
        .post(&[
            ("Action", "MonitorInstances"),
            ("InstanceId.1", &a),
            ("InstanceId.2", &b),
        ])
        .await
        .ok("MonitorInstances");
    let states: Vec<(String, String)> = doc
        .items("instancesSet")
        .iter()
        .map(|i| {
            (
                i.text("instanceId").to_string(),
                i.text_at("monitoring/state").to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![(a.clone(), "pending".into()), (b.clone(), "pending".into())]
    );
    assert_eq!(
        h.instance_item(&a).await.text_at("monitoring/state"),
        "enabled"
    );
    let doc = h
        .post(&[("Action", "UnmonitorInstances"), ("InstanceId.1", &a)])
        .await
        .ok("UnmonitorInstances");
    assert_eq!(
        doc.text_at("instancesSet/item/monitoring/state"),
        "disabling"
    );
    assert_eq!(
        h.instance_item(&a).await.text_at("monitoring/state"),
        "disabled"
    );
    assert_eq!(
        h.instance_item(&b).await.text_at("monitoring/state"),
        "enabled"
    );
    // All or nothing: one unknown id changes none.
    h.post(&[
        ("Action", "UnmonitorInstances"),
        ("InstanceId.1", &b),
        ("InstanceId.2", "i-0123456789abcdef0"),
    ])
    .await
    .err("InvalidInstanceID.NotFound");
    assert_eq!(
        h.instance_item(&b).await.text_at("monitoring/state"),
        "enabled"
    );
    h.post(&[("Action", "MonitorInstances")])
        .await
        .err("InvalidParameterCombination");
}

#[tokio::test]
async fn modify_instance_attribute_records_groups_source_dest_check_and_user_data() {
    let h = Harness::new();
    let id = h.run_one().await;
    let group = h
        .post(&[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "web"),
            ("GroupDescription", "web servers"),
        ])
        .await
        .ok("CreateSecurityGroup")
        .text("groupId")
        .to_string();
    let ports_before = h.instance(&id).spec.ports.clone();
    h.post(&[
        ("Action", "ModifyInstanceAttribute"),
        ("InstanceId", &id),
        ("GroupId.1", &group),
    ])
    .await
    .ok("ModifyInstanceAttribute");
    let i = h.instance_item(&id).await;
    assert_eq!(
        i.pairs("groupSet", "groupId", "groupName"),
        vec![(group.clone(), "web".to_string())]
    );
    assert_eq!(h.instance(&id).spec.ports, ports_before, "ports stay");
    let doc = h
        .post(&[
            ("Action", "DescribeInstanceAttribute"),
            ("InstanceId", &id),
            ("Attribute", "groupSet"),
        ])
        .await
        .ok("DescribeInstanceAttribute");
    assert_eq!(doc.text_at("groupSet/item/groupId"), group);
    // The group is now in use: it cannot be deleted.
    h.post(&[("Action", "DeleteSecurityGroup"), ("GroupId", &group)])
        .await
        .err("DependencyViolation");
    h.post(&[
        ("Action", "ModifyInstanceAttribute"),
        ("InstanceId", &id),
        ("GroupId.1", "sg-0123456789abcdef0"),
    ])
    .await
    .err("InvalidGroup.NotFound");

    h.post(&[
        ("Action", "ModifyInstanceAttribute"),
        ("InstanceId", &id),
        ("SourceDestCheck.Value", "false"),
    ])
    .await
    .ok("ModifyInstanceAttribute");
    let i = h.instance_item(&id).await;
    assert_eq!(i.text("sourceDestCheck"), "false");
    assert_eq!(
        i.text_at("networkInterfaceSet/item/sourceDestCheck"),
        "false"
    );
    assert_eq!(
        h.instance_ids_matching("source-dest-check", "false").await,
        vec![id.clone()]
    );
    let doc = h
        .post(&[
            ("Action", "DescribeInstanceAttribute"),
            ("InstanceId", &id),
            ("Attribute", "sourceDestCheck"),
        ])
        .await
        .ok("DescribeInstanceAttribute");
    assert_eq!(doc.text_at("sourceDestCheck/value"), "false");

    // User data and EBS optimization change only while stopped, as in EC2.
    assert_eq!(
        h.post(&[
            ("Action", "ModifyInstanceAttribute"),
            ("InstanceId", &id),
            ("UserData.Value", "ZWNobyBoaQ=="),
        ])
        .await
        .err("IncorrectInstanceState"),
        format!("The instance '{id}' is not in the 'stopped' state.")
    );
    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &id)])
        .await
        .err("IncorrectInstanceState");
    h.observe(&id, InstanceState::Running, Some("172.17.0.2"));
    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StopInstances");
    h.observe(&id, InstanceState::Stopped, None);
    h.post(&[
        ("Action", "ModifyInstanceAttribute"),
        ("InstanceId", &id),
        ("UserData.Value", "ZWNobyBoaQ=="),
    ])
    .await
    .ok("ModifyInstanceAttribute");
    h.post(&[
        ("Action", "ModifyInstanceAttribute"),
        ("InstanceId", &id),
        ("Attribute", "ebsOptimized"),
        ("Value", "true"),
    ])
    .await
    .ok("ModifyInstanceAttribute");
    let doc = h
        .post(&[
            ("Action", "DescribeInstanceAttribute"),
            ("InstanceId", &id),
            ("Attribute", "userData"),
        ])
        .await
        .ok("DescribeInstanceAttribute");
    assert_eq!(doc.text_at("userData/value"), "ZWNobyBoaQ==");
    assert_eq!(h.instance_item(&id).await.text("ebsOptimized"), "true");
    // What a container cannot have is still refused, after DryRun.
    h.post(&[
        ("Action", "ModifyInstanceAttribute"),
        ("InstanceId", &id),
        ("Kernel.Value", "aki-12345678"),
    ])
    .await
    .err("UnsupportedOperation");
}

#[tokio::test]
async fn an_imds_v2_only_ami_launches_with_tokens_required_unless_the_launch_says_otherwise() {
    // Amazon Linux 2023 of the public catalogue has `imdsSupport` `v2.0`.
    const AL2023: &str = "ami-024f768332f0";
    let h = Harness::with_public_amis(ec2d::config::VmManager::Mock);
    let launch = |extra: &'static [(&'static str, &'static str)]| {
        let h = &h;
        async move {
            let mut params = vec![("ImageId", AL2023)];
            params.extend_from_slice(extra);
            h.run(&params)
                .await
                .text_at("instancesSet/item/instanceId")
                .to_string()
        }
    };
    let plain = launch(&[]).await;
    let i = h.instance_item(&plain).await;
    assert_eq!(i.text_at("metadataOptions/httpTokens"), "required");
    assert_eq!(i.text_at("metadataOptions/httpPutResponseHopLimit"), "2");
    let optional = launch(&[("MetadataOptions.HttpTokens", "optional")]).await;
    let i = h.instance_item(&optional).await;
    assert_eq!(i.text_at("metadataOptions/httpTokens"), "optional");
    assert_eq!(i.text_at("metadataOptions/httpPutResponseHopLimit"), "2");
    let one_hop = launch(&[("MetadataOptions.HttpPutResponseHopLimit", "1")]).await;
    let i = h.instance_item(&one_hop).await;
    assert_eq!(i.text_at("metadataOptions/httpTokens"), "required");
    assert_eq!(i.text_at("metadataOptions/httpPutResponseHopLimit"), "1");
    // Any other AMI keeps EC2's general defaults.
    let other = h.run_one().await;
    assert_eq!(
        h.instance_item(&other)
            .await
            .text_at("metadataOptions/httpTokens"),
        "optional"
    );
}
