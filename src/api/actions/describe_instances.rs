//! `DescribeInstances`: the region's instances by id and filter, paginated, grouped by reservation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
use crate::api::ApiState;
use crate::model::{format_timestamp, Instance, InstanceId, InstanceState, ACCOUNT_ID};

use super::render::{private_dns_name, private_ip, public_ip, render_instance, ROOT_DEVICE_NAME};
use super::shared;

/// The filter names ec2d answers. Those about things ec2d does not model (spot, IAM profiles,
/// lifecycles) are accepted and match nothing, as for an instance without them.
pub const FILTERS: &[&str] = &[
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
    // Modelled as absent: match nothing.
    "instance-lifecycle",
    "iam-instance-profile.arn",
    "platform",
    "spot-instance-request-id",
];

/// Page sizes EC2 accepts.
const MAX_RESULTS: std::ops::RangeInclusive<i64> = 5..=1000;

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
    fn of(instance: &Instance) -> Self {
        Self {
            launched_nanos: launched_nanos(instance),
            reservation_id: instance.spec.reservation_id.to_string(),
            launch_index: instance.spec.ami_launch_index,
            instance_id: instance.metadata.name.clone(),
        }
    }

    /// An opaque token: the key, base64url-encoded, so it survives any query encoding.
    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}/{}/{}/{}",
            self.launched_nanos, self.reservation_id, self.launch_index, self.instance_id
        ))
    }

    /// Reads a token back; anything not made by [`Cursor::token`] is `InvalidNextToken`.
    pub fn parse(token: &str) -> Result<Self, ApiError> {
        let invalid =
            || ApiError::client("InvalidNextToken", "The specified NextToken is not valid.");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(4, '/');
        let mut next = || parts.next().ok_or_else(invalid);
        Ok(Self {
            launched_nanos: next()?.parse().map_err(|_| invalid())?,
            reservation_id: next()?.to_string(),
            launch_index: next()?.parse().map_err(|_| invalid())?,
            instance_id: next()?.to_string(),
        })
    }
}

/// A validated DescribeInstances request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `InstanceId.N`; empty means all.
    pub ids: Vec<InstanceId>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `MaxResults`.
    pub max_results: Option<usize>,
    /// `NextToken`, decoded.
    pub after: Option<Cursor>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// One page of instances.
#[derive(Debug, Clone)]
pub struct Response {
    /// The page, in launch order (shared with the store's decode cache).
    pub instances: Vec<Arc<Instance>>,
    /// The token of the next page, when there is one.
    pub next_token: Option<String>,
}

