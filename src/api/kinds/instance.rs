//! The instance kind: its filters, its order (launch order, so a reservation stays together), and each instance's rendered XML kept while it is unchanged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use crate::api::addresses::{public_dns_name, HeldAddresses};
use crate::api::block_devices::{block_device_values, root_device_name, InstanceVolumes};
use crate::api::error::ApiError;
use crate::api::filter::Filter;
use crate::api::iam_profiles::live_profile;
use crate::api::instance_options::monitoring_state;
use crate::api::instances::{instance_ids, region_instances, shown_state};
use crate::api::kind::{IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::render::{
    derived_id, derived_mac, private_dns_name, private_ip, public_ip, render_instance,
    transition_reason,
};
use crate::api::state::ApiState;
use crate::api::tags::tag_filter_values;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::region::zones;
use crate::model::{
    format_timestamp, Address, Instance, InstanceId, InstanceState, Volume, ACCOUNT_ID,
};
use crate::model::{InstanceSpec, InstanceStatus};
use crate::store::{SpecStore, Specs};

/// Instances.
pub struct InstanceKind;

impl Kind for InstanceKind {
    /// Shared with the store's decode cache: listing copies no instance.
    type Item = Arc<Instance>;
    type Ref = InstanceId;
    /// The Elastic IPs instances hold and the volumes attached to them (the address and
    /// `block-device-mapping.*` filters read them).
    type Context = InstanceContext;
    type Cursor = Cursor;

    const IDS: IdRules = IdRules {
        noun: "instance",
        prefix: InstanceId::PREFIX,
        malformed: "InvalidInstanceID.Malformed",
        not_found: "InvalidInstanceID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("instance");
    /// Those about things ec2d does not model (spot, IAM profiles, lifecycles) are accepted and
    /// match nothing, as for an instance without them.
    const FILTERS: &'static [&'static str] = &[
        "instance-id",
        "instance-state-name",
        "instance-state-code",
        "image-id",
        "instance-type",
        "reservation-id",
        "availability-zone",
        "private-ip-address",
        "ip-address",
        "private-dns-name",
        "dns-name",
        "ami-launch-index",
        "launch-time",
        "owner-id",
        "architecture",
        "root-device-type",
        "root-device-name",
        "virtualization-type",
        "hypervisor",
        "tenancy",
        "monitoring-state",
        "platform-details",
        "state-reason-code",
        "tag-key",
        "tag-value",
        "vpc-id",
        "subnet-id",
        "key-name",
        "instance.group-id",
        "instance.group-name",
        "group-id",
        "group-name",
        "client-token",
        "network-interface.subnet-id",
        "network-interface.vpc-id",
        "network-interface.group-id",
        "network-interface.group-name",
        // Every other name of the API reference's list. Those ec2d shows a value for answer
        // it; those about what ec2d does not model (host placement, ENI
        // associations, IPv6, Outposts, …) are accepted and match nothing, as an instance
        // without that attribute does in EC2.
        "affinity",
        "availability-zone-id",
        "block-device-mapping.attach-time",
        "block-device-mapping.delete-on-termination",
        "block-device-mapping.device-name",
        "block-device-mapping.status",
        "block-device-mapping.volume-id",
        "boot-mode",
        "capacity-reservation-id",
        "capacity-reservation-specification.capacity-reservation-preference",
        "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id",
        "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-resource-group-arn",
        "current-instance-boot-mode",
        "ebs-optimized",
        "ena-support",
        "enclave-options.enabled",
        "hibernation-options.configured",
        "host-id",
        "iam-instance-profile.arn",
        "iam-instance-profile.id",
        "instance-lifecycle",
        "ipv6-address",
        "kernel-id",
        "launch-index",
        "license-pool",
        "maintenance-options.auto-recovery",
        "metadata-options.http-endpoint",
        "metadata-options.http-protocol-ipv4",
        "metadata-options.http-protocol-ipv6",
        "metadata-options.http-put-response-hop-limit",
        "metadata-options.http-tokens",
        "metadata-options.instance-metadata-tags",
        "network-interface.addresses.association.allocation-id",
        "network-interface.addresses.association.association-id",
        "network-interface.addresses.association.carrier-ip",
        "network-interface.addresses.association.customer-owned-ip",
        "network-interface.addresses.association.ip-owner-id",
        "network-interface.addresses.association.public-dns-name",
        "network-interface.addresses.association.public-ip",
        "network-interface.addresses.primary",
        "network-interface.addresses.private-dns-name",
        "network-interface.addresses.private-ip-address",
        "network-interface.association.allocation-id",
        "network-interface.association.association-id",
        "network-interface.association.carrier-ip",
        "network-interface.association.customer-owned-ip",
        "network-interface.association.ip-owner-id",
        "network-interface.association.public-dns-name",
        "network-interface.association.public-ip",
        "network-interface.attachment.attach-time",
        "network-interface.attachment.attachment-id",
        "network-interface.attachment.delete-on-termination",
        "network-interface.attachment.device-index",
        "network-interface.attachment.instance-id",
        "network-interface.attachment.instance-owner-id",
        "network-interface.attachment.network-card-index",
        "network-interface.attachment.status",
        "network-interface.availability-zone",
        "network-interface.deny-all-igw-traffic",
        "network-interface.description",
        "network-interface.ipv4-prefixes.ipv4-prefix",
        "network-interface.ipv6-address",
        "network-interface.ipv6-address-only",
        "network-interface.ipv6-addresses.ipv6-address",
        "network-interface.ipv6-addresses.is-primary-ipv6",
        "network-interface.ipv6-native",
        "network-interface.ipv6-prefixes.ipv6-prefix",
        "network-interface.mac-address",
        "network-interface.network-interface-id",
        "network-interface.outpost-arn",
        "network-interface.owner-id",
        "network-interface.private-dns-name",
        "network-interface.private-ip-address",
        "network-interface.public-dns-name",
        "network-interface.requester-id",
        "network-interface.requester-managed",
        "network-interface.source-dest-check",
        "network-interface.status",
        "network-interface.tag-key",
        "network-interface.tag-value",
        "network-performance-options.bandwidth-weighting",
        "outpost-arn",
        "placement-group-name",
        "placement-partition-number",
        "platform",
        "private-dns-name-options.enable-resource-name-dns-a-record",
        "private-dns-name-options.enable-resource-name-dns-aaaa-record",
        "private-dns-name-options.hostname-type",
        "product-code",
        "product-code.type",
        "ramdisk-id",
        "reason",
        "requester-id",
        "source-dest-check",
        "spot-instance-request-id",
        "state-reason-message",
        "tpm-support",
        "update-time",
        "usage-operation",
        "usage-operation-update-time",
    ];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: Some(
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ),
        wording: SizeWording::Bounds,
    });
    const SET: &'static str = "instancesSet";

    fn id(item: &Arc<Instance>) -> &str {
        &item.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<InstanceId>, ApiError> {
        instance_ids(params, false)
    }

    fn find(
        state: &ApiState,
        region: &str,
        id: &InstanceId,
    ) -> Result<Option<Arc<Instance>>, ApiError> {
        // Shared with the store's decode cache: a waiter's poll reuses the rendered XML.
        Ok(state
            .store
            .instances()
            .get_shared(id.as_str())?
            .filter(|i| i.metadata.namespace == region))
    }

    const LISTED_IN_ORDER: bool = true;

    fn list(state: &ApiState, region: &str) -> Result<Vec<Arc<Instance>>, ApiError> {
        state.rendered_instances.in_order(state, region)
    }

    fn list_tagged(
        state: &ApiState,
        region: &str,
        tag: &str,
        values: &[&str],
    ) -> Result<Option<Vec<Arc<Instance>>>, ApiError> {
        Ok(state
            .store
            .instances()
            .list_tagged(tag, values)?
            .map(|found| {
                found
                    .into_iter()
                    .filter(|i| i.metadata.namespace == region)
                    .collect()
            }))
    }

    fn context(state: &ApiState, region: &str) -> Result<InstanceContext, ApiError> {
        Ok(InstanceContext {
            held: HeldAddresses::read(state)?,
            volumes: state.rendered_instances.volumes(state, region)?,
        })
    }

    /// A filter by tag or state reads neither the Elastic IPs nor the volumes: reading them
    /// was most of a filtered Describe over 10,000 instances.
    fn context_for(
        state: &ApiState,
        region: &str,
        filters: &[Filter],
    ) -> Result<InstanceContext, ApiError> {
        let reads = |what: fn(&str) -> bool| filters.iter().any(|f| what(&f.name));
        Ok(InstanceContext {
            held: if reads(reads_addresses) {
                HeldAddresses::read(state)?
            } else {
                HeldAddresses::default()
            },
            volumes: if reads(|name| name.starts_with("block-device-mapping.")) {
                state.rendered_instances.volumes(state, region)?
            } else {
                InstanceVolumes::default()
            },
        })
    }

    fn tags(item: &Arc<Instance>) -> Option<&BTreeMap<String, String>> {
        Some(&item.spec.tags)
    }

    fn values(name: &str, item: &Arc<Instance>, context: &InstanceContext) -> Vec<String> {
        if let Some(field) = name.strip_prefix("block-device-mapping.") {
            return block_device_values(field, item, context.volumes.of(&item.metadata.name));
        }
        match context.held.of(item) {
            Some(address) => {
                eip_filter_values(name, item, address).unwrap_or_else(|| filter_values(name, item))
            }
            None => filter_values(name, item),
        }
    }

    /// Launch order keeps a reservation's instances together and pages stable under inserts.
    /// The timestamp is converted once per instance, not twice per comparison: that
    /// conversion was most of the sort's time over a thousand instances.
    fn sort(items: &mut [Arc<Instance>]) {
        let mut keyed: Vec<(i128, Arc<Instance>)> = items
            .iter()
            .map(|i| (launched_nanos(i), Arc::clone(i)))
            .collect();
        keyed.sort_by(|(a_at, a), (b_at, b)| {
            a_at.cmp(b_at).then_with(|| tie_key(a).cmp(&tie_key(b)))
        });
        for (slot, (_, instance)) in items.iter_mut().zip(keyed) {
            *slot = instance;
        }
    }

    fn cursor(item: &Arc<Instance>) -> String {
        Cursor::of(item).text()
    }

    fn parse_cursor(text: &str) -> Option<Cursor> {
        Cursor::parse(text)
    }

    fn after(item: &Arc<Instance>, cursor: &Cursor) -> bool {
        Cursor::of(item) > *cursor
    }

    /// Unused by DescribeInstances, which renders through [`RenderedInstances`] with the
    /// Elastic IPs instances hold; this renders an instance as holding none.
    fn render(w: &mut XmlWriter, item: &Arc<Instance>) {
        render_instance(w, item, None, &[]);
    }
}

