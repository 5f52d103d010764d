//! Internet gateways, route tables, default network ACLs and ModifySubnetAttribute through the router: each created VPC's main table, attach/detach rules, routes and associations with their EC2 errors, the default VPC's derived gateway and main table, and Describe filters.

mod common;

use common::api::Harness;

async fn create_gateway(h: &Harness) -> String {
    h.post(&[("Action", "CreateInternetGateway")])
        .await
        .ok("CreateInternetGateway")
        .text_at("internetGateway/internetGatewayId")
        .to_string()
}

async fn create_table(h: &Harness, vpc: &str) -> String {
    h.post(&[("Action", "CreateRouteTable"), ("VpcId", vpc)])
        .await
        .ok("CreateRouteTable")
        .text_at("routeTable/routeTableId")
        .to_string()
}

async fn tables_where(h: &Harness, filter: &str, value: &str) -> Vec<String> {
    h.post(&[
        ("Action", "DescribeRouteTables"),
        ("Filter.1.Name", filter),
        ("Filter.1.Value.1", value),
    ])
    .await
    .ok("DescribeRouteTables")
    .items("routeTableSet")
    .iter()
    .map(|t| t.text("routeTableId").to_string())
    .collect()
}

/// DescribeVpcs of the default VPC (`is-default`).
async fn default_vpcs(h: &Harness) -> common::api::Node {
    h.post(&[
        ("Action", "DescribeVpcs"),
        ("Filter.1.Name", "is-default"),
        ("Filter.1.Value.1", "true"),
    ])
    .await
    .ok("DescribeVpcs")
}

/// DescribeRouteTables of `vpc`'s main table (Terraform's aws_vpc read asks so).
async fn main_table_of(h: &Harness, vpc: &str) -> common::api::Node {
    h.post(&[
        ("Action", "DescribeRouteTables"),
        ("Filter.1.Name", "vpc-id"),
        ("Filter.1.Value.1", vpc),
        ("Filter.2.Name", "association.main"),
        ("Filter.2.Value.1", "true"),
    ])
    .await
    .ok("DescribeRouteTables")
}

#[tokio::test]
async fn a_created_vpc_has_a_main_table_with_its_local_route() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let doc = main_table_of(&h, &vpc).await;
    let tables = doc.items("routeTableSet");
    assert_eq!(tables.len(), 1);
    let table = tables[0];
    assert!(table.text("routeTableId").starts_with("rtb-"));
    assert_eq!(table.text("routeTableId").len(), 4 + 17);
    let routes = table.items("routeSet");
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].text("destinationCidrBlock"), "10.0.0.0/16");
    assert_eq!(routes[0].text("gatewayId"), "local");
    assert_eq!(routes[0].text("state"), "active");
    assert_eq!(routes[0].text("origin"), "CreateRouteTable");
    let associations = table.items("associationSet");
    assert_eq!(associations.len(), 1);
    assert_eq!(associations[0].text("main"), "true");
    assert!(associations[0]
        .text("routeTableAssociationId")
        .starts_with("rtbassoc-"));
    assert_eq!(
        associations[0].text_at("associationState/state"),
        "associated"
    );

    // The main table cannot be deleted; DeleteVpc takes it along.
    let main = table.text("routeTableId").to_string();
    h.post(&[("Action", "DeleteRouteTable"), ("RouteTableId", &main)])
        .await
        .err("DependencyViolation");
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .ok("DeleteVpc");
    let message = h
        .post(&[("Action", "DescribeRouteTables"), ("RouteTableId.1", &main)])
        .await
        .err("InvalidRouteTableID.NotFound");
    assert_eq!(
        message,
        format!("The routeTable ID '{main}' does not exist")
    );
}

