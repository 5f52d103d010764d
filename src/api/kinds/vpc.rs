//! The VPC kind: the region's default VPC (derived from the region until a write stores it) and the VPCs CreateVpc stored.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::network::Vpc;
use crate::model::vpc::vpc_record;
use crate::model::{now, region, VpcRecord, VpcSpec, ACCOUNT_ID};
use crate::store::StoreError;

/// VPCs.
pub struct VpcKind;

impl VpcKind {
    /// Checks the shape of a VPC id (`vpc-` and alphanumerics).
    pub fn check_id(id: &str) -> Result<String, ApiError> {
        Self::IDS.check_alphanumeric(id)
    }
}

/// A stored VPC as the API shows it.
pub fn vpc_view(record: &VpcRecord) -> Vpc {
    let default = region::defaults(&record.metadata.namespace);
    Vpc {
        vpc_id: record.metadata.name.clone(),
        cidr_block: record.spec.cidr_block.clone(),
        cidr_association_id: record.spec.cidr_association_id.clone(),
        dhcp_options_id: default.vpc.dhcp_options_id.clone(),
        is_default: record.spec.is_default,
        instance_tenancy: record.spec.instance_tenancy.clone(),
        tags: record.spec.tags.clone(),
        attributes: [
            record.spec.enable_dns_support,
            record.spec.enable_dns_hostnames,
            record.spec.enable_network_address_usage_metrics,
        ],
    }
}

/// The VPC `id` of the region: a stored one (the default one too, once a write stored it),
/// else the derived default one.
pub fn find_vpc(state: &ApiState, region: &str, id: &str) -> Result<Option<Vpc>, ApiError> {
    if let Some(stored) = state
        .store
        .vpcs()
        .get_shared(id)?
        .filter(|v| v.metadata.namespace == region)
    {
        return Ok(Some(vpc_view(&stored)));
    }
    let default = &region::defaults(region).vpc;
    Ok((default.vpc_id == id).then(|| default.clone()))
}

/// Every VPC of the region: the default one (its stored record once a write stored it) and
/// the created ones.
pub fn region_vpcs(state: &ApiState, region: &str) -> Result<Vec<Vpc>, ApiError> {
    let stored: Vec<Vpc> = state
        .store
        .vpcs()
        .list_shared()?
        .objects
        .iter()
        .filter(|v| v.metadata.namespace == region)
        .map(|v| vpc_view(v))
        .collect();
    let default = &region::defaults(region).vpc;
    let mut vpcs = Vec::with_capacity(stored.len() + 1);
    if !stored.iter().any(|v| v.vpc_id == default.vpc_id) {
        vpcs.push(default.clone());
    }
    vpcs.extend(stored);
    Ok(vpcs)
}

