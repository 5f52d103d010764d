//! The internet gateway kind: the default VPC's gateway (derived, attached to it) and the gateways CreateInternetGateway stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::kinds::{derived_and_stored, derived_or_stored};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::render::render_tags;
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::{
    region, InternetGateway, InternetGatewaySpec, InternetGatewayStatus, ACCOUNT_ID,
};
use crate::store::{SpecStore, Specs};

/// Internet gateways.
pub struct InternetGatewayKind;

impl InternetGatewayKind {
    /// Checks the shape of a gateway id (`igw-` and alphanumerics).
    pub fn check_id(id: &str) -> Result<String, ApiError> {
        Self::IDS.check_alphanumeric(id)
    }

    /// Whether `id` is the region's derived default gateway.
    pub fn is_default(region: &str, id: &str) -> bool {
        region::defaults(region).internet_gateway.metadata.name == id
    }
}

/// Every gateway of the region: the default VPC's and the stored ones.
pub fn region_gateways(
    state: &ApiState,
    region: &str,
) -> Result<Vec<Arc<InternetGateway>>, ApiError> {
    let defaults = region::defaults(region);
    derived_and_stored(
        &defaults.internet_gateway,
        state.store.internet_gateways(),
        region,
    )
}

/// The gateway `id` of the region.
pub fn find_gateway(
    state: &ApiState,
    region: &str,
    id: &str,
) -> Result<Option<Arc<InternetGateway>>, ApiError> {
    let defaults = region::defaults(region);
    derived_or_stored(
        &defaults.internet_gateway,
        state.store.internet_gateways(),
        region,
        id,
    )
}

impl Kind for InternetGatewayKind {
    type Item = Arc<InternetGateway>;
    type Ref = String;
    type Context = ();
    ordered_by_id!(Arc<InternetGateway>);

    const IDS: IdRules = IdRules {
        noun: "internetGateway",
        prefix: "igw-",
        malformed: "InvalidInternetGatewayId.Malformed",
        not_found: "InvalidInternetGatewayID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("internet-gateway");
    const FILTERS: &'static [&'static str] = &[
        "internet-gateway-id",
        "attachment.vpc-id",
        "attachment.state",
        "owner-id",
        "tag-key",
        "tag-value",
    ];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const SET: &'static str = "internetGatewaySet";

    fn id(item: &Arc<InternetGateway>) -> &str {
        &item.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        params
            .list("InternetGatewayId")
            .into_iter()
            .map(Self::check_id)
            .collect()
    }

    fn find(
        state: &ApiState,
        region: &str,
        id: &String,
    ) -> Result<Option<Arc<InternetGateway>>, ApiError> {
        find_gateway(state, region, id)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Arc<InternetGateway>>, ApiError> {
        region_gateways(state, region)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &Arc<InternetGateway>) -> Option<&BTreeMap<String, String>> {
        Some(&item.spec.tags)
    }

    fn values(name: &str, g: &Arc<InternetGateway>, _context: &()) -> Vec<String> {
        match name {
            "internet-gateway-id" => vec![g.metadata.name.clone()],
            "attachment.vpc-id" => g.spec.vpc_id.iter().cloned().collect(),
            // EC2 shows an attached gateway's attachment as `available`.
            "attachment.state" => g.spec.vpc_id.iter().map(|_| "available".into()).collect(),
            "owner-id" => vec![ACCOUNT_ID.to_string()],
            _ => Vec::new(),
        }
    }

    fn render(w: &mut XmlWriter, g: &Arc<InternetGateway>) {
        render_gateway(w, g);
    }
}

/// A gateway's members (CreateInternetGateway answers the same, with no attachment).
pub fn render_gateway(w: &mut XmlWriter, g: &InternetGateway) {
    w.field("internetGatewayId", &g.metadata.name);
    w.field("ownerId", ACCOUNT_ID);
    w.set("attachmentSet", g.spec.vpc_id.iter(), |w, vpc| {
        w.field("vpcId", vpc);
        w.field("state", "available");
    });
    render_tags(w, &g.spec.tags);
}

/// Tags of stored gateways (the default VPC's is derived and stores nothing to tag).
impl Tagged for InternetGatewayKind {
    type Spec = InternetGatewaySpec;
    type Status = InternetGatewayStatus;

    fn collection(store: &SpecStore) -> Specs<'_, InternetGatewaySpec, InternetGatewayStatus> {
        store.internet_gateways()
    }

    fn spec_tags(spec: &InternetGatewaySpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut InternetGatewaySpec) -> &mut Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        Self::check_id(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_gateway_is_attached_to_the_default_vpc() {
        let defaults = region::defaults("us-east-1");
        let g = Arc::new(defaults.internet_gateway.clone());
        assert_eq!(
            InternetGatewayKind::values("attachment.vpc-id", &g, &()),
            vec![defaults.vpc.vpc_id.clone()]
        );
        assert_eq!(
            InternetGatewayKind::values("attachment.state", &g, &()),
            vec!["available"]
        );
        let e = InternetGatewayKind::IDS.not_found(&["igw-1"]);
        assert_eq!(e.message, "The internetGateway ID 'igw-1' does not exist");
    }
}