/// Parses and validates the request.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let ids = shared::instance_ids(params, false)?;
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    let max_results = params.int("MaxResults")?;
    if max_results.is_some() && !ids.is_empty() {
        return Err(ApiError::invalid_combination(
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    let max_results = match max_results {
        None => None,
        Some(n) if n < *MAX_RESULTS.start() => {
            return Err(ApiError::invalid_value(format!(
                "Value ( {n} ) for parameter maxResults is invalid. Expecting a value greater than 5."
            )))
        }
        Some(n) if n > *MAX_RESULTS.end() => {
            return Err(ApiError::invalid_value(format!(
                "Value ( {n} ) for parameter maxResults is invalid. Expecting a value less than or equal to 1000."
            )))
        }
        Some(n) => Some(usize::try_from(n).expect("within 5..=1000")),
    };
    let after = match params.get("NextToken").filter(|t| !t.is_empty()) {
        Some(token) => Some(Cursor::parse(token)?),
        None => None,
    };
    Ok(Request {
        ids,
        filters,
        max_results,
        after,
        dry_run: shared::dry_run(params)?,
    })
}

/// The instance's values for one filter name (empty: the filter cannot match).
pub fn filter_values(name: &str, instance: &Instance) -> Vec<String> {
    if let Some(values) = shared::tag_filter_values(name, &instance.spec.tags) {
        return values;
    }
    let shown = shared::shown_state(instance);
    let spec = &instance.spec;
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
        "instance-id" => one(&instance.metadata.name),
        "instance-state-name" => one(shown.name()),
        "instance-state-code" => vec![shown.code().to_string()],
        "image-id" => one(spec.image_id.as_str()),
        "instance-type" => one(&spec.instance_type),
        "reservation-id" => one(spec.reservation_id.as_str()),
        "availability-zone" => one(&spec.availability_zone),
        "private-ip-address" => private_ip(instance, shown)
            .map(str::to_string)
            .into_iter()
            .collect(),
        "ip-address" => public_ip(instance, shown)
            .map(str::to_string)
            .into_iter()
            .collect(),
        "private-dns-name" => private_ip(instance, shown)
            .map(|ip| private_dns_name(ip, &instance.metadata.namespace))
            .into_iter()
            .collect(),
        "ami-launch-index" => vec![spec.ami_launch_index.to_string()],
        "launch-time" => vec![format_timestamp(instance.metadata.creation_timestamp)],
        "owner-id" => one(ACCOUNT_ID),
        "architecture" => one("x86_64"),
        "root-device-type" => one("ebs"),
        "root-device-name" => one(ROOT_DEVICE_NAME),
        "virtualization-type" => one("hvm"),
        "hypervisor" => one("xen"),
        "tenancy" => one("default"),
        "monitoring-state" => one("disabled"),
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

/// Reads, filters, sorts and pages.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    let instances = shared::instances_by_ids_or_region(state, region, &req.ids)?;
    shared::check_dry_run(req.dry_run)?;
    // Launch order keeps a reservation's instances together and pages stable under inserts.
    // The timestamp is converted once per instance, not twice per comparison: that
    // conversion was most of the sort's time over a thousand instances.
    let mut keyed: Vec<(i128, Arc<Instance>)> = instances
        .into_iter()
        .filter(|i| filter::matches_all(&req.filters, |name| filter_values(name, i)))
        .filter(|i| match &req.after {
            Some(after) => Cursor::of(i) > *after,
            None => true,
        })
        .map(|i| (launched_nanos(&i), i))
        .collect();
    keyed.sort_by(|(a_at, a), (b_at, b)| a_at.cmp(b_at).then_with(|| tie_key(a).cmp(&tie_key(b))));
    let mut matching: Vec<Arc<Instance>> = keyed.into_iter().map(|(_, i)| i).collect();
    let next_token = match req.max_results {
        Some(max) if matching.len() > max => {
            matching.truncate(max);
            matching.last().map(|last| Cursor::of(last).token())
        }
        _ => None,
    };
    Ok(Response {
        instances: matching,
        next_token,
    })
}

/// `reservationSet` (one item per reservation, in first-appearance order) and `nextToken`.
/// Each instance's `item` comes from `rendered`, made again only when the instance changed.
pub fn render(resp: &Response, rendered: &RenderedInstances) -> String {
    let mut groups: Vec<(&str, Vec<&Arc<Instance>>)> = Vec::new();
    // Index by reservation: a thousand one-instance reservations must not cost n² lookups.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for instance in &resp.instances {
        let reservation = instance.spec.reservation_id.as_str();
        match index.get(reservation) {
            Some(&at) => groups[at].1.push(instance),
            None => {
                index.insert(reservation, groups.len());
                groups.push((reservation, vec![instance]));
            }
        }
    }
    let in_group_order: Vec<Arc<Instance>> = groups
        .iter()
        .flat_map(|(_, members)| members.iter().map(|i| Arc::clone(i)))
        .collect();
    let fragments = rendered.fragments(&in_group_order);
    let size: usize = fragments.iter().map(|f| f.len() + 16).sum();
    let mut w = XmlWriter::with_capacity(size + groups.len() * 160 + 64);
    let mut next_fragment = fragments.iter();
    w.set("reservationSet", &groups, |w, (reservation, members)| {
        w.field("reservationId", reservation);
        w.field("ownerId", ACCOUNT_ID);
        w.empty("groupSet");
        // The fragments were made in this same order, group by group.
        w.set("instancesSet", members, |w, _| {
            w.fragment(next_fragment.next().expect("one fragment per instance"))
        });
    });
    w.opt_field("nextToken", resp.next_token.as_deref());
    w.finish()
}

/// Each instance's rendered `RunningInstancesItemType`, kept while the store's decode cache
/// holds the very same object: the store hands out one shared object per version of an
/// instance's bytes, so an unchanged instance is never rendered twice, and a changed one
/// (a new object) always is. Rendering was most of DescribeInstances' time.
#[derive(Debug, Default)]
pub struct RenderedInstances {
    by_id: Mutex<HashMap<String, RenderedItem>>,
}

/// One instance's rendered item and the object version it was rendered from.
type RenderedItem = (Weak<Instance>, Arc<str>);

impl RenderedInstances {
    /// The fragments of `instances`, in order, rendering those not seen in this version.
    pub fn fragments(&self, instances: &[Arc<Instance>]) -> Vec<Arc<str>> {
        let mut by_id = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let fragments = instances
            .iter()
            .map(|instance| {
                if let Some((object, xml)) = by_id.get(&instance.metadata.name) {
                    if Weak::ptr_eq(object, &Arc::downgrade(instance)) {
                        return Arc::clone(xml);
                    }
                }
                let mut w = XmlWriter::with_capacity(3 * 1024);
                render_instance(&mut w, instance);
                let xml: Arc<str> = w.finish().into();
                by_id.insert(
                    instance.metadata.name.clone(),
                    (Arc::downgrade(instance), Arc::clone(&xml)),
                );
                xml
            })
            .collect();
        // Records collected since leave entries behind; drop them once they pile up.
        if by_id.len() > 2 * instances.len() + 256 {
            by_id.retain(|_, (object, _)| object.strong_count() > 0);
        }
        fragments
    }
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(
        &handle(state, region, parse(params)?)?,
        &state.rendered_instances,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn parses_ids_filters_and_paging() {
        let req = parse_str("InstanceId.1=i-00000001&Filter.1.Name=tag:Name&Filter.1.Value.1=web")
            .unwrap();
        assert_eq!(req.ids.len(), 1);
        assert_eq!(req.filters[0].name, "tag:Name");
        let req = parse_str("MaxResults=5").unwrap();
        assert_eq!(req.max_results, Some(5));
    }

    #[test]
    fn paging_rules() {
        let e = parse_str("InstanceId.1=i-00000001&MaxResults=5").unwrap_err();
        assert_eq!(e.code, "InvalidParameterCombination");
        assert_eq!(
            e.message,
            "The parameter instancesSet cannot be used with the parameter maxResults"
        );
        let e = parse_str("MaxResults=4").unwrap_err();
        assert_eq!(
            e.message,
            "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."
        );
        assert_eq!(
            parse_str("MaxResults=1001").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            parse_str("NextToken=%2A%2A%2A").unwrap_err().code,
            "InvalidNextToken"
        );
        assert_eq!(
            parse_str("NextToken=Zm9v").unwrap_err().code,
            "InvalidNextToken"
        );
    }

    #[test]
    fn unknown_filter() {
        let e = parse_str("Filter.1.Name=colour&Filter.1.Value.1=red").unwrap_err();
        assert_eq!(e.message, "The filter 'colour' is invalid");
    }

    #[test]
    fn cursor_round_trips() {
        let inst = fixtures::instance();
        let c = Cursor::of(&inst);
        assert_eq!(Cursor::parse(&c.token()).unwrap(), c);
    }

    #[test]
    fn every_listed_filter_is_answered() {
        let mut inst = fixtures::instance();
        inst.spec.tags.insert("Name".into(), "web".into());
        for name in FILTERS {
            // Must not panic; absent attributes just yield nothing.
            let _ = filter_values(name, &inst);
        }
        assert_eq!(filter_values("instance-state-name", &inst), vec!["pending"]);
        assert_eq!(filter_values("instance-state-code", &inst), vec!["0"]);
        assert_eq!(filter_values("tag:Name", &inst), vec!["web"]);
        assert!(filter_values("vpc-id", &inst).is_empty());
        assert!(filter_values("group-name", &inst).is_empty());
    }

    #[test]
    fn network_filters_read_the_spec() {
        let mut inst = fixtures::instance();
        inst.spec.vpc_id = Some("vpc-1".into());
        inst.spec.subnet_id = Some("subnet-1".into());
        inst.spec.key_name = Some("alice".into());
        inst.spec.client_token = Some("tok".into());
        inst.spec.security_groups = vec![
            crate::model::GroupRef {
                group_id: "sg-1".into(),
                group_name: "default".into(),
            },
            crate::model::GroupRef {
                group_id: "sg-2".into(),
                group_name: "web".into(),
            },
        ];
        assert_eq!(filter_values("vpc-id", &inst), vec!["vpc-1"]);
        assert_eq!(filter_values("subnet-id", &inst), vec!["subnet-1"]);
        assert_eq!(filter_values("key-name", &inst), vec!["alice"]);
        assert_eq!(filter_values("client-token", &inst), vec!["tok"]);
        assert_eq!(
            filter_values("instance.group-id", &inst),
            vec!["sg-1", "sg-2"]
        );
        assert_eq!(filter_values("group-name", &inst), vec!["default", "web"]);
        assert_eq!(
            filter_values("network-interface.subnet-id", &inst),
            vec!["subnet-1"]
        );
        inst.spec.desired = crate::model::DesiredState::Terminated;
        inst.status.state = Some(InstanceState::Terminated);
        assert!(filter_values("network-interface.subnet-id", &inst).is_empty());
        assert_eq!(filter_values("subnet-id", &inst), vec!["subnet-1"]);
    }

    #[test]
    fn render_groups_by_reservation() {
        let a = fixtures::instance();
        let mut b = fixtures::instance();
        b.spec.reservation_id = a.spec.reservation_id.clone();
        let c = fixtures::instance();
        let doc = render(
            &Response {
                instances: vec![a, b, c].into_iter().map(Arc::new).collect(),
                next_token: Some("tok".into()),
            },
            &RenderedInstances::default(),
        );
        assert_eq!(doc.matches("<reservationId>").count(), 2);
        assert_eq!(doc.matches("<instanceId>").count(), 3);
        assert!(doc.ends_with("<nextToken>tok</nextToken>"));
    }

    #[test]
    fn rendered_items_follow_their_reservation_and_the_objects_version() {
        let a = Arc::new(fixtures::instance());
        let c = Arc::new(fixtures::instance());
        let mut b = fixtures::instance();
        b.spec.reservation_id = a.spec.reservation_id.clone();
        let b = Arc::new(b);
        let rendered = RenderedInstances::default();
        let page = |instances: Vec<Arc<Instance>>| Response {
            instances,
            next_token: None,
        };
        // b comes after c but belongs to a's reservation: its item must land there.
        let first = render(&page(vec![a.clone(), c.clone(), b.clone()]), &rendered);
        let reservation_of_a = &first[..first.find(c.spec.reservation_id.as_str()).unwrap()];
        assert!(reservation_of_a.contains(&format!("<instanceId>{}</instanceId>", b.metadata.name)));
        // Unchanged objects: the same document from the cache.
        let uncached = render(
            &page(vec![a.clone(), c.clone(), b.clone()]),
            &RenderedInstances::default(),
        );
        let again = render(&page(vec![a.clone(), c.clone(), b.clone()]), &rendered);
        assert_eq!(again, first);
        assert_eq!(again, uncached);
        // A new version of an instance (a new object) is rendered again, never served stale.
        let mut changed = (*c).clone();
        changed.spec.instance_type = "m5.large".into();
        let changed = Arc::new(changed);
        let after = render(&page(vec![a.clone(), changed, b.clone()]), &rendered);
        assert!(
            after.contains("<instanceType>m5.large</instanceType>"),
            "{after}"
        );
        assert!(!first.contains("m5.large"));
    }
}
