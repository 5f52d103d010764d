//! The route table kind: the default VPC's main table (derived: `local` and `0.0.0.0/0` through its derived gateway) and the stored tables (created VPCs' main ones and CreateRouteTable's), with their routes and associations.

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
use crate::model::routing::{RouteTableAssociation, RouteTarget};
use crate::model::{region, RouteTable, RouteTableSpec, RouteTableStatus, ACCOUNT_ID};
use crate::store::{SpecStore, Specs};

/// Route tables.
pub struct RouteTableKind;

impl RouteTableKind {
    /// Checks the shape of a route table id (`rtb-` and alphanumerics).
    pub fn check_id(id: &str) -> Result<String, ApiError> {
        Self::IDS.check_alphanumeric(id)
    }

    /// Whether `id` is the region's derived default main table.
    pub fn is_default(region: &str, id: &str) -> bool {
        region::defaults(region).main_route_table.metadata.name == id
    }

    /// `UnsupportedOperation` for a change to the derived default VPC's main table or gateway.
    pub fn derived(id: &str) -> ApiError {
        ApiError::client(
            "UnsupportedOperation",
            format!("ec2d derives {id} with the default VPC; it cannot be changed"),
        )
    }
}

/// Every route table of the region: the default VPC's main one and the stored ones.
pub fn region_tables(state: &ApiState, region: &str) -> Result<Vec<Arc<RouteTable>>, ApiError> {
    let defaults = region::defaults(region);
    derived_and_stored(
        &defaults.main_route_table,
        state.store.route_tables(),
        region,
    )
}

/// The route table `id` of the region.
pub fn find_table(
    state: &ApiState,
    region: &str,
    id: &str,
) -> Result<Option<Arc<RouteTable>>, ApiError> {
    let defaults = region::defaults(region);
    derived_or_stored(
        &defaults.main_route_table,
        state.store.route_tables(),
        region,
        id,
    )
}

/// The stored table `id` of the region, for a change: the derived default main table is
/// `UnsupportedOperation`, an unknown one `InvalidRouteTableID.NotFound`.
pub fn stored_table(state: &ApiState, region: &str, id: &str) -> Result<Arc<RouteTable>, ApiError> {
    if RouteTableKind::is_default(region, id) {
        return Err(RouteTableKind::derived(id));
    }
    find_table(state, region, id)?.ok_or_else(|| RouteTableKind::IDS.not_found(&[id]))
}

/// The table holding association `id`, and the association.
pub fn find_association(
    state: &ApiState,
    region: &str,
    id: &str,
) -> Result<Option<(Arc<RouteTable>, RouteTableAssociation)>, ApiError> {
    Ok(region_tables(state, region)?.into_iter().find_map(|t| {
        let association = t
            .spec
            .associations
            .iter()
            .find(|a| a.association_id == id)
            .cloned();
        association.map(|a| (t, a))
    }))
}

fn bool_text(b: bool) -> String {
    b.to_string()
}

impl Kind for RouteTableKind {
    type Item = Arc<RouteTable>;
    type Ref = String;
    type Context = ();
    ordered_by_id!(Arc<RouteTable>);

    const IDS: IdRules = IdRules {
        noun: "routeTable",
        prefix: "rtb-",
        malformed: "InvalidRouteTableId.Malformed",
        not_found: "InvalidRouteTableID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("route-table");
    const FILTERS: &'static [&'static str] = &[
        "route-table-id",
        "vpc-id",
        "owner-id",
        "association.route-table-association-id",
        "association.route-table-id",
        "association.subnet-id",
        "association.main",
        "association.gateway-id",
        "route.destination-cidr-block",
        "route.gateway-id",
        "route.nat-gateway-id",
        "route.instance-id",
        "route.transit-gateway-id",
        "route.vpc-peering-connection-id",
        "route.origin",
        "route.state",
        "tag-key",
        "tag-value",
    ];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const SET: &'static str = "routeTableSet";

    fn id(item: &Arc<RouteTable>) -> &str {
        &item.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        params
            .list("RouteTableId")
            .into_iter()
            .map(Self::check_id)
            .collect()
    }