#[tokio::test]
async fn internet_gateway_attach_detach_delete_and_their_errors() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let other = h.create_vpc("10.1.0.0/16").await;
    let doc = h
        .post(&[
            ("Action", "CreateInternetGateway"),
            ("TagSpecification.1.ResourceType", "internet-gateway"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "gw"),
        ])
        .await
        .ok("CreateInternetGateway");
    let igw = doc.text_at("internetGateway/internetGatewayId").to_string();
    assert!(igw.starts_with("igw-") && igw.len() == 4 + 17);
    assert!(doc
        .path("internetGateway/attachmentSet")
        .children
        .is_empty());
    let second = create_gateway(&h).await;

    let attach = |g: &str, v: &str| {
        let (g, v) = (g.to_string(), v.to_string());
        let h = &h;
        async move {
            h.post(&[
                ("Action", "AttachInternetGateway"),
                ("InternetGatewayId", &g),
                ("VpcId", &v),
            ])
            .await
        }
    };
    attach("igw-0000000000000000a", &vpc)
        .await
        .err("InvalidInternetGatewayID.NotFound");
    attach(&igw, "vpc-0000000000000000a")
        .await
        .err("InvalidVpcID.NotFound");
    attach("nope", &vpc)
        .await
        .err("InvalidInternetGatewayId.Malformed");
    attach(&igw, &vpc).await.ok("AttachInternetGateway");
    let message = attach(&igw, &other).await.err("Resource.AlreadyAssociated");
    assert_eq!(
        message,
        format!("resource {igw} is already attached to network {vpc}")
    );
    attach(&second, &vpc)
        .await
        .err("Resource.AlreadyAssociated");

    let doc = h
        .post(&[
            ("Action", "DescribeInternetGateways"),
            ("Filter.1.Name", "attachment.vpc-id"),
            ("Filter.1.Value.1", &vpc),
        ])
        .await
        .ok("DescribeInternetGateways");
    let items = doc.items("internetGatewaySet");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].text("internetGatewayId"), igw);
    assert_eq!(items[0].text_at("attachmentSet/item/vpcId"), vpc);
    assert_eq!(items[0].text_at("attachmentSet/item/state"), "available");
    assert_eq!(items[0].tags().get("Name").map(String::as_str), Some("gw"));
    let doc = h
        .post(&[
            ("Action", "DescribeInternetGateways"),
            ("Filter.1.Name", "tag:Name"),
            ("Filter.1.Value.1", "gw"),
        ])
        .await
        .ok("DescribeInternetGateways");
    assert_eq!(doc.items("internetGatewaySet").len(), 1);

    // Attached: the gateway and its VPC cannot be deleted.
    h.post(&[
        ("Action", "DeleteInternetGateway"),
        ("InternetGatewayId", &igw),
    ])
    .await
    .err("DependencyViolation");
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .err("DependencyViolation");

    let detach = |g: &str, v: &str| {
        let (g, v) = (g.to_string(), v.to_string());
        let h = &h;
        async move {
            h.post(&[
                ("Action", "DetachInternetGateway"),
                ("InternetGatewayId", &g),
                ("VpcId", &v),
            ])
            .await
        }
    };
    let message = detach(&igw, &other).await.err("Gateway.NotAttached");
    assert_eq!(
        message,
        format!("resource {igw} is not attached to network {other}")
    );
    detach(&igw, &vpc).await.ok("DetachInternetGateway");
    detach(&igw, &vpc).await.err("Gateway.NotAttached");
    h.post(&[
        ("Action", "DeleteInternetGateway"),
        ("InternetGatewayId", &igw),
    ])
    .await
    .ok("DeleteInternetGateway");
    h.post(&[
        ("Action", "DeleteInternetGateway"),
        ("InternetGatewayId", &igw),
    ])
    .await
    .err("InvalidInternetGatewayID.NotFound");
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .ok("DeleteVpc");
}

