//! The InternetGateway and RouteTable kinds (CreateInternetGateway, CreateRouteTable and each VPC's main table), the default VPC's derived gateway and main table, and the derived default network ACLs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{Object, ObjectMeta, API_VERSION};
use super::network::hashed_hex;
use super::Timestamp;

/// A stored internet gateway.
pub type InternetGateway = Object<InternetGatewaySpec, InternetGatewayStatus>;

/// A stored route table.
pub type RouteTable = Object<RouteTableSpec, RouteTableStatus>;

/// The kind name of stored internet gateways.
pub const INTERNET_GATEWAY_KIND: &str = "InternetGateway";

/// The kind name of stored route tables.
pub const ROUTE_TABLE_KIND: &str = "RouteTable";

/// The target of every VPC's own route (`GatewayId=local`).
pub const LOCAL_GATEWAY: &str = "local";

/// What CreateInternetGateway and AttachInternetGateway recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternetGatewaySpec {
    /// The VPC it is attached to (EC2 attaches a gateway to one VPC at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Empty: nothing in Docker backs a gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InternetGatewayStatus {}

/// A route table as the user defined it: its routes and subnet associations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableSpec {
    /// The VPC it belongs to.
    pub vpc_id: String,
    /// Its routes, the VPC's `local` one first.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Its associations: the VPC's main one and subnets'.
    #[serde(default)]
    pub associations: Vec<RouteTableAssociation>,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Empty: ec2d routes nothing, so nothing is observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RouteTableStatus {}

/// One IPv4 route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// `DestinationCidrBlock`, normalised.
    pub destination_cidr_block: String,
    /// Where it leads.
    pub target: RouteTarget,
    /// The target's id (`igw-…`, `local`, `nat-…`, …).
    pub target_id: String,
    /// `CreateRouteTable` for the VPC's own route, `CreateRoute` for the rest.
    pub origin: String,
}

/// The kinds of target a route names, one per CreateRoute parameter ec2d accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RouteTarget {
    /// `GatewayId`: an internet gateway or `local`.
    Gateway,
    /// `NatGatewayId`.
    NatGateway,
    /// `NetworkInterfaceId`.
    NetworkInterface,
    /// `InstanceId`.
    Instance,
    /// `VpcPeeringConnectionId`.
    VpcPeeringConnection,
    /// `TransitGatewayId`.
    TransitGateway,
}

impl RouteTarget {
    /// Every target kind, in CreateRoute's parameter order.
    pub const ALL: [RouteTarget; 6] = [
        Self::Gateway,
        Self::NatGateway,
        Self::NetworkInterface,
        Self::Instance,
        Self::VpcPeeringConnection,
        Self::TransitGateway,
    ];

    /// The Query parameter (`GatewayId`); the response element is the same with a lower first letter.
    pub fn parameter(self) -> &'static str {
        match self {
            Self::Gateway => "GatewayId",
            Self::NatGateway => "NatGatewayId",
            Self::NetworkInterface => "NetworkInterfaceId",
            Self::Instance => "InstanceId",
            Self::VpcPeeringConnection => "VpcPeeringConnectionId",
            Self::TransitGateway => "TransitGatewayId",
        }
    }

    /// The element of a route in DescribeRouteTables (`gatewayId`).
    pub fn element(self) -> &'static str {
        match self {
            Self::Gateway => "gatewayId",
            Self::NatGateway => "natGatewayId",
            Self::NetworkInterface => "networkInterfaceId",
            Self::Instance => "instanceId",
            Self::VpcPeeringConnection => "vpcPeeringConnectionId",
            Self::TransitGateway => "transitGatewayId",
        }
    }
}

/// A route table association: the VPC's main one, or a subnet's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableAssociation {
    /// `rtbassoc-…`.
    pub association_id: String,
    /// The subnet, for a subnet association.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// Whether this is the VPC's main association.
    #[serde(default)]
    pub main: bool,
}

impl RouteTableSpec {
    /// Whether the table is its VPC's main one.
    pub fn is_main(&self) -> bool {
        self.associations.iter().any(|a| a.main)
    }

    /// The route to `destination`, normalised.
    pub fn route(&self, destination: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.destination_cidr_block == destination)
    }
}

/// A fresh internet gateway id (`igw-` and 17 hex digits).
pub fn generate_internet_gateway_id() -> String {
    format!("igw-{}", super::ids::random_hex(17))
}

/// A fresh route table id.
pub fn generate_route_table_id() -> String {
    format!("rtb-{}", super::ids::random_hex(17))
}

/// A fresh route table association id.
pub fn generate_association_id() -> String {
    format!("rtbassoc-{}", super::ids::random_hex(17))
}

/// A new internet gateway record.
pub fn internet_gateway_record(
    id: &str,
    region: &str,
    spec: InternetGatewaySpec,
    now: Timestamp,
) -> InternetGateway {
    Object {
        api_version: API_VERSION.to_string(),
        kind: INTERNET_GATEWAY_KIND.to_string(),
        metadata: ObjectMeta::new(id, region, now),
        spec,
        status: InternetGatewayStatus::default(),
    }
}

