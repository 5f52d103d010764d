//! The network interface kind: each VPC instance's primary interface (device 0), derived from
//! the instance (its ids, MAC and attachment are derived from the instance id, as
//! DescribeInstances shows them), never stored. A terminated instance has none. The Elastic IP
//! its instance holds is its association.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::addresses::shown_public_ip;
use crate::api::addresses::{public_dns_name, render_association, HeldAddresses};
use crate::api::error::ApiError;
use crate::api::instances::{region_instances, shown_state};
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::render::{derived_id, derived_mac, private_dns_name, private_ip, render_group_set};
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{format_timestamp, Address, Instance, InstanceState, ACCOUNT_ID};

/// Network interfaces.
pub struct NetworkInterfaceKind;

/// An instance's primary interface, with its derived ids.
#[derive(Debug, Clone)]
pub struct Shown {
    /// `eni-…`, derived from the instance id.
    pub id: String,
    /// `eni-attach-…`, derived from the instance id.
    pub attachment_id: String,
    /// The instance it belongs to (shared with the store's decode cache).
    pub instance: Arc<Instance>,
    /// The state the instance shows.
    pub shown: InstanceState,
    /// The Elastic IP associated with it (its instance's).
    pub address: Option<Arc<Address>>,
}

impl Shown {
    /// The interface of `instance`, when it has one: a VPC instance that is not terminated.
    pub fn of(instance: &Arc<Instance>, held: &HeldAddresses) -> Option<Self> {
        let shown = shown_state(instance);
        let in_vpc = instance.spec.subnet_id.is_some() && instance.spec.vpc_id.is_some();
        (in_vpc && shown != InstanceState::Terminated).then(|| Self {
            id: derived_id("eni", &instance.metadata.name),
            attachment_id: derived_id("eni-attach", &instance.metadata.name),
            instance: Arc::clone(instance),
            shown,
            address: held.of(instance).cloned(),
        })
    }

    fn private_ip(&self) -> Option<&str> {
        private_ip(&self.instance, self.shown)
    }

    fn public_ip(&self) -> Option<&str> {
        shown_public_ip(&self.instance, self.shown, self.address.as_deref())
    }

    /// Whether the interface has a public address of the launch's own (not an Elastic IP).
    pub fn has_auto_assigned_public_ip(&self) -> bool {
        self.address.is_none() && self.public_ip().is_some()
    }

    /// The `attachment` element, as DescribeNetworkInterfaces and
    /// DescribeNetworkInterfaceAttribute show it: to its instance at device 0, deleted with it.
    pub fn render_attachment(&self, w: &mut XmlWriter) {
        let instance = &self.instance;
        w.el("attachment", |w| {
            w.field("attachmentId", &self.attachment_id);
            w.field("instanceId", &instance.metadata.name);
            w.field("instanceOwnerId", ACCOUNT_ID);
            w.field("deviceIndex", 0);
            w.field("networkCardIndex", 0);
            w.field("status", "attached");
            w.field(
                "attachTime",
                format_timestamp(instance.metadata.creation_timestamp),
            );
            w.field("deleteOnTermination", true);
        });
    }

    fn private_dns_name(&self) -> Option<String> {
        self.private_ip()
            .map(|ip| private_dns_name(ip, &self.instance.metadata.namespace))
    }
}

/// The region's interfaces.
pub fn shown_interfaces(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
    let held = HeldAddresses::read(state)?;
    Ok(region_instances(state, region)?
        .iter()
        .filter_map(|i| Shown::of(i, &held))
        .collect())
}

/// The interface `id` names (checked as EC2 checks an id), or EC2's `NotFound` for it.
pub fn load(state: &ApiState, region: &str, id: &str) -> Result<Shown, ApiError> {
    let id = NetworkInterfaceKind::IDS.check_alphanumeric(id)?;
    NetworkInterfaceKind::find(state, region, &id)?
        .ok_or_else(|| NetworkInterfaceKind::IDS.not_found(&[id.as_str()]))
}

/// EC2 does not copy an instance's tags to its interface, and ec2d's interfaces take none:
/// the tag filters are accepted and match nothing.
static NO_TAGS: BTreeMap<String, String> = BTreeMap::new();

impl Kind for NetworkInterfaceKind {
    type Item = Shown;
    type Ref = String;
    type Context = ();

    const IDS: IdRules = IdRules {
        noun: "networkInterface",
        prefix: "eni-",
        malformed: "InvalidNetworkInterfaceID.Malformed",
        not_found: "InvalidNetworkInterfaceID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = None;
    /// The API reference's list; those about what ec2d does not model (IPv6, requesters) are
    /// accepted and match nothing.
    const FILTERS: &'static [&'static str] = &[
        "network-interface-id",
        "attachment.attachment-id",
        "attachment.attach-time",
        "attachment.delete-on-termination",
        "attachment.device-index",
        "attachment.instance-id",
        "attachment.instance-owner-id",
        "attachment.status",
        "availability-zone",
        "description",
        "group-id",
        "group-name",
        "interface-type",
        "mac-address",
        "owner-id",
        "private-dns-name",
        "private-ip-address",
        "addresses.private-ip-address",
        "addresses.primary",
        "addresses.association.public-ip",
        "addresses.association.owner-id",
        "association.public-ip",
        "association.ip-owner-id",
        "association.public-dns-name",
        "association.allocation-id",
        "association.association-id",
        "ipv6-addresses.ipv6-address",
        "requester-id",
        "requester-managed",
        "source-dest-check",
        "status",
        "subnet-id",
        "tag-key",
        "vpc-id",
    ];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const SET: &'static str = "networkInterfaceSet";