#[tokio::test]
async fn routes_and_associations() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let subnet = h.create_subnet(&vpc, "10.0.1.0/24", None).await;
    let igw = create_gateway(&h).await;
    let table = create_table(&h, &vpc).await;

    let route = |action: &'static str, extra: Vec<(&'static str, String)>| {
        let table = table.clone();
        let h = &h;
        async move {
            let mut params: Vec<(&str, &str)> = vec![("Action", action), ("RouteTableId", &table)];
            for (k, v) in &extra {
                params.push((k, v));
            }
            h.post(&params).await
        }
    };
    let to = |cidr: &str, gateway: &str| {
        vec![
            ("DestinationCidrBlock", cidr.to_string()),
            ("GatewayId", gateway.to_string()),
        ]
    };
    // A gateway not attached to the table's VPC belongs to another network.
    route("CreateRoute", to("0.0.0.0/0", &igw))
        .await
        .err("InvalidParameterValue");
    route("CreateRoute", to("0.0.0.0/0", "igw-0000000000000000a"))
        .await
        .err("InvalidGatewayID.NotFound");
    h.post(&[
        ("Action", "AttachInternetGateway"),
        ("InternetGatewayId", &igw),
        ("VpcId", &vpc),
    ])
    .await
    .ok("AttachInternetGateway");
    route("CreateRoute", to("0.0.0.0/0", &igw))
        .await
        .ok("CreateRoute");
    let message = route("CreateRoute", to("0.0.0.0/0", &igw))
        .await
        .err("RouteAlreadyExists");
    assert_eq!(message, "The route identified by 0.0.0.0/0 already exists.");
    route(
        "CreateRoute",
        vec![("DestinationCidrBlock", "10.9.0.0/16".into())],
    )
    .await
    .err("MissingParameter");
    // Exactly one target; targets ec2d does not model are taken as given.
    let nat = ("NatGatewayId", "nat-0123456789abcdef0".to_string());
    let tgw = ("TransitGatewayId", "tgw-0123456789abcdef0".to_string());
    let dest = ("DestinationCidrBlock", "10.9.0.0/16".to_string());
    for (action, targets, code) in [
        (
            "CreateRoute",
            vec![("GatewayId", igw.clone()), nat.clone()],
            Some("InvalidParameterCombination"),
        ),
        ("CreateRoute", vec![nat.clone()], None),
        ("ReplaceRoute", vec![tgw.clone()], None),
    ] {
        let mut params = vec![dest.clone()];
        params.extend(targets);
        let reply = route(action, params).await;
        match code {
            Some(code) => {
                reply.err(code);
            }
            None => {
                reply.ok(action);
            }
        }
    }
    route("ReplaceRoute", to("10.8.0.0/16", &igw))
        .await
        .err("InvalidParameterValue");

    assert_eq!(
        tables_where(&h, "route.gateway-id", &igw).await,
        vec![table.clone()]
    );
    assert_eq!(
        tables_where(&h, "route.transit-gateway-id", "tgw-0123456789abcdef0").await,
        vec![table.clone()]
    );
    assert_eq!(
        tables_where(&h, "route.destination-cidr-block", "10.9.0.0/16").await,
        vec![table.clone()]
    );
    let doc = h
        .post(&[
            ("Action", "DescribeRouteTables"),
            ("RouteTableId.1", &table),
        ])
        .await
        .ok("DescribeRouteTables");
    let routes = doc.items("routeTableSet/item/routeSet");
    assert_eq!(routes.len(), 3);
    assert_eq!(routes[1].text("gatewayId"), igw);
    assert_eq!(routes[1].text("origin"), "CreateRoute");
    assert_eq!(routes[1].text("state"), "active");
    assert_eq!(routes[2].text("transitGatewayId"), "tgw-0123456789abcdef0");

    route(
        "DeleteRoute",
        vec![("DestinationCidrBlock", "10.9.0.0/16".into())],
    )
    .await
    .ok("DeleteRoute");
    let message = route(
        "DeleteRoute",
        vec![("DestinationCidrBlock", "10.9.0.0/16".into())],
    )
    .await
    .err("InvalidRoute.NotFound");
    assert_eq!(
        message,
        format!("no route with destination-cidr-block 10.9.0.0/16 in route table {table}")
    );

    // One table per subnet; re-association goes through ReplaceRouteTableAssociation.
    let associate = |t: &str| {
        let (t, s) = (t.to_string(), subnet.clone());
        let h = &h;
        async move {
            h.post(&[
                ("Action", "AssociateRouteTable"),
                ("RouteTableId", &t),
                ("SubnetId", &s),
            ])
            .await
        }
    };
    let doc = associate(&table).await.ok("AssociateRouteTable");
    let association = doc.text("associationId").to_string();
    assert!(association.starts_with("rtbassoc-"));
    assert_eq!(doc.text_at("associationState/state"), "associated");
    let second = create_table(&h, &vpc).await;
    associate(&second).await.err("Resource.AlreadyAssociated");
    assert_eq!(
        tables_where(&h, "association.subnet-id", &subnet).await,
        vec![table.clone()]
    );
    assert_eq!(
        tables_where(&h, "association.route-table-association-id", &association).await,
        vec![table.clone()]
    );
    h.post(&[("Action", "DeleteRouteTable"), ("RouteTableId", &table)])
        .await
        .err("DependencyViolation");
    let doc = h
        .post(&[
            ("Action", "ReplaceRouteTableAssociation"),
            ("AssociationId", &association),
            ("RouteTableId", &second),
        ])
        .await
        .ok("ReplaceRouteTableAssociation");
    let moved = doc.text("newAssociationId").to_string();
    assert_ne!(moved, association);
    assert_eq!(
        tables_where(&h, "association.subnet-id", &subnet).await,
        vec![second.clone()]
    );
    h.post(&[
        ("Action", "DisassociateRouteTable"),
        ("AssociationId", &association),
    ])
    .await
    .err("InvalidAssociationID.NotFound");
    h.post(&[
        ("Action", "DisassociateRouteTable"),
        ("AssociationId", &moved),
    ])
    .await
    .ok("DisassociateRouteTable");
    // Free again: a plain association works.
    associate(&table).await.ok("AssociateRouteTable");

    // DeleteVpc is refused while non-main tables exist.
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .err("DependencyViolation");
    h.post(&[("Action", "DeleteRouteTable"), ("RouteTableId", &second)])
        .await
        .ok("DeleteRouteTable");
}