/// What the instance filters read beyond each instance's own record, read once per request
/// that filters.
#[derive(Debug, Default)]
pub struct InstanceContext {
    /// The Elastic IPs instances hold.
    pub held: HeldAddresses,
    /// The volume records attached to instances.
    pub volumes: InstanceVolumes,
}

/// Where a page ends: the sort key of its last instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    launched_nanos: i128,
    reservation_id: String,
    launch_index: u32,
    instance_id: String,
}

/// The first field of [`Cursor`]'s order.
fn launched_nanos(instance: &Instance) -> i128 {
    instance.metadata.creation_timestamp.unix_timestamp_nanos()
}

/// The rest of [`Cursor`]'s order, over borrowed fields: sorting builds no strings.
fn tie_key(instance: &Instance) -> (&str, u32, &str) {
    (
        instance.spec.reservation_id.as_str(),
        instance.spec.ami_launch_index,
        instance.metadata.name.as_str(),
    )
}

impl Cursor {
    /// The cursor of a page ending at `instance`.
    pub fn of(instance: &Instance) -> Self {
        Self {
            launched_nanos: launched_nanos(instance),
            reservation_id: instance.spec.reservation_id.to_string(),
            launch_index: instance.spec.ami_launch_index,
            instance_id: instance.metadata.name.clone(),
        }
    }