/// Stores the region's default VPC under its derived id when it has no record yet, so a write
/// (CreateTags, ModifyVpcAttribute) can change it; reads never call this. The record is
/// written in a transaction only when absent, so racing writers store one.
pub fn ensure_default_vpc(state: &ApiState, region: &str) -> Result<(), ApiError> {
    let defaults = region::defaults(region);
    let vpc = &defaults.vpc;
    if state.store.vpcs().get_shared(&vpc.vpc_id)?.is_some() {
        return Ok(());
    }
    let record = vpc_record(
        &vpc.vpc_id,
        region,
        VpcSpec {
            cidr_block: vpc.cidr_block.clone(),
            cidr_association_id: vpc.cidr_association_id.clone(),
            instance_tenancy: vpc.instance_tenancy.clone(),
            default_group_id: defaults.group_id.clone(),
            enable_dns_support: vpc.attributes[0],
            enable_dns_hostnames: vpc.attributes[1],
            enable_network_address_usage_metrics: vpc.attributes[2],
            is_default: true,
            tags: vpc.tags.clone(),
        },
        now(),
    );
    let stored = state.store.routing(|tx| {
        if tx.vpc(&vpc.vpc_id)?.is_some() {
            return Ok::<bool, StoreError>(false);
        }
        tx.put_vpc(&record)?;
        Ok(true)
    })?;
    if stored {
        tracing::info!(vpc_id = %vpc.vpc_id, %region, "default vpc stored");
    }
    Ok(())
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
    const TAG_TYPE: Option<&'static str> = Some("vpc");
    const FILTERS: &'static [&'static str] = &[
        "vpc-id",
        "cidr",
        // An older spelling AWS still accepts: Ansible's ec2_vpc_net finds its VPC by it.
        "cidr-block",
        "cidr-block-association.cidr-block",
        "cidr-block-association.association-id",
        "cidr-block-association.state",
        "dhcp-options-id",
        "is-default",
        // The older spelling, which AWS still accepts: Ansible's ec2_instance and Terraform's
        // `data "aws_vpc"` (`default = true`) send it.
        "isDefault",
        "instance-tenancy",
        "tag-key",
        "tag-value",
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

    fn find(state: &ApiState, region: &str, id: &String) -> Result<Option<Vpc>, ApiError> {
        find_vpc(state, region, id)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Vpc>, ApiError> {
        region_vpcs(state, region)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &Vpc) -> Option<&BTreeMap<String, String>> {
        Some(&item.tags)
    }

    fn values(name: &str, vpc: &Vpc, _context: &()) -> Vec<String> {
        let one = |s: &str| vec![s.to_string()];
        match name {
            "vpc-id" => one(&vpc.vpc_id),
            "cidr" | "cidr-block" | "cidr-block-association.cidr-block" => one(&vpc.cidr_block),
            "cidr-block-association.association-id" => one(&vpc.cidr_association_id),
            "cidr-block-association.state" => one("associated"),
            "dhcp-options-id" => one(&vpc.dhcp_options_id),
            "is-default" | "isDefault" => one(if vpc.is_default { "true" } else { "false" }),
            "instance-tenancy" => one(&vpc.instance_tenancy),
            "owner-id" => one(ACCOUNT_ID),
            "state" => one("available"),
            _ => Vec::new(),
        }
    }

    fn render(w: &mut XmlWriter, v: &Vpc) {
        render_vpc(w, v, "available");
    }
}

/// A VPC's members, in the state given (CreateVpc answers `pending`, as EC2 does).
pub fn render_vpc(w: &mut XmlWriter, v: &Vpc, state: &str) {
    {
        w.field("vpcId", &v.vpc_id);
        w.field("ownerId", ACCOUNT_ID);
        w.field("state", state);
        w.field("cidrBlock", &v.cidr_block);
        w.set("cidrBlockAssociationSet", [v], |w, v| {
            w.field("cidrBlock", &v.cidr_block);
            w.field("associationId", &v.cidr_association_id);
            w.el("cidrBlockState", |w| w.field("state", "associated"));
        });
        w.field("dhcpOptionsId", &v.dhcp_options_id);
        w.field("instanceTenancy", &v.instance_tenancy);
        w.field("isDefault", v.is_default);
        crate::api::render::render_tags(w, &v.tags);
    }
}

/// Tags of stored VPCs; the default VPC is stored by its first tag write.
impl crate::api::tags::Tagged for VpcKind {
    type Spec = crate::model::VpcSpec;
    type Status = crate::model::VpcStatus;

    fn collection(
        store: &crate::store::SpecStore,
    ) -> crate::store::Specs<'_, crate::model::VpcSpec, crate::model::VpcStatus> {
        store.vpcs()
    }

    fn spec_tags(spec: &crate::model::VpcSpec) -> &crate::api::tags::Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut crate::model::VpcSpec) -> &mut crate::api::tags::Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        Self::check_id(id)
    }

    /// The derived default VPC has no tags until a write stores it.
    fn read_tags(
        state: &ApiState,
        region: &str,
        id: &str,
    ) -> Result<Option<crate::api::tags::Tags>, ApiError> {
        Ok(find_vpc(state, region, id)?.map(|v| v.tags))
    }

    /// A tag write on the default VPC stores it first.
    fn prepare_tag_write_on(state: &ApiState, region: &str, id: &str) -> Result<(), ApiError> {
        if region::defaults(region).vpc.vpc_id == id {
            ensure_default_vpc(state, region)?;
        }
        Ok(())
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
                !VpcKind::values(name, &v, &()).is_empty() || name.starts_with("tag"),
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