#[tokio::test]
async fn the_default_vpc_has_a_derived_gateway_main_table_and_acl() {
    let h = Harness::new();
    let doc = default_vpcs(&h).await;
    let vpc = doc.text_at("vpcSet/item/vpcId").to_string();
    let doc = h
        .post(&[
            ("Action", "DescribeInternetGateways"),
            ("Filter.1.Name", "attachment.vpc-id"),
            ("Filter.1.Value.1", &vpc),
        ])
        .await
        .ok("DescribeInternetGateways");
    let igw = doc
        .text_at("internetGatewaySet/item/internetGatewayId")
        .to_string();
    let doc = main_table_of(&h, &vpc).await;
    let routes = doc.items("routeTableSet/item/routeSet");
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].text("destinationCidrBlock"), "172.31.0.0/16");
    assert_eq!(routes[1].text("destinationCidrBlock"), "0.0.0.0/0");
    assert_eq!(routes[1].text("gatewayId"), igw);
    let main = doc.text_at("routeTableSet/item/routeTableId").to_string();
    h.post(&[
        ("Action", "CreateRoute"),
        ("RouteTableId", &main),
        ("DestinationCidrBlock", "10.0.0.0/8"),
        ("GatewayId", &igw),
    ])
    .await
    .err("UnsupportedOperation");
    h.post(&[
        ("Action", "DeleteInternetGateway"),
        ("InternetGatewayId", &igw),
    ])
    .await
    .err("DependencyViolation");

    let doc = h
        .post(&[
            ("Action", "DescribeNetworkAcls"),
            ("Filter.1.Name", "default"),
            ("Filter.1.Value.1", "true"),
            ("Filter.2.Name", "vpc-id"),
            ("Filter.2.Value.1", &vpc),
        ])
        .await
        .ok("DescribeNetworkAcls");
    let acls = doc.items("networkAclSet");
    assert_eq!(acls.len(), 1);
    let acl = acls[0];
    assert!(acl.text("networkAclId").starts_with("acl-"));
    assert_eq!(acl.text("default"), "true");
    let entries = acl.items("entrySet");
    assert_eq!(entries.len(), 4);
    let rules: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (e.text("ruleNumber"), e.text("ruleAction"), e.text("egress")))
        .collect();
    assert!(rules.contains(&("100", "allow", "true")));
    assert!(rules.contains(&("32767", "deny", "false")));
    assert!(entries
        .iter()
        .all(|e| e.text("protocol") == "-1" && e.text("cidrBlock") == "0.0.0.0/0"));
    let associations = acl.items("associationSet");
    assert_eq!(associations.len(), 6, "one per default subnet of us-east-1");
    let subnet = associations[0].text("subnetId").to_string();
    let doc = h
        .post(&[
            ("Action", "DescribeNetworkAcls"),
            ("Filter.1.Name", "association.subnet-id"),
            ("Filter.1.Value.1", &subnet),
        ])
        .await
        .ok("DescribeNetworkAcls");
    assert_eq!(doc.items("networkAclSet").len(), 1);
    h.post(&[
        ("Action", "DescribeNetworkAcls"),
        ("NetworkAclId.1", "acl-0000000000000000a"),
    ])
    .await
    .err("InvalidNetworkAclID.NotFound");
}

