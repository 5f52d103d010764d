//! The launch template kind: stored templates of the region, by id or name (their versions live in the same record).

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::launch_templates::{
    self, check_name, id_not_found, names_not_found, parse_id, TemplateRef,
};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::{
    format_timestamp, LaunchTemplate, LaunchTemplateId, LaunchTemplateSpec, LaunchTemplateStatus,
};
use crate::store::{SpecStore, Specs};

/// Launch templates.
pub struct LaunchTemplateKind;

impl Kind for LaunchTemplateKind {
    type Item = LaunchTemplate;
    type Ref = TemplateRef;
    type Context = ();
    ordered_by_id!(LaunchTemplate);

    const IDS: IdRules = IdRules {
        noun: "launch template",
        prefix: LaunchTemplateId::PREFIX,
        malformed: "InvalidLaunchTemplateId.Malformed",
        not_found: "InvalidLaunchTemplateId.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some(launch_templates::TAG_RESOURCE_TYPE);
    /// The filter names EC2 documents for DescribeLaunchTemplates (plus `tag:<key>`).
    const FILTERS: &'static [&'static str] = &["create-time", "launch-template-name", "tag-key"];
    /// `MaxResults` 1 to 200, ids and names allowed with it.
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const MIN_PAGE: i64 = 1;
    const MAX_PAGE: i64 = 200;
    const SET: &'static str = "launchTemplates";

    fn id(item: &LaunchTemplate) -> &str {
        &item.metadata.name
    }

    /// `LaunchTemplateId.N` then `LaunchTemplateName.N`, each checked.
    fn refs(params: &QueryParams) -> Result<Vec<TemplateRef>, ApiError> {
        let ids = params
            .list("LaunchTemplateId")
            .into_iter()
            .map(|raw| parse_id(raw).map(TemplateRef::Id));
        let names = params.list("LaunchTemplateName").into_iter().map(|name| {
            check_name(name)?;
            Ok(TemplateRef::Name(name.to_string()))
        });
        ids.chain(names).collect()
    }

    fn find(
        state: &ApiState,
        region: &str,
        reference: &TemplateRef,
    ) -> Result<Option<LaunchTemplate>, ApiError> {
        launch_templates::find(state, region, reference)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<LaunchTemplate>, ApiError> {
        launch_templates::region_templates(state, region)
    }

    /// A missing id is named; missing names get EC2's one sentence for the whole list.
    fn not_found(_region: &str, missing: &[TemplateRef]) -> ApiError {
        match &missing[0] {
            TemplateRef::Id(id) => id_not_found(id),
            TemplateRef::Name(_) => names_not_found(),
        }
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &LaunchTemplate) -> Option<&BTreeMap<String, String>> {
        Some(&item.spec.tags)
    }

    fn values(name: &str, template: &LaunchTemplate, _context: &()) -> Vec<String> {
        match name {
            "create-time" => vec![format_timestamp(template.metadata.creation_timestamp)],
            "launch-template-name" => vec![template.spec.launch_template_name.clone()],
            _ => Vec::new(),
        }
    }

    fn render(w: &mut XmlWriter, item: &LaunchTemplate) {
        launch_templates::render_template(w, item);
    }
}

impl Tagged for LaunchTemplateKind {
    type Spec = LaunchTemplateSpec;
    type Status = LaunchTemplateStatus;

    fn collection(store: &SpecStore) -> Specs<'_, LaunchTemplateSpec, LaunchTemplateStatus> {
        store.launch_templates()
    }

    fn spec_tags(spec: &LaunchTemplateSpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut LaunchTemplateSpec) -> &mut Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        parse_id(id)
    }

    fn tag_not_found(_state: &ApiState, _region: &str, id: &str) -> ApiError {
        id_not_found(id)
    }
}
