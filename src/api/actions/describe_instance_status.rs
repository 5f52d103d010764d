//! `DescribeInstanceStatus`: the status checks of the region's instances (what `aws ec2 wait instance-status-ok` polls).
//!
//! ec2d has no hardware to check: a running instance's container is up, so every check passes
//! (system, instance and attached EBS: `ok`, reachability `passed`); any other state has no
//! checks (`not-applicable`). ec2d schedules no events and manages no instance for a service
//! (`operator.managed` is false), so the `event.*` filters match nothing. By default only running
//! instances are listed, as in EC2; `IncludeAllInstances` lists all.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::block_devices::InstanceVolumes;
use crate::api::error::ApiError;
use crate::api::instances::{instance_ids, region_instances, shown_state};
use crate::api::kind::{ordered_by_id, render_page, Describe, IdRules, Kind, Paging};
use crate::api::kinds::InstanceKind;
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::render::render_state;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::region;
use crate::model::volume::attachment_in_force;
use crate::model::{Instance, InstanceId, InstanceState};

/// One instance's checks.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusItem {
    /// The instance.
    pub instance: Arc<Instance>,
    /// The state a client sees.
    pub state: InstanceState,
    /// The id of the instance's zone (`use1-az1`), when its region has that zone.
    pub zone_id: Option<String>,
    /// A volume attached to it is in `error` (its data removed behind ec2d's back): the
    /// attached EBS check fails, as EC2's does for an unreachable volume.
    pub ebs_impaired: bool,
    /// The engine the instance runs on is unreachable (several engines configured): the
    /// system check fails, and nothing is known of the instance inside; its state stays.
    pub host_impaired: bool,
}

impl StatusItem {
    /// The checks of an instance, in the state a client sees, given the volume records
    /// naming it.
    fn of(state: &ApiState, instance: Arc<Instance>, volumes: &InstanceVolumes) -> Self {
        let in_force = attachment_in_force(Some(&instance));
        let ebs_impaired = in_force
            && volumes
                .of(&instance.metadata.name)
                .iter()
                .any(|v| v.status.error.is_some());
        let host_impaired = state.introspection.instance_host_impaired(
            &instance.spec.availability_zone,
            instance.status.engine.as_deref(),
            instance.status.container.is_some(),
        );
        Self {
            state: shown_state(&instance),
            zone_id: zone_id(&instance),
            ebs_impaired,
            host_impaired,
            instance,
        }
    }

    /// The attached EBS check: `impaired` with a failed reachability when a volume is in
    /// error, else as the other checks.
    fn ebs_check(&self) -> (&'static str, Option<&'static str>) {
        if self.ebs_impaired && self.state == InstanceState::Running {
            ("impaired", Some("failed"))
        } else {
            (self.check(), self.reachability())
        }
    }

    /// The system check: `impaired`, reachability `failed`, for a running instance whose
    /// engine is unreachable; else as [`Self::check`].
    fn system_check(&self) -> (&'static str, Option<&'static str>) {
        if self.host_impaired && self.state == InstanceState::Running {
            ("impaired", Some("failed"))
        } else {
            (self.check(), self.reachability())
        }
    }

    /// The instance check: `insufficient-data` for a running instance whose engine is
    /// unreachable (nothing can look inside it); else as [`Self::check`].
    fn instance_check(&self) -> (&'static str, Option<&'static str>) {
        if self.host_impaired && self.state == InstanceState::Running {
            ("insufficient-data", Some("insufficient-data"))
        } else {
            (self.check(), self.reachability())
        }
    }

    /// `ok` for a running instance, `not-applicable` otherwise (both checks alike).
    fn check(&self) -> &'static str {
        if self.state == InstanceState::Running {
            "ok"
        } else {
            "not-applicable"
        }
    }

    /// The reachability check's result, when there is one.
    fn reachability(&self) -> Option<&'static str> {
        (self.state == InstanceState::Running).then_some("passed")
    }
}

/// The instances' checks as a Describe sees them: the instance kind's ids and errors, its own
/// filters, items and set.
pub struct InstanceStatusKind;

impl Kind for InstanceStatusKind {
    type Item = StatusItem;
    type Ref = InstanceId;
    type Context = ();
    ordered_by_id!(StatusItem, |text: &str| InstanceId::parse(text).is_ok());

