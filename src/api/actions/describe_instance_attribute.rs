//! `DescribeInstanceAttribute`: one attribute of one instance (user data, type, shutdown behaviour, groups, …).

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{Instance, InstanceId, ShutdownBehavior};

use std::sync::Arc;

use crate::api::block_devices::{render_block_devices, root_device_name, InstanceVolumes};
use crate::api::render::render_group_set;
use crate::api::{instances, kind};
use crate::model::Volume;

/// The attributes ec2d answers (EC2's `InstanceAttributeName` values).
pub const ATTRIBUTES: &[&str] = &[
    "instanceType",
    "kernel",
    "ramdisk",
    "userData",
    "disableApiTermination",
    "disableApiStop",
    "instanceInitiatedShutdownBehavior",
    "rootDeviceName",
    "blockDeviceMapping",
    "productCodes",
    "sourceDestCheck",
    "groupSet",
    "ebsOptimized",
    "sriovNetSupport",
    "enaSupport",
];

/// A validated DescribeInstanceAttribute request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `InstanceId`.
    pub instance_id: InstanceId,
    /// `Attribute`, one of [`ATTRIBUTES`].
    pub attribute: String,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates the request; an attribute EC2 does not define is `InvalidParameterValue`.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let instance_id = InstanceId::parse(params.require("InstanceId")?)?;
    let attribute = params.require("Attribute")?;
    if !ATTRIBUTES.contains(&attribute) {
        return Err(ApiError::invalid_value(format!(
            "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
        )));
    }
    Ok(Request {
        instance_id,
        attribute: attribute.to_string(),
        dry_run: kind::dry_run(params)?,
    })
}

/// Reads the instance in the caller's region.
pub fn handle(
    state: &ApiState,
    region: &str,
    req: &Request,
) -> Result<std::sync::Arc<Instance>, ApiError> {
    let instance =
        instances::load_instances(state, region, std::slice::from_ref(&req.instance_id))?
            .pop()
            .expect("load_instances returns one instance per id");
    kind::check_dry_run(req.dry_run)?;
    Ok(instance)
}

fn value(w: &mut XmlWriter, element: &str, value: impl std::fmt::Display) {
    w.el(element, |w| w.field("value", value));
}

/// `instanceId` and the attribute's element: `<name><value>…</value></name>` for scalars,
/// an empty element where the instance has nothing (no user data, no kernel). `volumes` are
/// the volume records naming the instance (its `blockDeviceMapping`).
pub fn render(instance: &Instance, attribute: &str, volumes: &[Arc<Volume>]) -> String {
    let spec = &instance.spec;
    let mut w = XmlWriter::new();
    w.field("instanceId", &instance.metadata.name);
    match attribute {
        "userData" => match &spec.user_data {
            Some(data) => value(&mut w, "userData", data),
            None => w.empty("userData"),
        },
        "instanceType" => value(&mut w, "instanceType", &spec.instance_type),
        "instanceInitiatedShutdownBehavior" => value(
            &mut w,
            "instanceInitiatedShutdownBehavior",
            match spec.shutdown_behavior {
                ShutdownBehavior::Stop => "stop",
                ShutdownBehavior::Terminate => "terminate",
            },
        ),
        "disableApiTermination" => value(
            &mut w,
            "disableApiTermination",
            spec.disable_api_termination,
        ),
        "disableApiStop" => value(&mut w, "disableApiStop", spec.disable_api_stop),
        "rootDeviceName" => value(&mut w, "rootDeviceName", root_device_name(instance)),
        "sourceDestCheck" => value(&mut w, "sourceDestCheck", spec.options.source_dest_check),
        "ebsOptimized" => value(&mut w, "ebsOptimized", spec.options.ebs_optimized),
        "enaSupport" => value(&mut w, "enaSupport", true),
        "groupSet" => render_group_set(&mut w, &spec.security_groups),
        "kernel" => w.empty("kernel"),
        "ramdisk" => w.empty("ramdisk"),
        "sriovNetSupport" => w.empty("sriovNetSupport"),
        "blockDeviceMapping" => render_block_devices(&mut w, instance, volumes),
        "productCodes" => w.empty("productCodes"),
        other => unreachable!("attribute {other} passed parse"),
    }
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let req = parse(params)?;
    let instance = handle(state, region, &req)?;
    let volumes = match req.attribute.as_str() {
        "blockDeviceMapping" => {
            InstanceVolumes::of_instance(state, region, &instance.metadata.name)?
        }
        _ => InstanceVolumes::default(),
    };
    Ok(render(
        &instance,
        &req.attribute,
        volumes.of(&instance.metadata.name),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, GroupRef};

    #[test]
    fn parse_errors() {
        let e = parse(&QueryParams::from_query(
            "InstanceId=i-00000001&Attribute=colour",
        ))
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(
            e.message,
            "Value (colour) for parameter attribute is invalid. Unknown attribute."
        );
        let e = parse(&QueryParams::from_query("InstanceId=i-00000001")).unwrap_err();
        assert_eq!(
            e.message,
            "The request must contain the parameter Attribute"
        );
        let e = parse(&QueryParams::from_query("InstanceId=x&Attribute=userData")).unwrap_err();
        assert_eq!(e.code, "InvalidInstanceID.Malformed");
    }

    #[test]
    fn every_attribute_renders() {
        let mut inst = fixtures::instance();
        for attribute in ATTRIBUTES {
            let doc = render(&inst, attribute, &[]);
            assert!(doc.contains(&format!("<{attribute}")), "{attribute}: {doc}");
        }
        assert!(render(&inst, "userData", &[]).ends_with("<userData/>"));
        inst.spec.user_data = Some("aGk=".into());
        assert!(
            render(&inst, "userData", &[]).ends_with("<userData><value>aGk=</value></userData>")
        );
        inst.spec.security_groups.push(GroupRef {
            group_id: "sg-1".into(),
            group_name: "web".into(),
        });
        assert!(render(&inst, "groupSet", &[]).ends_with(
            "<groupSet><item><groupId>sg-1</groupId><groupName>web</groupName></item></groupSet>"
        ));
    }
}