/// A new route table record.
pub fn route_table_record(
    id: &str,
    region: &str,
    spec: RouteTableSpec,
    now: Timestamp,
) -> RouteTable {
    Object {
        api_version: API_VERSION.to_string(),
        kind: ROUTE_TABLE_KIND.to_string(),
        metadata: ObjectMeta::new(id, region, now),
        spec,
        status: RouteTableStatus::default(),
    }
}

/// The VPC's own route: its block, to `local`.
pub fn local_route(vpc_cidr: &str) -> Route {
    Route {
        destination_cidr_block: vpc_cidr.to_string(),
        target: RouteTarget::Gateway,
        target_id: LOCAL_GATEWAY.to_string(),
        origin: "CreateRouteTable".to_string(),
    }
}

/// A route CreateRoute adds.
pub fn created_route(destination: &str, target: RouteTarget, target_id: &str) -> Route {
    Route {
        destination_cidr_block: destination.to_string(),
        target,
        target_id: target_id.to_string(),
        origin: "CreateRoute".to_string(),
    }
}

/// A VPC's main route table, as CreateVpc stores it with the VPC: the `local` route and the
/// main association.
pub fn main_route_table_spec(vpc_id: &str, vpc_cidr: &str, association_id: &str) -> RouteTableSpec {
    RouteTableSpec {
        vpc_id: vpc_id.to_string(),
        routes: vec![local_route(vpc_cidr)],
        associations: vec![RouteTableAssociation {
            association_id: association_id.to_string(),
            subnet_id: None,
            main: true,
        }],
        tags: BTreeMap::new(),
    }
}

/// The internet gateway of `region`'s default VPC, attached to it, as AWS creates default
/// VPCs; derived, never stored.
pub fn default_internet_gateway(region: &str, vpc_id: &str) -> InternetGateway {
    internet_gateway_record(
        &format!("igw-{}", hashed_hex(&format!("igw/{region}"))),
        region,
        InternetGatewaySpec {
            vpc_id: Some(vpc_id.to_string()),
            tags: BTreeMap::new(),
        },
        Timestamp::UNIX_EPOCH,
    )
}

/// The main route table of `region`'s default VPC: the `local` route and `0.0.0.0/0` through
/// the default gateway; derived, never stored.
pub fn default_main_route_table(
    region: &str,
    vpc_id: &str,
    vpc_cidr: &str,
    gateway_id: &str,
) -> RouteTable {
    let mut spec = main_route_table_spec(
        vpc_id,
        vpc_cidr,
        &format!("rtbassoc-{}", hashed_hex(&format!("rtbassoc/{region}"))),
    );
    spec.routes
        .push(created_route("0.0.0.0/0", RouteTarget::Gateway, gateway_id));
    route_table_record(
        &format!("rtb-{}", hashed_hex(&format!("rtb/{region}"))),
        region,
        spec,
        Timestamp::UNIX_EPOCH,
    )
}

/// A VPC's default network ACL, derived from the VPC and its subnets (ec2d stores no ACLs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAcl {
    /// `acl-…`, derived from the VPC id.
    pub network_acl_id: String,
    /// The VPC.
    pub vpc_id: String,
    /// `(aclassoc-…, subnet id)` for each subnet of the VPC.
    pub associations: Vec<(String, String)>,
}

/// The default ACL of `vpc_id`, associated with `subnet_ids`.
pub fn default_network_acl<'a>(
    vpc_id: &str,
    subnet_ids: impl IntoIterator<Item = &'a str>,
) -> NetworkAcl {
    NetworkAcl {
        network_acl_id: format!("acl-{}", hashed_hex(&format!("acl/{vpc_id}"))),
        vpc_id: vpc_id.to_string(),
        associations: subnet_ids
            .into_iter()
            .map(|s| {
                (
                    format!("aclassoc-{}", hashed_hex(&format!("aclassoc/{s}"))),
                    s.to_string(),
                )
            })
            .collect(),
    }
}

/// One entry of a default ACL: `(rule number, egress, allow)`; every one is protocol `-1`
/// from `0.0.0.0/0`, as EC2's default ACL: rule 100 allows all, 32767 denies the rest.
pub const DEFAULT_ACL_ENTRIES: [(u16, bool, bool); 4] = [
    (100, true, true),
    (32767, true, false),
    (100, false, true),
    (32767, false, false),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_shaped_like_aws_ids() {
        let a = default_main_route_table("us-east-1", "vpc-1", "172.31.0.0/16", "igw-1");
        let b = default_main_route_table("us-east-1", "vpc-1", "172.31.0.0/16", "igw-1");
        assert_eq!(a, b);
        assert_eq!(a.metadata.name.len(), "rtb-".len() + 17);
        assert!(a.spec.is_main());
        assert_eq!(a.spec.routes.len(), 2);
        let acl = default_network_acl("vpc-1", ["subnet-1", "subnet-2"]);
        assert!(acl.network_acl_id.starts_with("acl-"));
        assert_ne!(acl.associations[0].0, acl.associations[1].0);
        assert_eq!(RouteTarget::Gateway.parameter(), "GatewayId");
    }
}
