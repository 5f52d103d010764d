//! `DescribeImageAttribute`: one attribute of one of the account's AMIs (description, launch permissions, boot mode, …).

use crate::api::error::ApiError;
use crate::api::images::{self, Ami};
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{Image, ImageId};

/// EC2's `ImageAttributeName` values.
pub const ATTRIBUTES: &[&str] = &[
    "description",
    "kernel",
    "ramdisk",
    "launchPermission",
    "productCodes",
    "blockDeviceMapping",
    "sriovNetSupport",
    "bootMode",
    "tpmSupport",
    "uefiData",
    "lastLaunchedTime",
    "imdsSupport",
    "deregistrationProtection",
];

/// A validated DescribeImageAttribute request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `ImageId`.
    pub image_id: ImageId,
    /// `Attribute`, one of [`ATTRIBUTES`].
    pub attribute: String,
    /// `DryRun`.
    pub dry_run: bool,
}

/// The wording EC2 uses for an attribute it does not know.
pub fn unknown_attribute(attribute: &str) -> ApiError {
    ApiError::invalid_value(format!(
        "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
    ))
}

/// Parses and validates the request.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let image_id = ImageId::parse(params.require("ImageId")?)?;
    let attribute = params.require("Attribute")?;
    if !ATTRIBUTES.contains(&attribute) {
        return Err(unknown_attribute(attribute));
    }
    Ok(Request {
        image_id,
        attribute: attribute.to_string(),
        dry_run: kind::dry_run(params)?,
    })
}

/// Reads the AMI. Only its owner may read its attributes: a public AMI is `AuthFailure`, as
/// is `blockDeviceMapping`, which EC2 answers with `AuthFailure` and sends to DescribeImages.
pub fn handle(state: &ApiState, region: &str, req: &Request) -> Result<Image, ApiError> {
    let id = &req.image_id;
    let image = match images::find_ami(state, region, id)? {
        None => return Err(ApiError::images_not_found(&[id.to_string()])),
        Some(Ami::Public { .. }) => return Err(images::not_authorized(id.as_str())),
        Some(Ami::Own(image)) => image,
    };
    if req.attribute == "blockDeviceMapping" {
        return Err(images::not_authorized(id.as_str()));
    }
    kind::check_dry_run(req.dry_run)?;
    Ok(image)
}

/// `<name><value>…</value></name>`, or the empty element when there is no value.
fn value(w: &mut XmlWriter, element: &str, value: Option<&str>) {
    match value {
        Some(value) => w.el(element, |w| w.field("value", value)),
        None => w.empty(element),
    }
}

/// `imageId` and the attribute's element.
pub fn render(image: &Image, attribute: &str) -> String {
    let spec = &image.spec;
    let mut w = XmlWriter::new();
    w.field("imageId", &image.metadata.name);
    match attribute {
        "description" => value(&mut w, "description", spec.description.as_deref()),
        "launchPermission" => {
            let permissions = &spec.launch_permissions;
            if permissions.is_empty() {
                w.empty("launchPermission");
            } else {
                w.el("launchPermission", |w| {
                    if permissions.public {
                        w.el("item", |w| w.field("group", "all"));
                    }
                    for user in &permissions.user_ids {
                        w.el("item", |w| w.field("userId", user));
                    }
                });
            }
        }
        "bootMode" => value(&mut w, "bootMode", spec.boot_mode.as_deref()),
        "imdsSupport" => value(&mut w, "imdsSupport", spec.imds_support.as_deref()),
        "deregistrationProtection" => value(&mut w, "deregistrationProtection", Some("disabled")),
        "productCodes" => w.empty("productCodes"),
        // No kernel, RAM disk, SR-IOV, TPM or UEFI store; launches are not tracked per AMI.
        other => w.empty(other),
    }
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let req = parse(params)?;
    let image = handle(state, region, &req)?;
    Ok(render(&image, &req.attribute))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, InstanceId};

    #[test]
    fn parse_rejects_unknown_attributes() {
        let q = |s: &str| parse(&QueryParams::from_query(s));
        assert!(q("ImageId=ami-12345678&Attribute=bootMode").is_ok());
        let e = q("ImageId=ami-12345678&Attribute=colour").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(
            e.message,
            "Value (colour) for parameter attribute is invalid. Unknown attribute."
        );
        assert_eq!(
            q("ImageId=ami-12345678").unwrap_err().message,
            "The request must contain the parameter Attribute"
        );
    }

    #[test]
    fn renders_values_and_empty_elements() {
        let mut image = fixtures::committed_image(&InstanceId::parse("i-00000001").unwrap(), "x");
        image.spec.description = Some("a <b>".into());
        image.spec.launch_permissions.public = true;
        image
            .spec
            .launch_permissions
            .user_ids
            .insert("123456789012".into());
        let doc = render(&image, "description");
        assert!(doc.contains("<description><value>a &lt;b&gt;</value></description>"));
        let doc = render(&image, "launchPermission");
        assert!(doc.contains("<launchPermission><item><group>all</group></item><item><userId>123456789012</userId></item></launchPermission>"), "{doc}");
        assert!(render(&image, "bootMode").contains("<bootMode/>"));
        assert!(render(&image, "kernel").contains("<kernel/>"));
    }
}