    fn find(
        state: &ApiState,
        region: &str,
        id: &String,
    ) -> Result<Option<Arc<RouteTable>>, ApiError> {
        find_table(state, region, id)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Arc<RouteTable>>, ApiError> {
        region_tables(state, region)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &Arc<RouteTable>) -> Option<&BTreeMap<String, String>> {
        Some(&item.spec.tags)
    }

    fn values(name: &str, t: &Arc<RouteTable>, _context: &()) -> Vec<String> {
        let spec = &t.spec;
        let targets = |kind: RouteTarget| {
            spec.routes
                .iter()
                .filter(|r| r.target == kind)
                .map(|r| r.target_id.clone())
                .collect()
        };
        match name {
            "route-table-id" | "association.route-table-id" => vec![t.metadata.name.clone()],
            "vpc-id" => vec![spec.vpc_id.clone()],
            "owner-id" => vec![ACCOUNT_ID.to_string()],
            "association.route-table-association-id" => spec
                .associations
                .iter()
                .map(|a| a.association_id.clone())
                .collect(),
            "association.subnet-id" => spec
                .associations
                .iter()
                .filter_map(|a| a.subnet_id.clone())
                .collect(),
            "association.main" => spec
                .associations
                .iter()
                .map(|a| bool_text(a.main))
                .collect(),
            "route.destination-cidr-block" => spec
                .routes
                .iter()
                .map(|r| r.destination_cidr_block.clone())
                .collect(),
            "route.gateway-id" => targets(RouteTarget::Gateway),
            "route.nat-gateway-id" => targets(RouteTarget::NatGateway),
            "route.instance-id" => targets(RouteTarget::Instance),
            "route.transit-gateway-id" => targets(RouteTarget::TransitGateway),
            "route.vpc-peering-connection-id" => targets(RouteTarget::VpcPeeringConnection),
            "route.origin" => spec.routes.iter().map(|r| r.origin.clone()).collect(),
            "route.state" => spec.routes.iter().map(|_| "active".to_string()).collect(),
            // Gateway associations (edge tables) are not supported: nothing matches.
            _ => Vec::new(),
        }
    }

    fn render(w: &mut XmlWriter, t: &Arc<RouteTable>) {
        render_table(w, t);
    }
}

/// A table's members (CreateRouteTable answers the same).
pub fn render_table(w: &mut XmlWriter, t: &RouteTable) {
    let id = &t.metadata.name;
    w.field("routeTableId", id);
    w.field("vpcId", &t.spec.vpc_id);
    w.field("ownerId", ACCOUNT_ID);
    w.set("routeSet", &t.spec.routes, |w, r| {
        w.field("destinationCidrBlock", &r.destination_cidr_block);
        w.field(r.target.element(), &r.target_id);
        if r.target == RouteTarget::Instance {
            w.field("instanceOwnerId", ACCOUNT_ID);
        }
        // ec2d forwards no traffic; every target it accepted reads as EC2 shows a live one.
        w.field("state", "active");
        w.field("origin", &r.origin);
    });
    w.set("associationSet", &t.spec.associations, |w, a| {
        render_association(w, id, a);
    });
    w.empty("propagatingVgwSet");
    render_tags(w, &t.spec.tags);
}

/// One association's members.
pub fn render_association(w: &mut XmlWriter, table_id: &str, a: &RouteTableAssociation) {
    w.field("routeTableAssociationId", &a.association_id);
    w.field("routeTableId", table_id);
    w.opt_field("subnetId", a.subnet_id.as_deref());
    w.field("main", a.main);
    render_association_state(w);
}

/// `associationState`: ec2d's associations are made at once.
pub fn render_association_state(w: &mut XmlWriter) {
    w.el("associationState", |w| w.field("state", "associated"));
}

/// Tags of stored tables (the default VPC's main table is derived and stores nothing to tag).
impl Tagged for RouteTableKind {
    type Spec = RouteTableSpec;
    type Status = RouteTableStatus;

    fn collection(store: &SpecStore) -> Specs<'_, RouteTableSpec, RouteTableStatus> {
        store.route_tables()
    }

    fn spec_tags(spec: &RouteTableSpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut RouteTableSpec) -> &mut Tags {
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
    fn the_default_main_table_answers_its_filters() {
        let defaults = region::defaults("us-east-1");
        let t = Arc::new(defaults.main_route_table.clone());
        assert_eq!(
            RouteTableKind::values("association.main", &t, &()),
            vec!["true"]
        );
        assert_eq!(
            RouteTableKind::values("route.gateway-id", &t, &()),
            vec![
                "local".to_string(),
                defaults.internet_gateway.metadata.name.clone()
            ]
        );
        assert_eq!(
            RouteTableKind::values("route.destination-cidr-block", &t, &()),
            vec!["172.31.0.0/16", "0.0.0.0/0"]
        );
        let e = RouteTableKind::IDS.not_found(&["rtb-1"]);
        assert_eq!(e.message, "The routeTable ID 'rtb-1' does not exist");
    }
}