    const IDS: IdRules = InstanceKind::IDS;
    const TAG_TYPE: Option<&'static str> = None;
    /// The filter names EC2 documents for instance status.
    const FILTERS: &'static [&'static str] = &[
        "availability-zone",
        "availability-zone-id",
        "event.code",
        "event.description",
        "event.instance-event-id",
        "event.not-after",
        "event.not-before",
        "event.not-before-deadline",
        "instance-state-name",
        "instance-state-code",
        "instance-status.status",
        "instance-status.reachability",
        "operator.managed",
        "operator.principal",
        "system-status.status",
        "system-status.reachability",
        "attached-ebs-status.status",
    ];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: Some(
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ),
        wording: SizeWording::Between,
    });
    const SET: &'static str = "instanceStatusSet";

    fn id(item: &StatusItem) -> &str {
        &item.instance.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<InstanceId>, ApiError> {
        instance_ids(params, false)
    }

    fn find(
        state: &ApiState,
        region: &str,
        id: &InstanceId,
    ) -> Result<Option<StatusItem>, ApiError> {
        let volumes = InstanceVolumes::of_instance(state, region, id.as_str())?;
        Ok(InstanceKind::find(state, region, id)?.map(|i| StatusItem::of(state, i, &volumes)))
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<StatusItem>, ApiError> {
        let volumes = InstanceVolumes::read(state, region)?;
        Ok(region_instances(state, region)?
            .into_iter()
            .map(|i| StatusItem::of(state, i, &volumes))
            .collect())
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(_item: &StatusItem) -> Option<&BTreeMap<String, String>> {
        None
    }

    fn values(name: &str, item: &StatusItem, _context: &()) -> Vec<String> {
        match name {
            "availability-zone" => vec![item.instance.spec.availability_zone.clone()],
            "availability-zone-id" => item.zone_id.iter().cloned().collect(),
            "operator.managed" => vec!["false".to_string()],
            "instance-state-name" => vec![item.state.name().to_string()],
            "instance-state-code" => vec![item.state.code().to_string()],
            "system-status.status" => vec![item.system_check().0.to_string()],
            "instance-status.status" => vec![item.instance_check().0.to_string()],
            "attached-ebs-status.status" => vec![item.ebs_check().0.to_string()],
            "system-status.reachability" => item
                .system_check()
                .1
                .map(str::to_string)
                .into_iter()
                .collect(),
            "instance-status.reachability" => item
                .instance_check()
                .1
                .map(str::to_string)
                .into_iter()
                .collect(),
            // no events, no operator principal: those filters match nothing
            _ => Vec::new(),
        }
    }

    fn render(w: &mut XmlWriter, item: &StatusItem) {
        w.field("instanceId", &item.instance.metadata.name);
        w.field("availabilityZone", &item.instance.spec.availability_zone);
        w.opt_field("availabilityZoneId", item.zone_id.as_deref());
        w.el("operator", |w| w.field("managed", false));
        render_state(w, "instanceState", item.state);
        render_check(w, "systemStatus", item.system_check());
        render_check(w, "instanceStatus", item.instance_check());
        render_check(w, "attachedEbsStatus", item.ebs_check());
        w.empty("eventsSet");
    }
}

/// The id AWS gives the instance's zone (`us-east-1a` is `use1-az1`), from its region's zones.
fn zone_id(instance: &Instance) -> Option<String> {
    region::defaults(&instance.metadata.namespace)
        .subnets
        .iter()
        .find(|s| s.availability_zone == instance.spec.availability_zone)
        .map(|s| s.availability_zone_id.clone())
}

fn render_check(
    w: &mut XmlWriter,
    element: &str,
    (status, reachability): (&str, Option<&'static str>),
) {
    w.el(element, |w| {
        w.field("status", status);
        match reachability {
            Some(result) => w.set("details", [result], |w, result| {
                w.field("name", "reachability");
                w.field("status", result);
            }),
            None => w.empty("details"),
        }
    });
}

/// The dispatch entry: the kind's Describe, narrowed to running instances unless
/// `IncludeAllInstances` asks for every state.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let include_all = params.bool("IncludeAllInstances")?.unwrap_or(false);
    let page =
        Describe::<InstanceStatusKind>::parse(params)?.select_where(state, region, |item| {
            include_all || item.state == InstanceState::Running
        })?;
    Ok(render_page::<InstanceStatusKind>(&page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::Page;
    use crate::api::paging;

    fn parse(q: &QueryParams) -> Result<Describe<InstanceStatusKind>, ApiError> {
        params_ok(q)?;
        Describe::parse(q)
    }

    /// What the action checks besides the Describe.
    fn params_ok(q: &QueryParams) -> Result<(), ApiError> {
        q.bool("IncludeAllInstances").map(drop)
    }

    #[test]
    fn a_token_must_name_an_instance() {
        let q =
            |cursor: &str| QueryParams::from_query(&format!("NextToken={}", paging::token(cursor)));
        assert_eq!(
            parse(&q("i-0123456789abcdef0"))
                .ok()
                .unwrap()
                .after
                .as_deref(),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(parse(&q("sg-1")).err().unwrap().code, "InvalidNextToken");
    }

    #[test]
    fn parses_and_checks_like_ec2() {
        let req = parse(&QueryParams::from_query(
            "IncludeAllInstances=true&Filter.1.Name=instance-status.status&Filter.1.Value.1=ok&MaxResults=5",
        ))
        .ok()
        .unwrap();
        assert_eq!(req.max_results, Some(5));
        let code = |q: &str| parse(&QueryParams::from_query(q)).err().unwrap().code;
        assert_eq!(
            code("InstanceId.1=i-00000001&MaxResults=5"),
            "InvalidParameterCombination"
        );
        assert_eq!(code("MaxResults=4"), "InvalidParameterValue");
        assert_eq!(
            code("Filter.1.Name=colour&Filter.1.Value.1=x"),
            "InvalidParameterValue"
        );
        assert_eq!(code("IncludeAllInstances=maybe"), "InvalidParameterValue");
        assert_eq!(code("InstanceId.1=nope"), "InvalidInstanceID.Malformed");
    }

    #[test]
    fn only_a_running_instance_passes_its_checks() {
        let instance = Arc::new(crate::model::fixtures::instance());
        let item = |state| StatusItem {
            instance: Arc::clone(&instance),
            state,
            zone_id: None,
            ebs_impaired: false,
            host_impaired: false,
        };
        let running = item(InstanceState::Running);
        assert_eq!(
            (running.check(), running.reachability()),
            ("ok", Some("passed"))
        );
        let stopped = item(InstanceState::Stopped);
        assert_eq!(
            (stopped.check(), stopped.reachability()),
            ("not-applicable", None)
        );
        let xml = render_page::<InstanceStatusKind>(&Page {
            items: vec![running],
            next_token: None,
        });
        assert!(xml.contains(
            "<instanceStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></instanceStatus>"
        ), "{xml}");
    }

    #[test]
    fn a_volume_in_error_fails_the_attached_ebs_check_only() {
        let item = StatusItem {
            instance: Arc::new(crate::model::fixtures::instance()),
            state: InstanceState::Running,
            zone_id: None,
            ebs_impaired: true,
            host_impaired: false,
        };
        assert_eq!(item.ebs_check(), ("impaired", Some("failed")));
        let xml = render_page::<InstanceStatusKind>(&Page {
            items: vec![item],
            next_token: None,
        });
        assert!(xml.contains("<instanceStatus><status>ok</status>"), "{xml}");
        assert!(xml.contains(
            "<attachedEbsStatus><status>impaired</status><details><item><name>reachability</name><status>failed</status></item></details></attachedEbsStatus>"
        ), "{xml}");
    }

    #[test]
    fn an_unreachable_engine_fails_the_system_check_and_leaves_the_state() {
        let item = |state| StatusItem {
            instance: Arc::new(crate::model::fixtures::instance()),
            state,
            zone_id: None,
            ebs_impaired: false,
            host_impaired: true,
        };
        let running = item(InstanceState::Running);
        assert_eq!(running.system_check(), ("impaired", Some("failed")));
        assert_eq!(
            running.instance_check(),
            ("insufficient-data", Some("insufficient-data"))
        );
        assert_eq!(
            InstanceStatusKind::values("system-status.status", &running, &()),
            ["impaired"]
        );
        let xml = render_page::<InstanceStatusKind>(&Page {
            items: vec![running],
            next_token: None,
        });
        assert!(
            xml.contains("<instanceState><code>16</code><name>running</name></instanceState>"),
            "{xml}"
        );
        assert!(xml.contains(
            "<systemStatus><status>impaired</status><details><item><name>reachability</name><status>failed</status></item></details></systemStatus>"
        ), "{xml}");
        // A stopped instance has no checks, reachable engine or not.
        let stopped = item(InstanceState::Stopped);
        assert_eq!(stopped.system_check(), ("not-applicable", None));
    }
}