#[tokio::test]
async fn modify_subnet_attribute_one_at_a_time_and_a_default_subnet_stored_on_first_write() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let subnet = h.create_subnet(&vpc, "10.0.1.0/24", None).await;
    h.post(&[
        ("Action", "ModifySubnetAttribute"),
        ("SubnetId", &subnet),
        ("MapPublicIpOnLaunch.Value", "true"),
    ])
    .await
    .ok("ModifySubnetAttribute");
    h.post(&[
        ("Action", "ModifySubnetAttribute"),
        ("SubnetId", &subnet),
        ("PrivateDnsHostnameTypeOnLaunch", "resource-name"),
    ])
    .await
    .ok("ModifySubnetAttribute");
    h.post(&[
        ("Action", "ModifySubnetAttribute"),
        ("SubnetId", &subnet),
        ("MapPublicIpOnLaunch.Value", "true"),
        ("EnableDns64.Value", "true"),
    ])
    .await
    .err("InvalidParameterCombination");
    h.post(&[("Action", "ModifySubnetAttribute"), ("SubnetId", &subnet)])
        .await
        .err("MissingParameter");
    h.post(&[
        ("Action", "ModifySubnetAttribute"),
        ("SubnetId", "subnet-0000000000000000a"),
        ("MapPublicIpOnLaunch.Value", "true"),
    ])
    .await
    .err("InvalidSubnetID.NotFound");
    let doc = h
        .post(&[("Action", "DescribeSubnets"), ("SubnetId.1", &subnet)])
        .await
        .ok("DescribeSubnets");
    let item = doc.path("subnetSet/item");
    assert_eq!(item.text("mapPublicIpOnLaunch"), "true");
    assert_eq!(
        item.text_at("privateDnsNameOptionsOnLaunch/hostnameType"),
        "resource-name"
    );

    // A default subnet: stored by its first change, still a default one, and taggable since.
    let doc = h
        .post(&[
            ("Action", "DescribeSubnets"),
            ("Filter.1.Name", "default-for-az"),
            ("Filter.1.Value.1", "true"),
        ])
        .await
        .ok("DescribeSubnets");
    let defaults = doc.items("subnetSet");
    let count = defaults.len();
    let default = defaults[0].text("subnetId").to_string();
    assert_eq!(h.store.subnets().len(), 1);
    h.post(&[
        ("Action", "ModifySubnetAttribute"),
        ("SubnetId", &default),
        ("MapPublicIpOnLaunch.Value", "false"),
    ])
    .await
    .ok("ModifySubnetAttribute");
    assert_eq!(h.store.subnets().len(), 2);
    let doc = h
        .post(&[
            ("Action", "DescribeSubnets"),
            ("Filter.1.Name", "default-for-az"),
            ("Filter.1.Value.1", "true"),
        ])
        .await
        .ok("DescribeSubnets");
    let after = doc.items("subnetSet");
    assert_eq!(
        after.len(),
        count,
        "the stored record stands for the derived one"
    );
    let shown = after
        .iter()
        .find(|s| s.text("subnetId") == default)
        .unwrap();
    assert_eq!(shown.text("mapPublicIpOnLaunch"), "false");
    assert_eq!(shown.text("defaultForAz"), "true");
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &default),
        ("Tag.1.Key", "Name"),
        ("Tag.1.Value", "default-a"),
    ])
    .await
    .ok("CreateTags");
    h.post(&[("Action", "DeleteSubnet"), ("SubnetId", &default)])
        .await
        .err("DependencyViolation");
}

