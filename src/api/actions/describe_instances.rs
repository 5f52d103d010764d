//! `DescribeInstances`: the instance kind's Describe, its page grouped by reservation.

use std::sync::Arc;

use crate::api::addresses::HeldAddresses;
use crate::api::block_devices::InstanceVolumes;
use crate::api::error::ApiError;
use crate::api::kind::{Describe, Page};
use crate::api::kinds::instance::RenderedInstances;
use crate::api::kinds::InstanceKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::{Pieces, XmlWriter};
use crate::model::{Instance, ACCOUNT_ID};

/// `reservationSet` (one item per reservation, in first-appearance order) and `nextToken`.
/// Each instance's `item` comes from `rendered`, made again only when the instance changed.
pub fn render(
    resp: &Page<Arc<Instance>>,
    rendered: &RenderedInstances,
    held: &HeldAddresses,
    volumes: &InstanceVolumes,
) -> String {
    render_pieces(resp, rendered, held, volumes).concat()
}

/// [`render`]'s document in pieces: the instances' items are the cache's own, not copies.
pub fn render_pieces(
    resp: &Page<Arc<Instance>>,
    rendered: &RenderedInstances,
    held: &HeldAddresses,
    volumes: &InstanceVolumes,
) -> Pieces {
    let mut groups: Vec<(&str, Vec<&Arc<Instance>>)> = Vec::new();
    // Index by reservation: a thousand one-instance reservations must not cost n² lookups.
    let mut index = rustc_hash::FxHashMap::<&str, usize>::default();
    for instance in &resp.items {
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
    let fragments = rendered.fragments(&in_group_order, held, volumes);
    let mut out = Pieces::default();
    // The fragments were made in this same order, group by group.
    let mut next_fragment = fragments.iter();
    out.push_static("<reservationSet>");
    for (reservation, members) in &groups {
        let mut w = XmlWriter::with_capacity(192);
        w.fragment("<item>");
        w.field("reservationId", reservation);
        w.field("ownerId", ACCOUNT_ID);
        w.empty("groupSet");
        w.fragment("<instancesSet>");
        out.push_writer(w);
        for _ in members {
            out.push_shared(next_fragment.next().expect("one fragment per instance"));
        }
        out.push_static("</instancesSet></item>");
    }
    out.push_static("</reservationSet>");
    let mut w = XmlWriter::new();
    w.opt_field("nextToken", resp.next_token.as_deref());
    out.push_writer(w);
    out
}

/// Up to how many instances a page's Elastic IPs and volumes are looked up instance by instance
/// in the store's indexes rather than read whole (a filter that keeps 10 of 10,000 read all
/// 10,000 volume records for them).
const LOOKUPS_UP_TO: usize = 64;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(call_in_pieces(state, region, params)?.concat())
}

/// The dispatch entry the router uses: the answer in pieces, sent without joining them.
pub fn call_in_pieces(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<Pieces, ApiError> {
    let page = Describe::<InstanceKind>::parse(params)?.select(state, region)?;
    // A waiter polling one instance reads its own index entries only.
    let (held, volumes) = if page.items.len() <= LOOKUPS_UP_TO {
        let ids: Vec<&str> = page
            .items
            .iter()
            .map(|i| i.metadata.name.as_str())
            .collect();
        (
            HeldAddresses::of_instances(state, &ids)?,
            InstanceVolumes::of_instances(state, region, &ids)?,
        )
    } else {
        (
            HeldAddresses::read(state)?,
            state.rendered_instances.volumes(state, region)?,
        )
    };
    Ok(render_pieces(
        &page,
        &state.rendered_instances,
        &held,
        &volumes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::Kind;
    use crate::api::kinds::instance::{filter_values, Cursor};
    use crate::model::{fixtures, InstanceState};

    fn parse_str(q: &str) -> Result<Describe<InstanceKind>, ApiError> {
        Describe::parse(&QueryParams::from_query(q))
    }

    #[test]
    fn parses_ids_filters_and_paging() {
        let req = parse_str("InstanceId.1=i-00000001&Filter.1.Name=tag:Name&Filter.1.Value.1=web")
            .ok()
            .unwrap();
        assert_eq!(req.refs.len(), 1);
        assert_eq!(req.filters[0].name, "tag:Name");
        let req = parse_str("MaxResults=5").ok().unwrap();
        assert_eq!(req.max_results, Some(5));
    }

    #[test]
    fn paging_rules() {
        let e = parse_str("InstanceId.1=i-00000001&MaxResults=5")
            .err()
            .unwrap();
        assert_eq!(e.code, "InvalidParameterCombination");
        assert_eq!(
            e.message,
            "The parameter instancesSet cannot be used with the parameter maxResults"
        );
        let e = parse_str("MaxResults=4").err().unwrap();
        assert_eq!(
            e.message,
            "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."
        );
        assert_eq!(
            parse_str("MaxResults=1001").err().unwrap().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            parse_str("NextToken=%2A%2A%2A").err().unwrap().code,
            "InvalidNextToken"
        );
        assert_eq!(
            parse_str("NextToken=Zm9v").err().unwrap().code,
            "InvalidNextToken"
        );
    }

    #[test]
    fn unknown_filter() {
        let e = parse_str("Filter.1.Name=colour&Filter.1.Value.1=red")
            .err()
            .unwrap();
        assert_eq!(e.message, "The filter 'colour' is invalid");
    }

    #[test]
    fn cursor_round_trips() {
        let inst = fixtures::instance();
        let c = Cursor::of(&inst);
        assert_eq!(Cursor::parse(&c.text()).unwrap(), c);
    }

    #[test]
    fn every_listed_filter_is_answered() {
        let mut inst = fixtures::instance();
        inst.spec.tags.insert("Name".into(), "web".into());
        for name in InstanceKind::FILTERS {
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
            &Page {
                items: vec![a, b, c].into_iter().map(Arc::new).collect(),
                next_token: Some("tok".into()),
            },
            &RenderedInstances::default(),
            &HeldAddresses::default(),
            &InstanceVolumes::default(),
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
        let page = |items: Vec<Arc<Instance>>| Page {
            items,
            next_token: None,
        };
        // b comes after c but belongs to a's reservation: its item must land there.
        let first = render(
            &page(vec![a.clone(), c.clone(), b.clone()]),
            &rendered,
            &HeldAddresses::default(),
            &InstanceVolumes::default(),
        );
        let reservation_of_a = &first[..first.find(c.spec.reservation_id.as_str()).unwrap()];
        assert!(reservation_of_a.contains(&format!("<instanceId>{}</instanceId>", b.metadata.name)));
        // Unchanged objects: the same document from the cache.
        let uncached = render(
            &page(vec![a.clone(), c.clone(), b.clone()]),
            &RenderedInstances::default(),
            &HeldAddresses::default(),
            &InstanceVolumes::default(),
        );
        let again = render(
            &page(vec![a.clone(), c.clone(), b.clone()]),
            &rendered,
            &HeldAddresses::default(),
            &InstanceVolumes::default(),
        );
        assert_eq!(again, first);
        assert_eq!(again, uncached);
        // A new version of an instance (a new object) is rendered again, never served stale.
        let mut changed = (*c).clone();
        changed.spec.instance_type = "m5.large".into();
        let changed = Arc::new(changed);
        let after = render(
            &page(vec![a.clone(), changed, b.clone()]),
            &rendered,
            &HeldAddresses::default(),
            &InstanceVolumes::default(),
        );
        assert!(
            after.contains("<instanceType>m5.large</instanceType>"),
            "{after}"
        );
        assert!(!first.contains("m5.large"));
    }
}
