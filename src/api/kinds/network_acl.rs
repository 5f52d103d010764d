//! The network ACL kind: each VPC's default ACL, derived from the VPC and its subnets (never stored, so it cannot disagree with them), with EC2's default entries.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::kinds::subnet::region_subnets;
use crate::api::kinds::vpc::region_vpcs;
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::routing::{default_network_acl, NetworkAcl, DEFAULT_ACL_ENTRIES};
use crate::model::ACCOUNT_ID;

/// Network ACLs.
pub struct NetworkAclKind;

/// The default ACL of every VPC of the region, each associated with the VPC's subnets.
pub fn region_acls(state: &ApiState, region: &str) -> Result<Vec<NetworkAcl>, ApiError> {
    let subnets = region_subnets(state, region)?;
    Ok(region_vpcs(state, region)?
        .iter()
        .map(|vpc| {
            default_network_acl(
                &vpc.vpc_id,
                subnets
                    .iter()
                    .filter(|s| s.vpc_id == vpc.vpc_id)
                    .map(|s| s.subnet_id.as_str()),
            )
        })
        .collect())
}

impl Kind for NetworkAclKind {
    type Item = NetworkAcl;
    type Ref = String;
    type Context = ();
    ordered_by_id!(NetworkAcl);

    const IDS: IdRules = IdRules {
        noun: "networkAcl",
        prefix: "acl-",
        malformed: "InvalidNetworkAclId.Malformed",
        not_found: "InvalidNetworkAclID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = None;
    const FILTERS: &'static [&'static str] = &[
        "network-acl-id",
        "vpc-id",
        "default",
        "owner-id",
        "association.association-id",
        "association.network-acl-id",
        "association.subnet-id",
    ];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const SET: &'static str = "networkAclSet";

    fn id(item: &NetworkAcl) -> &str {
        &item.network_acl_id
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        params
            .list("NetworkAclId")
            .into_iter()
            .map(|id| Self::IDS.check_alphanumeric(id))
            .collect()
    }

    fn find(state: &ApiState, region: &str, id: &String) -> Result<Option<NetworkAcl>, ApiError> {
        Ok(region_acls(state, region)?
            .into_iter()
            .find(|a| a.network_acl_id == *id))
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<NetworkAcl>, ApiError> {
        region_acls(state, region)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    /// Default ACLs take no tags here (they are derived).
    fn tags(_item: &NetworkAcl) -> Option<&BTreeMap<String, String>> {
        None
    }

    fn values(name: &str, acl: &NetworkAcl, _context: &()) -> Vec<String> {
        match name {
            "network-acl-id" | "association.network-acl-id" => vec![acl.network_acl_id.clone()],
            "vpc-id" => vec![acl.vpc_id.clone()],
            "default" => vec!["true".to_string()],
            "owner-id" => vec![ACCOUNT_ID.to_string()],
            "association.association-id" => {
                acl.associations.iter().map(|(a, _)| a.clone()).collect()
            }
            "association.subnet-id" => acl.associations.iter().map(|(_, s)| s.clone()).collect(),
            _ => Vec::new(),
        }
    }

    fn render(w: &mut XmlWriter, acl: &NetworkAcl) {
        w.field("networkAclId", &acl.network_acl_id);
        w.field("vpcId", &acl.vpc_id);
        // botocore reads `IsDefault` from `<default>`.
        w.field("default", true);
        w.set(
            "entrySet",
            DEFAULT_ACL_ENTRIES,
            |w, (rule, egress, allow)| {
                w.field("ruleNumber", rule);
                w.field("protocol", "-1");
                w.field("ruleAction", if allow { "allow" } else { "deny" });
                w.field("egress", egress);
                w.field("cidrBlock", "0.0.0.0/0");
            },
        );
        w.set("associationSet", &acl.associations, |w, (id, subnet)| {
            w.field("networkAclAssociationId", id);
            w.field("networkAclId", &acl.network_acl_id);
            w.field("subnetId", subnet);
        });
        w.empty("tagSet");
        w.field("ownerId", ACCOUNT_ID);
    }
}