    /// The cursor as text (the paging module makes it an opaque token).
    pub fn text(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.launched_nanos, self.reservation_id, self.launch_index, self.instance_id
        )
    }

    /// Reads a cursor back; `None` for anything [`Cursor::text`] did not make.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(4, '/');
        Some(Self {
            launched_nanos: parts.next()?.parse().ok()?,
            reservation_id: parts.next()?.to_string(),
            launch_index: parts.next()?.parse().ok()?,
            instance_id: parts.next()?.to_string(),
        })
    }
}

/// The instance's values for one filter name (empty: the filter cannot match).
pub fn filter_values(name: &str, instance: &Instance) -> Vec<String> {
    if let Some(values) = tag_filter_values(name, &instance.spec.tags) {
        return values;
    }
    let shown = shown_state(instance);
    let spec = &instance.spec;
    let options = &spec.options;
    let one = |s: &str| vec![s.to_string()];
    let opt = |s: &Option<String>| s.iter().cloned().collect::<Vec<_>>();
    let group_ids = || {
        spec.security_groups
            .iter()
            .map(|g| g.group_id.clone())
            .collect()
    };
    let group_names = || {
        spec.security_groups
            .iter()
            .map(|g| g.group_name.clone())
            .collect()
    };
    let private_ips = || -> Vec<String> {
        private_ip(instance, shown)
            .map(str::to_string)
            .into_iter()
            .collect()
    };
    let public_ips = || -> Vec<String> {
        public_ip(instance, shown)
            .map(str::to_string)
            .into_iter()
            .collect()
    };
    let private_dns_names = || -> Vec<String> {
        private_ip(instance, shown)
            .map(|ip| private_dns_name(ip, &instance.metadata.namespace))
            .into_iter()
            .collect()
    };
    // The interface exists only while the instance is not terminated (as rendered).
    let interface = spec.subnet_id.is_some() && shown != InstanceState::Terminated;
    match name {
        "vpc-id" => opt(&spec.vpc_id),
        "subnet-id" => opt(&spec.subnet_id),
        "key-name" => opt(&spec.key_name),
        "client-token" => opt(&spec.client_token),
        "group-id" | "instance.group-id" => group_ids(),
        "group-name" | "instance.group-name" => group_names(),
        "network-interface.subnet-id" if interface => opt(&spec.subnet_id),
        "network-interface.vpc-id" if interface => opt(&spec.vpc_id),
        "network-interface.group-id" if interface => group_ids(),
        "network-interface.group-name" if interface => group_names(),
        "network-interface.private-ip-address"
        | "network-interface.addresses.private-ip-address"
            if interface =>
        {
            private_ips()
        }
        "network-interface.private-dns-name" | "network-interface.addresses.private-dns-name"
            if interface =>
        {
            private_dns_names()
        }
        "network-interface.association.public-ip"
        | "network-interface.addresses.association.public-ip"
            if interface =>
        {
            public_ips()
        }
        "network-interface.network-interface-id" if interface => {
            one(&derived_id("eni", &instance.metadata.name))
        }
        "network-interface.attachment.attachment-id" if interface => {
            one(&derived_id("eni-attach", &instance.metadata.name))
        }
        "network-interface.mac-address" if interface => one(&derived_mac(&instance.metadata.name)),
        "network-interface.attachment.instance-id" if interface => one(&instance.metadata.name),
        "network-interface.owner-id" | "network-interface.attachment.instance-owner-id"
            if interface =>
        {
            one(ACCOUNT_ID)
        }
        "network-interface.availability-zone" if interface => one(&spec.availability_zone),
        "network-interface.status" if interface => one("in-use"),
        "network-interface.attachment.status" if interface => one("attached"),
        "network-interface.attachment.device-index"
        | "network-interface.attachment.network-card-index"
            if interface =>
        {
            one("0")
        }
        "network-interface.attachment.delete-on-termination"
        | "network-interface.addresses.primary"
            if interface =>
        {
            one("true")
        }
        "network-interface.source-dest-check" if interface => {
            one(&options.source_dest_check.to_string())
        }
        "network-interface.requester-managed" if interface => one("false"),
        "network-interface.description" if interface => one(""),
        "instance-id" => one(&instance.metadata.name),
        "instance-state-name" => one(shown.name()),
        "instance-state-code" => vec![shown.code().to_string()],
        "image-id" => one(spec.image_id.as_str()),
        "instance-type" => one(&spec.instance_type),
        "reservation-id" => one(spec.reservation_id.as_str()),
        "availability-zone" => one(&spec.availability_zone),
        "private-ip-address" => private_ips(),
        "ip-address" => public_ips(),
        "private-dns-name" => private_dns_names(),
        "ami-launch-index" | "launch-index" => vec![spec.ami_launch_index.to_string()],
        "availability-zone-id" => zones(&instance.metadata.namespace)
            .into_iter()
            .filter(|z| z.name == spec.availability_zone)
            .map(|z| z.id)
            .collect(),
        "reason" => one(&transition_reason(instance, shown)),
        "source-dest-check" => one(&options.source_dest_check.to_string()),
        "ena-support" => one("true"),
        "ebs-optimized" => one(&options.ebs_optimized.to_string()),
        "boot-mode" | "current-instance-boot-mode" => one("legacy-bios"),
        "usage-operation" => one("RunInstances"),
        "metadata-options.http-endpoint" => one(options.metadata.http_endpoint.as_str()),
        "metadata-options.http-protocol-ipv4" => one("enabled"),
        "metadata-options.http-protocol-ipv6" => one(options.metadata.http_protocol_ipv6.as_str()),
        "metadata-options.instance-metadata-tags" => {
            one(options.metadata.instance_metadata_tags.as_str())
        }
        "metadata-options.http-put-response-hop-limit" => {
            vec![options.metadata.hop_limit.to_string()]
        }
        "metadata-options.http-tokens" => one(options.metadata.http_tokens.as_str()),
        "hibernation-options.configured" => one(&options.hibernation.to_string()),
        "enclave-options.enabled" => one(&options.enclave.to_string()),
        "maintenance-options.auto-recovery" => one(if options.auto_recovery_disabled {
            "disabled"
        } else {
            "default"
        }),
        "capacity-reservation-specification.capacity-reservation-preference" => one("open"),
        "private-dns-name-options.hostname-type" => one(options.private_dns.hostname_type.as_str()),
        "private-dns-name-options.enable-resource-name-dns-a-record" => {
            one(&options.private_dns.a_record.to_string())
        }
        "private-dns-name-options.enable-resource-name-dns-aaaa-record" => {
            one(&options.private_dns.aaaa_record.to_string())
        }
        "launch-time" => vec![format_timestamp(instance.metadata.creation_timestamp)],
        "owner-id" => one(ACCOUNT_ID),
        "architecture" => one("x86_64"),
        "root-device-type" => one("ebs"),
        "root-device-name" => one(root_device_name(instance)),
        "virtualization-type" => one("hvm"),
        "hypervisor" => one("xen"),
        "iam-instance-profile.arn" => live_profile(instance)
            .map(|p| p.arn.clone())
            .into_iter()
            .collect(),
        "iam-instance-profile.id" => live_profile(instance)
            .map(|p| p.id.clone())
            .into_iter()
            .collect(),
        "tenancy" => one("default"),
        "monitoring-state" => one(monitoring_state(instance)),
        "platform-details" => one("Linux/UNIX"),
        "state-reason-code" => instance
            .status
            .state_reason
            .as_ref()
            .map(|r| r.code.clone())
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the filter may read the Elastic IP an instance holds (a superset of the names
/// [`eip_filter_values`] answers: every interface filter is taken to).
fn reads_addresses(name: &str) -> bool {
    matches!(name, "ip-address" | "dns-name") || name.starts_with("network-interface.")
}

/// The values of the filters an Elastic IP answers for an instance that holds `address`;
/// `None` for the other filters.
fn eip_filter_values(name: &str, instance: &Instance, address: &Address) -> Option<Vec<String>> {
    let public_ip = &address.spec.public_ip;
    let interface = instance.spec.subnet_id.is_some();
    let association = address.spec.association.as_ref()?;
    let values = match name {
        "ip-address" => vec![public_ip.clone()],
        "dns-name" => vec![public_dns_name(public_ip, &instance.metadata.namespace)],
        "network-interface.association.public-ip"
        | "network-interface.addresses.association.public-ip"
            if interface =>
        {
            vec![public_ip.clone()]
        }
        "network-interface.association.ip-owner-id"
        | "network-interface.addresses.association.ip-owner-id"
            if interface =>
        {
            vec![ACCOUNT_ID.to_string()]
        }
        "network-interface.association.public-dns-name"
        | "network-interface.addresses.association.public-dns-name"
        | "network-interface.public-dns-name"
            if interface =>
        {
            vec![public_dns_name(public_ip, &instance.metadata.namespace)]
        }
        "network-interface.association.allocation-id"
        | "network-interface.addresses.association.allocation-id"
            if interface =>
        {
            vec![address.metadata.name.clone()]
        }
        "network-interface.association.association-id"
        | "network-interface.addresses.association.association-id"
            if interface =>
        {
            vec![association.association_id.clone()]
        }
        _ => return None,
    };
    Some(values)
}

/// Each instance's rendered `RunningInstancesItemType`, kept while the store's decode cache
/// holds the very same object: the store hands out one shared object per version of an
/// instance's bytes, so an unchanged instance is never rendered twice, and a changed one
/// (a new object) always is. Rendering was most of DescribeInstances' time. The Elastic IP an
/// instance holds and its volumes are kept in other records, so an item is reused only with
/// the very same version of that address record (or with none, as rendered) and of each of
/// those volume records: an association, a move, a disassociation, an attachment or a
/// `deleteOnTermination` change shows at once.
#[derive(Debug, Default)]
pub struct RenderedInstances {
    by_id: Mutex<Items>,
    /// The region's instances in the kind's order, kept while the instance listing is unchanged
    /// (sorting 10,000 instances was a tenth of a Describe of all of them).
    in_order: Mutex<Option<Derived<Vec<Arc<Instance>>>>>,
    /// The region's volumes by instance, kept while the volume listing is unchanged (grouping
    /// 10,000 volumes was a fifth of a Describe of all instances).
    volumes: Mutex<Option<Derived<InstanceVolumes>>>,
}

/// What was made from a listing: the listing's version and the region it is of.
#[derive(Debug)]
struct Derived<T> {
    version: u64,
    region: String,
    made: T,
}

/// The kept value when it was made from listing `version` of `region`, else a new one from `make`.
fn derived<T: Clone, E>(
    slot: &Mutex<Option<Derived<T>>>,
    version: u64,
    region: &str,
    make: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    {
        let kept = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = kept
            .as_ref()
            .filter(|k| k.version == version && k.region == region)
        {
            return Ok(kept.made.clone());
        }
    }
    let made = make()?;
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(Derived {
        version,
        region: region.to_string(),
        made: made.clone(),
    });
    Ok(made)
}

/// The rendered items by instance id, and how many ids were added since entries of collected
/// records were last swept out. The sweep walks every entry, so it runs once the additions
/// reach an eighth of the map (at least [`SWEEP_AFTER_ADDED`]): a constant walk per added
/// item, and at most that many dead items held. Sweeping whenever the map outgrew the page
/// made every one-instance Describe (a waiter's poll) walk all 10,000 entries, 40% of its
/// time; sweeping only once the map had doubled held up to as many dead items as live ones,
/// plus 256.
#[derive(Debug, Default)]
struct Items {
    map: rustc_hash::FxHashMap<String, RenderedItem>,
    added_since_sweep: usize,
}

/// The fewest additions between two sweeps of the rendered items.
const SWEEP_AFTER_ADDED: usize = 64;

/// One instance's rendered item, the object version it was rendered from and those of the
/// Elastic IP it held and the volumes that named it then.
type RenderedItem = (
    Weak<Instance>,
    Option<Weak<Address>>,
    Vec<Weak<Volume>>,
    Arc<str>,
);

/// Whether `was` are the very versions `is` holds, in order.
fn same_volumes(was: &[Weak<Volume>], is: &[Arc<Volume>]) -> bool {
    was.len() == is.len()
        && was
            .iter()
            .zip(is)
            .all(|(was, is)| Weak::ptr_eq(was, &Arc::downgrade(is)))
}

impl RenderedInstances {
    /// The region's instances in the kind's order.
    pub fn in_order(&self, state: &ApiState, region: &str) -> Result<Vec<Arc<Instance>>, ApiError> {
        let version = state.store.instances().listing_version()?;
        derived(&self.in_order, version, region, || {
            let mut instances = region_instances(state, region)?;
            <InstanceKind as Kind>::sort(&mut instances);
            Ok(instances)
        })
    }

    /// The region's volumes by instance.
    pub fn volumes(&self, state: &ApiState, region: &str) -> Result<InstanceVolumes, ApiError> {
        let version = state.store.volumes().listing_version()?;
        derived(&self.volumes, version, region, || {
            InstanceVolumes::read(state, region).map_err(ApiError::from)
        })
    }

    /// The `<item>`s of `instances`, in order, rendering those not seen in this version.
    pub fn fragments(
        &self,
        instances: &[Arc<Instance>],
        held: &HeldAddresses,
        volumes: &InstanceVolumes,
    ) -> Vec<Arc<str>> {
        let mut items = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let Items {
            map: by_id,
            added_since_sweep,
        } = &mut *items;
        let fragments = instances
            .iter()
            .map(|instance| {
                let eip = held.of(instance);
                let its_volumes = volumes.of(&instance.metadata.name);
                if let Some((object, address, was_volumes, xml)) =
                    by_id.get(&instance.metadata.name)
                {
                    let same_address = match (address, eip) {
                        (None, None) => true,
                        (Some(was), Some(is)) => Weak::ptr_eq(was, &Arc::downgrade(is)),
                        _ => false,
                    };
                    if same_address
                        && same_volumes(was_volumes, its_volumes)
                        && Weak::ptr_eq(object, &Arc::downgrade(instance))
                    {
                        return Arc::clone(xml);
                    }
                }
                // The whole `<item>`, so an answer sends one piece per instance.
                let mut w = XmlWriter::with_capacity(3 * 1024);
                w.fragment("<item>");
                render_instance(&mut w, instance, eip.map(|a| &**a), its_volumes);
                w.fragment("</item>");
                let xml: Arc<str> = w.finish().into();
                let replaced = by_id.insert(
                    instance.metadata.name.clone(),
                    (
                        Arc::downgrade(instance),
                        eip.map(Arc::downgrade),
                        its_volumes.iter().map(Arc::downgrade).collect(),
                        Arc::clone(&xml),
                    ),
                );
                if replaced.is_none() {
                    *added_since_sweep += 1;
                }
                xml
            })
            .collect();
        // Records collected since leave entries behind; drop them once enough were added.
        if *added_since_sweep >= SWEEP_AFTER_ADDED.max(by_id.len() / 8) {
            by_id.retain(|_, (object, _, _, _)| object.strong_count() > 0);
            *added_since_sweep = 0;
        }
        fragments
    }
}
impl Tagged for InstanceKind {
    type Spec = InstanceSpec;
    type Status = InstanceStatus;

    fn collection(store: &SpecStore) -> Specs<'_, InstanceSpec, InstanceStatus> {
        store.instances()
    }

    fn spec_tags(spec: &InstanceSpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut InstanceSpec) -> &mut Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        Ok(InstanceId::parse(id)?.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    fn launched(n: usize) -> Vec<Arc<Instance>> {
        (0..n)
            .map(|_| {
                let mut instance = fixtures::instance();
                instance.metadata.name = crate::model::InstanceId::generate().to_string();
                Arc::new(instance)
            })
            .collect()
    }

    fn cached(rendered: &RenderedInstances) -> usize {
        rendered.by_id.lock().unwrap().map.len()
    }

    #[test]
    fn items_of_collected_instances_are_swept_within_a_bounded_number_of_additions() {
        let rendered = RenderedInstances::default();
        let (held, volumes) = (HeldAddresses::default(), InstanceVolumes::default());
        let live = launched(100);
        rendered.fragments(&live, &held, &volumes);
        // A soak's churn: one instance launched and one collected at a time, each shown once.
        let mut most = 0;
        for _ in 0..1_000 {
            let new = launched(1);
            rendered.fragments(&new, &held, &volumes);
            most = most.max(cached(&rendered));
            drop(new);
        }
        assert!(
            most <= 100 + SWEEP_AFTER_ADDED + 1,
            "at most {SWEEP_AFTER_ADDED} dead items held beside the live ones, saw {most}"
        );
        // The live ones stay cached: showing them again renders nothing new.
        let again = rendered.fragments(&live, &held, &volumes);
        let items = rendered.by_id.lock().unwrap();
        for (instance, xml) in live.iter().zip(&again) {
            assert!(Arc::ptr_eq(&items.map[&instance.metadata.name].3, xml));
        }
    }

    #[test]
    fn a_large_cache_is_swept_after_an_eighth_of_its_size_is_added() {
        let rendered = RenderedInstances::default();
        let (held, volumes) = (HeldAddresses::default(), InstanceVolumes::default());
        let live = launched(2_000);
        rendered.fragments(&live, &held, &volumes);
        let gone = launched(SWEEP_AFTER_ADDED * 2);
        rendered.fragments(&gone, &held, &volumes);
        drop(gone);
        assert_eq!(
            cached(&rendered),
            2_000 + SWEEP_AFTER_ADDED * 2,
            "128 additions are under an eighth of 2,000: no sweep yet"
        );
        for _ in 0..2_000 / 8 {
            rendered.fragments(&launched(1), &held, &volumes);
        }
        assert!(
            cached(&rendered) < 2_000 + 2_000 / 8,
            "swept: {} cached",
            cached(&rendered)
        );
    }
}
