//! The VPC kind: the region's default VPC (derived from the region, never stored).

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::network::Vpc;
use crate::model::{region, ACCOUNT_ID};

/// VPCs.
pub struct VpcKind;

impl VpcKind {
    /// Checks the shape of a VPC id (`vpc-` and alphanumerics).
    pub fn check_id(id: &str) -> Result<String, ApiError> {
        Self::IDS.check_alphanumeric(id)
    }
}

impl Kind for VpcKind {
    type Item = Vpc;
    type Ref = String;
    type Context = ();
    ordered_by_id!(Vpc);

    const IDS: IdRules = IdRules {
        noun: "vpc",
        prefix: "vpc-",
        malformed: "InvalidVpcID.Malformed",
        not_found: "InvalidVpcID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = None;
    const FILTERS: &'static [&'static str] = &[
        "vpc-id",
        "cidr",
        "cidr-block-association.cidr-block",
        "cidr-block-association.association-id",
        "cidr-block-association.state",
        "dhcp-options-id",
        "is-default",
        // The older spelling, which AWS still accepts: Ansible's ec2_instance and Terraform's
        // `data "aws_vpc"` (`default = true`) send it.
        "isDefault",
        "owner-id",
        "state",
    ];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const SET: &'static str = "vpcSet";

    fn id(item: &Vpc) -> &str {
        &item.vpc_id
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        params
            .list("VpcId")
            .into_iter()
            .map(Self::check_id)
            .collect()
    }

    fn find(_state: &ApiState, region: &str, id: &String) -> Result<Option<Vpc>, ApiError> {
        let vpc = &region::defaults(region).vpc;
        Ok((vpc.vpc_id == *id).then(|| vpc.clone()))
    }

    fn list(_state: &ApiState, region: &str) -> Result<Vec<Vpc>, ApiError> {
        Ok(vec![region::defaults(region).vpc.clone()])
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(_item: &Vpc) -> Option<&BTreeMap<String, String>> {
        None
    }

    fn values(name: &str, vpc: &Vpc, _context: &()) -> Vec<String> {
        let one = |s: &str| vec![s.to_string()];
        match name {
            "vpc-id" => one(&vpc.vpc_id),
            "cidr" | "cidr-block-association.cidr-block" => one(&vpc.cidr_block),
            "cidr-block-association.association-id" => one(&vpc.cidr_association_id),
            "cidr-block-association.state" => one("associated"),
            "dhcp-options-id" => one(&vpc.dhcp_options_id),
            "is-default" | "isDefault" => one("true"),
            "owner-id" => one(ACCOUNT_ID),
            "state" => one("available"),
            _ => Vec::new(),
        }
    }

    fn render(w: &mut XmlWriter, v: &Vpc) {
        w.field("vpcId", &v.vpc_id);
        w.field("ownerId", ACCOUNT_ID);
        w.field("state", "available");
        w.field("cidrBlock", &v.cidr_block);
        w.set("cidrBlockAssociationSet", [v], |w, v| {
            w.field("cidrBlock", &v.cidr_block);
            w.field("associationId", &v.cidr_association_id);
            w.el("cidrBlockState", |w| w.field("state", "associated"));
        });
        w.field("dhcpOptionsId", &v.dhcp_options_id);
        w.field("instanceTenancy", "default");
        w.field("isDefault", true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::Describe;

    #[test]
    fn parse_checks_ids_and_filters() {
        let q = QueryParams::from_query("VpcId.1=nope");
        let e = Describe::<VpcKind>::parse(&q).err().unwrap();
        assert_eq!(e.code, "InvalidVpcID.Malformed");
        let q = QueryParams::from_query("Filter.1.Name=flavour&Filter.1.Value.1=x");
        let e = Describe::<VpcKind>::parse(&q).err().unwrap();
        assert_eq!(e.message, "The filter 'flavour' is invalid");
    }

    #[test]
    fn default_vpc_answers_its_filters() {
        let v = region::defaults("us-east-1").vpc.clone();
        assert_eq!(VpcKind::values("is-default", &v, &()), vec!["true"]);
        assert_eq!(VpcKind::values("cidr", &v, &()), vec!["172.31.0.0/16"]);
        for name in VpcKind::FILTERS {
            assert!(
                !VpcKind::values(name, &v, &()).is_empty(),
                "{name} answered"
            );
        }
    }

    #[test]
    fn not_found_has_singular_and_plural_wording() {
        let e = VpcKind::IDS.not_found(&["vpc-1"]);
        assert_eq!(e.code, "InvalidVpcID.NotFound");
        assert_eq!(e.message, "The vpc ID 'vpc-1' does not exist");
        let e = VpcKind::IDS.not_found(&["vpc-1", "vpc-2"]);
        assert_eq!(e.message, "The vpc IDs 'vpc-1, vpc-2' do not exist");
    }
}
