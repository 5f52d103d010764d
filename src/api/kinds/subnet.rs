//! The subnet kind: the default subnets of the region's default VPC (derived, one per zone) and the subnets CreateSubnet stored, with their free addresses.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::instances;
use crate::api::kind::{IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::network::Subnet;
use crate::model::vpc::subnet_record;
use crate::model::vpc::usable_addresses;
use crate::model::{now, region, InstanceState, SubnetRecord, SubnetSpec, ACCOUNT_ID};
use crate::store::StoreError;

/// Subnets.
pub struct SubnetKind;

/// A subnet with its free addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The subnet.
    pub subnet: Subnet,
    /// Addresses left: the usable ones minus the region's instances in it that are not terminated.
    pub available: u32,
    /// `arn:aws:ec2:<region>:<account>:subnet/<id>`.
    pub arn: String,
}

impl SubnetKind {
    /// Checks the shape of a subnet id (`subnet-` and alphanumerics).
    pub fn check_id(id: &str) -> Result<String, ApiError> {
        Self::IDS.check_alphanumeric(id)
    }
}

/// A stored subnet as the API shows it.
pub fn subnet_view(record: &SubnetRecord) -> Subnet {
    Subnet {
        subnet_id: record.metadata.name.clone(),
        vpc_id: record.spec.vpc_id.clone(),
        cidr_block: record.spec.cidr_block.clone(),
        availability_zone: record.spec.availability_zone.clone(),
        availability_zone_id: record.spec.availability_zone_id.clone(),
        default_for_az: record.spec.default_for_az,
        map_public_ip_on_launch: record.spec.map_public_ip_on_launch,
        usable: usable_addresses(&record.spec.cidr_block),
        options: record.spec.options.clone(),
        tags: record.spec.tags.clone(),
    }
}

/// Every subnet of the region, without free addresses: the default ones (a stored record of
/// one, written by its first ModifySubnetAttribute, stands for it) and the created ones.
pub fn region_subnets(state: &ApiState, region: &str) -> Result<Vec<Subnet>, ApiError> {
    let stored: Vec<Subnet> = state
        .store
        .subnets()
        .list_shared()?
        .objects
        .iter()
        .filter(|s| s.metadata.namespace == region)
        .map(|s| subnet_view(s))
        .collect();
    let mut subnets: Vec<Subnet> = region::defaults(region)
        .subnets
        .iter()
        .filter(|d| !stored.iter().any(|s| s.subnet_id == d.subnet_id))
        .cloned()
        .collect();
    subnets.extend(stored);
    Ok(subnets)
}

/// The subnet `id` of the region, without free addresses.
pub fn find_subnet(state: &ApiState, region: &str, id: &str) -> Result<Option<Subnet>, ApiError> {
    if let Some(stored) = state
        .store
        .subnets()
        .get_shared(id)?
        .filter(|s| s.metadata.namespace == region)
    {
        return Ok(Some(subnet_view(&stored)));
    }
    Ok(region::defaults(region)
        .subnets
        .iter()
        .find(|s| s.subnet_id == id)
        .cloned())
}

/// The region's subnets, with each one's free addresses computed from the instances in it.
pub fn shown_subnets(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
    let instances = instances::region_instances(state, region)?;
    Ok(region_subnets(state, region)?
        .iter()
        .map(|subnet| {
            let used = instances
                .iter()
                .filter(|i| i.spec.subnet_id.as_deref() == Some(subnet.subnet_id.as_str()))
                .filter(|i| instances::shown_state(i) != InstanceState::Terminated)
                .count();
            Shown {
                available: subnet
                    .usable
                    .saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)),
                arn: format!(
                    "arn:aws:ec2:{region}:{ACCOUNT_ID}:subnet/{}",
                    subnet.subnet_id
                ),
                subnet: subnet.clone(),
            }
        })
        .collect())
}