    fn id(item: &Shown) -> &str {
        &item.id
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        params
            .list("NetworkInterfaceId")
            .into_iter()
            .map(|id| Self::IDS.check_alphanumeric(id))
            .collect()
    }

    fn find(state: &ApiState, region: &str, id: &String) -> Result<Option<Shown>, ApiError> {
        Ok(shown_interfaces(state, region)?
            .into_iter()
            .find(|s| s.id == *id))
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
        shown_interfaces(state, region)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(_item: &Shown) -> Option<&BTreeMap<String, String>> {
        Some(&NO_TAGS)
    }

    fn values(name: &str, s: &Shown, _context: &()) -> Vec<String> {
        let spec = &s.instance.spec;
        let one = |v: &str| vec![v.to_string()];
        let opt = |v: Option<&str>| v.map(str::to_string).into_iter().collect::<Vec<_>>();
        match name {
            "network-interface-id" => one(&s.id),
            "attachment.attachment-id" => one(&s.attachment_id),
            "attachment.attach-time" => {
                vec![format_timestamp(s.instance.metadata.creation_timestamp)]
            }
            "attachment.delete-on-termination" | "addresses.primary" => one("true"),
            "attachment.device-index" => one("0"),
            "attachment.instance-id" => one(&s.instance.metadata.name),
            "attachment.instance-owner-id" | "owner-id" => one(ACCOUNT_ID),
            "attachment.status" => one("attached"),
            "availability-zone" => one(&spec.availability_zone),
            "description" => one(spec.interface_description.as_deref().unwrap_or_default()),
            "group-id" => spec
                .security_groups
                .iter()
                .map(|g| g.group_id.clone())
                .collect(),
            "group-name" => spec
                .security_groups
                .iter()
                .map(|g| g.group_name.clone())
                .collect(),
            "interface-type" => one("interface"),
            "mac-address" => vec![derived_mac(&s.instance.metadata.name)],
            "private-dns-name" => s.private_dns_name().into_iter().collect(),
            "private-ip-address" | "addresses.private-ip-address" => opt(s.private_ip()),
            "addresses.association.public-ip" | "association.public-ip" => opt(s.public_ip()),
            "addresses.association.owner-id" | "association.ip-owner-id" => {
                opt(s.public_ip().map(|_| match s.address {
                    Some(_) => ACCOUNT_ID,
                    None => "amazon",
                }))
            }
            "association.public-dns-name" => match &s.address {
                Some(a) => vec![public_dns_name(&a.spec.public_ip, &a.metadata.namespace)],
                None => opt(s.public_ip().map(|_| "")),
            },
            "association.allocation-id" => {
                s.address.iter().map(|a| a.metadata.name.clone()).collect()
            }
            "association.association-id" => s
                .address
                .iter()
                .filter_map(|a| a.spec.association.as_ref())
                .map(|a| a.association_id.clone())
                .collect(),
            "requester-managed" => one("false"),
            "source-dest-check" => vec![spec.options.source_dest_check.to_string()],
            "status" => one("in-use"),
            "subnet-id" => opt(spec.subnet_id.as_deref()),
            "vpc-id" => opt(spec.vpc_id.as_deref()),
            _ => Vec::new(),
        }
    }

    ordered_by_id!(Shown);

    fn render(w: &mut XmlWriter, s: &Shown) {
        let instance = &s.instance;
        let spec = &instance.spec;
        let private = s.private_ip();
        let dns = s.private_dns_name();
        let public = s.public_ip();
        let association =
            |w: &mut XmlWriter| render_association(w, public, s.address.as_deref(), true);
        w.field("networkInterfaceId", &s.id);
        w.opt_field("subnetId", spec.subnet_id.as_deref());
        w.opt_field("vpcId", spec.vpc_id.as_deref());
        w.field("availabilityZone", &spec.availability_zone);
        w.field(
            "description",
            spec.interface_description.as_deref().unwrap_or_default(),
        );
        w.field("ownerId", ACCOUNT_ID);
        w.field("requesterManaged", false);
        w.field("status", "in-use");
        w.field("macAddress", derived_mac(&instance.metadata.name));
        w.opt_field("privateIpAddress", private);
        w.opt_field("privateDnsName", dns.as_deref());
        w.field("sourceDestCheck", spec.options.source_dest_check);
        render_group_set(w, &spec.security_groups);
        s.render_attachment(w);
        association(w);
        w.empty("tagSet");
        w.set("privateIpAddressesSet", private, |w, ip| {
            w.field("privateIpAddress", ip);
            w.opt_field("privateDnsName", dns.as_deref());
            w.field("primary", true);
            association(w);
        });
        w.empty("ipv6AddressesSet");
        w.field("interfaceType", "interface");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::Describe;

    #[test]
    fn ids_are_checked_and_worded_as_ec2() {
        let q = QueryParams::from_query("NetworkInterfaceId.1=ni-1");
        let e = Describe::<NetworkInterfaceKind>::parse(&q).err().unwrap();
        assert_eq!(e.code, "InvalidNetworkInterfaceID.Malformed");
        assert_eq!(e.message, "Invalid id: \"ni-1\" (expecting \"eni-...\")");
        let e = NetworkInterfaceKind::IDS.not_found(&["eni-1"]);
        assert_eq!(e.code, "InvalidNetworkInterfaceID.NotFound");
        assert_eq!(e.message, "The networkInterface ID 'eni-1' does not exist");
    }
}