#[tokio::test]
async fn the_default_vpc_is_stored_by_its_first_write_and_reads_never_store_it() {
    let h = Harness::new();
    let doc = default_vpcs(&h).await;
    let vpc = doc.text_at("vpcSet/item/vpcId").to_string();
    h.post(&[
        ("Action", "DescribeVpcAttribute"),
        ("VpcId", &vpc),
        ("Attribute", "enableDnsHostnames"),
    ])
    .await
    .ok("DescribeVpcAttribute");
    h.post(&[("Action", "DescribeTags")])
        .await
        .ok("DescribeTags");
    assert!(
        h.store.vpcs().is_empty(),
        "reads never store the default VPC"
    );
    // Tagging another VPC leaves the default one derived.
    let other = h.create_vpc("10.0.0.0/16").await;
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &other),
        ("Tag.1.Key", "Name"),
        ("Tag.1.Value", "other"),
    ])
    .await
    .ok("CreateTags");
    assert_eq!(h.store.vpcs().len(), 1);

    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &vpc),
        ("Tag.1.Key", "Name"),
        ("Tag.1.Value", "default"),
    ])
    .await
    .ok("CreateTags");
    assert_eq!(h.store.vpcs().len(), 2);
    h.post(&[
        ("Action", "ModifyVpcAttribute"),
        ("VpcId", &vpc),
        ("EnableDnsHostnames.Value", "false"),
    ])
    .await
    .ok("ModifyVpcAttribute");
    let doc = default_vpcs(&h).await;
    let items = doc.items("vpcSet");
    assert_eq!(items.len(), 1, "the record stands for the derived VPC");
    assert_eq!(items[0].text("vpcId"), vpc);
    assert_eq!(items[0].text("isDefault"), "true");
    assert_eq!(items[0].text("cidrBlock"), "172.31.0.0/16");
    assert_eq!(
        items[0].tags().get("Name").map(String::as_str),
        Some("default")
    );
    let doc = h
        .post(&[
            ("Action", "DescribeVpcAttribute"),
            ("VpcId", &vpc),
            ("Attribute", "enableDnsHostnames"),
        ])
        .await
        .ok("DescribeVpcAttribute");
    assert_eq!(doc.text_at("enableDnsHostnames/value"), "false");
    let doc = h
        .post(&[
            ("Action", "DescribeVpcs"),
            ("Filter.1.Name", "tag:Name"),
            ("Filter.1.Value.1", "default"),
        ])
        .await
        .ok("DescribeVpcs");
    assert_eq!(doc.items("vpcSet").len(), 1);
    // Still the default VPC: it cannot be deleted, and its derived routing stays.
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .err("DependencyViolation");
    let doc = main_table_of(&h, &vpc).await;
    assert_eq!(doc.items("routeTableSet").len(), 1);
}