/// Stores the derived default subnet `id` when it is one and has no record yet, for a write
/// (ModifySubnetAttribute, a tag write); reads never call this. Two requests racing here
/// write the same document under the same id; the store keeps the first.
pub fn ensure_default_subnet(state: &ApiState, region: &str, id: &str) -> Result<(), ApiError> {
    let defaults = region::defaults(region);
    let Some(subnet) = defaults.subnets.iter().find(|s| s.subnet_id == id) else {
        return Ok(());
    };
    if state.store.subnets().get_shared(id)?.is_some() {
        return Ok(());
    }
    let record = subnet_record(
        id,
        region,
        SubnetSpec {
            vpc_id: subnet.vpc_id.clone(),
            cidr_block: subnet.cidr_block.clone(),
            availability_zone: subnet.availability_zone.clone(),
            availability_zone_id: subnet.availability_zone_id.clone(),
            map_public_ip_on_launch: subnet.map_public_ip_on_launch,
            default_for_az: true,
            options: subnet.options.clone(),
            tags: subnet.tags.clone(),
        },
        now(),
    );
    match state.store.create_subnet(&record) {
        Ok(()) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Kind for SubnetKind {
    type Item = Shown;
    type Ref = String;
    type Context = ();
    /// Subnets page in zone order, as EC2 lists a default VPC's, then by id within a zone;
    /// a cursor is `<zone>/<subnet id>` (a bare zone, as earlier versions made, is past the
    /// whole zone).
    type Cursor = String;

    const IDS: IdRules = IdRules {
        noun: "subnet",
        prefix: "subnet-",
        malformed: "InvalidSubnetID.Malformed",
        not_found: "InvalidSubnetID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("subnet");
    const FILTERS: &'static [&'static str] = &[
        "subnet-id",
        "vpc-id",
        "availability-zone",
        "availabilityZone",
        "availability-zone-id",
        "availableIpAddressCount",
        "available-ip-address-count",
        "cidr",
        "cidr-block",
        "cidrBlock",
        "default-for-az",
        "defaultForAz",
        "map-public-ip-on-launch",
        "owner-id",
        "state",
        "subnet-arn",
        "tag-key",
        "tag-value",
    ];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const SET: &'static str = "subnetSet";

    fn id(item: &Shown) -> &str {
        &item.subnet.subnet_id
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        params
            .list("SubnetId")
            .into_iter()
            .map(Self::check_id)
            .collect()
    }

    fn find(state: &ApiState, region: &str, id: &String) -> Result<Option<Shown>, ApiError> {
        Ok(shown_subnets(state, region)?
            .into_iter()
            .find(|s| s.subnet.subnet_id == *id))
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
        shown_subnets(state, region)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &Shown) -> Option<&BTreeMap<String, String>> {
        Some(&item.subnet.tags)
    }

    fn values(name: &str, s: &Shown, _context: &()) -> Vec<String> {
        let one = |v: &str| vec![v.to_string()];
        match name {
            "subnet-id" => one(&s.subnet.subnet_id),
            "vpc-id" => one(&s.subnet.vpc_id),
            "availability-zone" | "availabilityZone" => one(&s.subnet.availability_zone),
            "availability-zone-id" => one(&s.subnet.availability_zone_id),
            "availableIpAddressCount" | "available-ip-address-count" => {
                vec![s.available.to_string()]
            }
            "cidr" | "cidr-block" | "cidrBlock" => one(&s.subnet.cidr_block),
            "default-for-az" | "defaultForAz" => one(bool_text(s.subnet.default_for_az)),
            "map-public-ip-on-launch" => one(bool_text(s.subnet.map_public_ip_on_launch)),
            "owner-id" => one(ACCOUNT_ID),
            "state" => one("available"),
            "subnet-arn" => one(&s.arn),
            _ => Vec::new(),
        }
    }

    fn sort(items: &mut [Shown]) {
        items.sort_by(|a, b| position(a).cmp(&position(b)));
    }

    fn cursor(item: &Shown) -> String {
        format!(
            "{}/{}",
            item.subnet.availability_zone, item.subnet.subnet_id
        )
    }

    /// A zone name (`<region><letter>`), optionally with `/<subnet id>`; anything else is not
    /// a cursor ec2d made.
    fn parse_cursor(text: &str) -> Option<String> {
        let (zone, id) = match text.split_once('/') {
            Some((zone, id)) => (zone, Some(id)),
            None => (text, None),
        };
        if let Some(id) = id {
            SubnetKind::check_id(id).ok()?;
        }
        let (region, letter) = zone.split_at(zone.len().checked_sub(1)?);
        let plausible = letter.bytes().all(|b| b.is_ascii_lowercase())
            && region.contains('-')
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        plausible.then(|| text.to_string())
    }

    fn after(item: &Shown, cursor: &String) -> bool {
        match cursor.split_once('/') {
            Some((zone, id)) => position(item) > (zone, id),
            None => item.subnet.availability_zone > *cursor,
        }
    }

    fn render(w: &mut XmlWriter, s: &Shown) {
        render_subnet(w, s, "available");
    }
}

/// A subnet's members, in the state given (CreateSubnet answers `pending`, as EC2 does).
pub fn render_subnet(w: &mut XmlWriter, s: &Shown, state: &str) {
    {
        let subnet = &s.subnet;
        w.field("subnetId", &subnet.subnet_id);
        w.field("subnetArn", &s.arn);
        w.field("state", state);
        w.field("ownerId", ACCOUNT_ID);
        w.field("vpcId", &subnet.vpc_id);
        w.field("cidrBlock", &subnet.cidr_block);
        w.empty("ipv6CidrBlockAssociationSet");
        w.field("availableIpAddressCount", s.available);
        w.field("availabilityZone", &subnet.availability_zone);
        w.field("availabilityZoneId", &subnet.availability_zone_id);
        w.field("defaultForAz", subnet.default_for_az);
        w.field("mapPublicIpOnLaunch", subnet.map_public_ip_on_launch);
        let options = &subnet.options;
        w.field("mapCustomerOwnedIpOnLaunch", false);
        w.field(
            "assignIpv6AddressOnCreation",
            options.assign_ipv6_address_on_creation,
        );
        w.field("enableDns64", options.enable_dns64);
        w.field("ipv6Native", false);
        w.el("privateDnsNameOptionsOnLaunch", |w| {
            w.field("hostnameType", &options.hostname_type);
            w.field(
                "enableResourceNameDnsARecord",
                options.enable_resource_name_dns_a_record,
            );
            w.field(
                "enableResourceNameDnsAAAARecord",
                options.enable_resource_name_dns_aaaa_record,
            );
        });
        crate::api::render::render_tags(w, &subnet.tags);
    }
}

/// Where a subnet sorts: its zone, then its id.
fn position(s: &Shown) -> (&str, &str) {
    (&s.subnet.availability_zone, &s.subnet.subnet_id)
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Tags of stored subnets; a default subnet is stored by its first tag write.
impl crate::api::tags::Tagged for SubnetKind {
    type Spec = crate::model::SubnetSpec;
    type Status = crate::model::SubnetStatus;

    fn collection(
        store: &crate::store::SpecStore,
    ) -> crate::store::Specs<'_, crate::model::SubnetSpec, crate::model::SubnetStatus> {
        store.subnets()
    }

    fn spec_tags(spec: &crate::model::SubnetSpec) -> &crate::api::tags::Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut crate::model::SubnetSpec) -> &mut crate::api::tags::Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        Self::check_id(id)
    }

    /// A derived default subnet has no tags until a write stores it.
    fn read_tags(
        state: &ApiState,
        region: &str,
        id: &str,
    ) -> Result<Option<crate::api::tags::Tags>, ApiError> {
        Ok(find_subnet(state, region, id)?.map(|s| s.tags))
    }

    /// A tag write on a default subnet stores it first.
    fn prepare_tag_write_on(state: &ApiState, region: &str, id: &str) -> Result<(), ApiError> {
        ensure_default_subnet(state, region, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::Describe;

    #[test]
    fn parse_checks_ids_and_filters() {
        let q = QueryParams::from_query("SubnetId.1=sn-1");
        let e = Describe::<SubnetKind>::parse(&q).err().unwrap();
        assert_eq!(e.code, "InvalidSubnetID.Malformed");
        assert_eq!(e.message, "Invalid id: \"sn-1\" (expecting \"subnet-...\")");
        let q = QueryParams::from_query("Filter.1.Name=colour&Filter.1.Value.1=x");
        let e = Describe::<SubnetKind>::parse(&q).err().unwrap();
        assert_eq!(e.code, "InvalidParameterValue");
    }

    #[test]
    fn every_filter_is_answered() {
        let s = Shown {
            subnet: region::defaults("us-east-1").subnets[0].clone(),
            available: 4091,
            arn: "arn".into(),
        };
        for name in SubnetKind::FILTERS {
            assert!(
                !SubnetKind::values(name, &s, &()).is_empty() || name.starts_with("tag"),
                "{name}"
            );
        }
        assert_eq!(
            SubnetKind::values("availability-zone", &s, &()),
            vec!["us-east-1a"]
        );
    }

    #[test]
    fn only_zone_cursors_are_tokens() {
        let parse = |cursor: &str| {
            let q = format!("NextToken={}", crate::api::paging::token(cursor));
            Describe::<SubnetKind>::parse(&QueryParams::from_query(&q))
        };
        assert_eq!(
            parse("us-east-1b").ok().unwrap().after.as_deref(),
            Some("us-east-1b")
        );
        for junk in ["x", "subnet-1/2", "US-EAST-1B", "us-east-1"] {
            assert_eq!(
                parse(junk).err().unwrap().code,
                "InvalidNextToken",
                "{junk:?}"
            );
        }
    }
}
