//! The IAM instance profile association kind: the profile each instance of the region holds, derived from the instance's record (never stored apart, so it cannot disagree with it); a terminated instance holds none.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::iam_profiles::{association_not_found, live_profile, render_association};
use crate::api::instances::region_instances;
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{IamProfileRef, Instance};

/// IAM instance profile associations.
pub struct IamProfileAssociationKind;

/// An instance with the profile it holds.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The instance (shared with the store's decode cache).
    pub instance: Arc<Instance>,
    /// Its association, copied out of the instance for the id `Kind::id` lends.
    pub profile: IamProfileRef,
}

/// The region's associations.
fn shown_associations(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
    Ok(region_instances(state, region)?
        .into_iter()
        .filter_map(|instance| {
            let profile = live_profile(&instance)?.clone();
            Some(Shown { instance, profile })
        })
        .collect())
}

impl Kind for IamProfileAssociationKind {
    type Item = Shown;
    type Ref = String;
    type Context = ();

    const IDS: IdRules = IdRules {
        noun: "association",
        prefix: "iip-assoc-",
        malformed: "InvalidAssociationID.Malformed",
        not_found: "InvalidAssociationID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = None;
    /// The API reference's filters.
    const FILTERS: &'static [&'static str] = &["instance-id", "state"];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const SET: &'static str = "iamInstanceProfileAssociationSet";

    fn id(item: &Shown) -> &str {
        &item.profile.association_id
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        params
            .list("AssociationId")
            .into_iter()
            .map(|id| Self::IDS.check_alphanumeric(id))
            .collect()
    }

    fn find(state: &ApiState, region: &str, id: &String) -> Result<Option<Shown>, ApiError> {
        Ok(shown_associations(state, region)?
            .into_iter()
            .find(|s| s.profile.association_id == *id))
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
        shown_associations(state, region)
    }

    /// EC2 names the first association it does not know.
    fn not_found(_region: &str, missing: &[String]) -> ApiError {
        association_not_found(&missing[0])
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(_item: &Shown) -> Option<&BTreeMap<String, String>> {
        None
    }

    fn values(name: &str, s: &Shown, _context: &()) -> Vec<String> {
        match name {
            "instance-id" => vec![s.instance.metadata.name.clone()],
            "state" => vec![s.profile.state.as_str().to_string()],
            _ => Vec::new(),
        }
    }

    ordered_by_id!(Shown);

    fn render(w: &mut XmlWriter, s: &Shown) {
        render_association(w, &s.instance.metadata.name, &s.profile, s.profile.state);
    }
}
