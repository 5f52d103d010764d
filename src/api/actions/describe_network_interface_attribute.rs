//! `DescribeNetworkInterfaceAttribute`: one attribute of an instance's primary interface (description, groups, source/dest check, attachment, public address).

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::kinds::network_interface;
use crate::api::query::QueryParams;
use crate::api::render::render_group_set;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;

/// The attributes EC2 describes (botocore's `NetworkInterfaceAttribute`).
const ATTRIBUTES: &[&str] = &[
    "description",
    "groupSet",
    "sourceDestCheck",
    "attachment",
    "associatePublicIpAddress",
];

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = params.require("NetworkInterfaceId")?;
    let attribute = params.require("Attribute")?;
    if !ATTRIBUTES.contains(&attribute) {
        return Err(ApiError::invalid_value(format!(
            "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
        )));
    }
    let interface = network_interface::load(state, region, id)?;
    kind::check_dry_run(kind::dry_run(params)?)?;
    let instance = &interface.instance;
    let mut w = XmlWriter::new();
    w.field("networkInterfaceId", &interface.id);
    match attribute {
        "description" => w.el("description", |w| {
            w.field(
                "value",
                instance
                    .spec
                    .interface_description
                    .as_deref()
                    .unwrap_or_default(),
            )
        }),
        "groupSet" => render_group_set(&mut w, &instance.spec.security_groups),
        "sourceDestCheck" => w.el("sourceDestCheck", |w| {
            w.field("value", instance.spec.options.source_dest_check)
        }),
        "attachment" => interface.render_attachment(&mut w),
        _ => w.field(
            "associatePublicIpAddress",
            interface.has_auto_assigned_public_ip(),
        ),
    }
    Ok(w.finish())
}
