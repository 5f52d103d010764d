//! Instance credit specifications: the burstable instances' CPU credit option, as DescribeInstanceCreditSpecifications lists it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::instance_options::credits_not_supported;
use crate::api::instances::{instance_ids, region_instances};
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::instance_types;
use crate::model::{CpuCredits, Instance, InstanceId};

use super::InstanceKind;

/// The credit option of one instance. An instance has one once it was launched as (or
/// resized to) a burstable type, and keeps it, as EC2 does.
pub struct CreditSpecificationKind;

/// The instance's credit option; `None` when it never had one. A record written before
/// options were recorded reads as its type's default, as it was launched with it.
pub fn credits(instance: &Instance) -> Option<CpuCredits> {
    instance.spec.options.cpu_credits.or_else(|| {
        instance_types::find(&instance.spec.instance_type).and_then(CpuCredits::default_for)
    })
}

/// EC2's answer when a request names an instance that has no credit option.
pub fn check_has_credits(instance: &Instance) -> Result<CpuCredits, ApiError> {
    credits(instance).ok_or_else(|| credits_not_supported(&instance.spec.instance_type))
}

impl Kind for CreditSpecificationKind {
    type Item = Arc<Instance>;
    type Ref = InstanceId;
    type Context = ();

    const IDS: IdRules = InstanceKind::IDS;
    const TAG_TYPE: Option<&'static str> = None;
    const FILTERS: &'static [&'static str] = &["instance-id"];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: Some(
            "The parameter instanceIds cannot be used with the parameter maxResults",
        ),
        wording: SizeWording::Between,
    });
    const SET: &'static str = "instanceCreditSpecificationSet";

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
        InstanceKind::find(state, region, id)
    }

    /// Without ids EC2 lists the instances whose option is `unlimited` (its API reference).
    fn list(state: &ApiState, region: &str) -> Result<Vec<Arc<Instance>>, ApiError> {
        let mut instances = region_instances(state, region)?;
        instances.retain(|i| credits(i) == Some(CpuCredits::Unlimited));
        Ok(instances)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(_item: &Arc<Instance>) -> Option<&BTreeMap<String, String>> {
        None
    }

    fn values(name: &str, item: &Arc<Instance>, _context: &()) -> Vec<String> {
        match name {
            "instance-id" => vec![item.metadata.name.clone()],
            _ => Vec::new(),
        }
    }

    ordered_by_id!(Arc<Instance>, |text: &str| InstanceId::parse(text).is_ok());

    fn render(w: &mut XmlWriter, item: &Arc<Instance>) {
        w.field("instanceId", &item.metadata.name);
        w.opt_field("cpuCredits", credits(item).map(CpuCredits::as_str));
    }
}
