//! JSON Schemas of the stored kinds, generated from the Rust types (the `crds-like-schemas/` files).

use schemars::schema::RootSchema;
use schemars::schema_for;

use super::{
    Address, Image, Instance, InternetGateway, KeyPair, LaunchTemplate, RouteTable, SecurityGroup,
    Snapshot, SubnetRecord, Volume, VpcRecord,
};

/// Every kind's schema with the file name it is committed under in `crds-like-schemas/`.
pub fn all() -> Vec<(&'static str, RootSchema)> {
    let mut instance = schema_for!(Instance);
    let mut image = schema_for!(Image);
    titled(&mut instance, "Instance");
    titled(&mut image, "Image");
    let mut security_group = schema_for!(SecurityGroup);
    titled(&mut security_group, "SecurityGroup");
    let mut key_pair = schema_for!(KeyPair);
    titled(&mut key_pair, "KeyPair");
    let mut launch_template = schema_for!(LaunchTemplate);
    titled(&mut launch_template, "LaunchTemplate");
    let mut address = schema_for!(Address);
    titled(&mut address, "Address");
    let mut vpc = schema_for!(VpcRecord);
    titled(&mut vpc, "Vpc");
    let mut subnet = schema_for!(SubnetRecord);
    titled(&mut subnet, "Subnet");
    let mut internet_gateway = schema_for!(InternetGateway);
    titled(&mut internet_gateway, "InternetGateway");
    let mut route_table = schema_for!(RouteTable);
    titled(&mut route_table, "RouteTable");
    let mut volume = schema_for!(Volume);
    titled(&mut volume, "Volume");
    let mut snapshot = schema_for!(Snapshot);
    titled(&mut snapshot, "Snapshot");
    vec![
        ("instance.v1alpha1.schema.json", instance),
        ("image.v1alpha1.schema.json", image),
        ("securitygroup.v1alpha1.schema.json", security_group),
        ("keypair.v1alpha1.schema.json", key_pair),
        ("launchtemplate.v1alpha1.schema.json", launch_template),
        ("address.v1alpha1.schema.json", address),
        ("vpc.v1alpha1.schema.json", vpc),
        ("subnet.v1alpha1.schema.json", subnet),
        ("internetgateway.v1alpha1.schema.json", internet_gateway),
        ("routetable.v1alpha1.schema.json", route_table),
        ("volume.v1alpha1.schema.json", volume),
        ("snapshot.v1alpha1.schema.json", snapshot),
    ]
}

/// Names the schema after its kind rather than schemars' generic `Object_for_…` title.
fn titled(schema: &mut RootSchema, kind: &str) {
    schema.schema.metadata().title = Some(format!("{kind} ({})", super::API_VERSION));
}

/// A schema rendered as the committed file's text (pretty JSON, trailing newline).
pub fn render(schema: &RootSchema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("schemas always serialize");
    text.push('\n');
    text
}
