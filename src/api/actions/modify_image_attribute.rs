//! `ModifyImageAttribute`: an own AMI's description, launch permissions or IMDS support, in either of EC2's two spellings (`Attribute`/`Value`/`OperationType`, or `Description.Value`/`LaunchPermission.Add.N`/`ImdsSupport.Value`).

use std::collections::BTreeSet;

use crate::api::actions::describe_image_attribute::unknown_attribute;
use crate::api::attributes::{permission_group as group, permission_user as user, Grantee};
use crate::api::error::ApiError;
use crate::api::images::{self, Ami};
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::model::{ImageId, ImageSource};

/// The longest `Description` EC2 accepts (as CreateImage).
const MAX_DESCRIPTION: usize = 255;

/// The one change a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `description`.
    Description(String),
    /// `launchPermission`: grants added, then grants removed.
    LaunchPermission {
        /// Granted.
        add: BTreeSet<Grantee>,
        /// Revoked.
        remove: BTreeSet<Grantee>,
    },
    /// `imdsSupport`: only `v2.0`, which cannot be undone.
    ImdsSupport,
}

/// A validated ModifyImageAttribute request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `ImageId`.
    pub image_id: ImageId,
    /// What to change.
    pub change: Change,
    /// `DryRun`.
    pub dry_run: bool,
}

/// The attributes ModifyImageAttribute changes (EC2's valid values for `Attribute`); the
/// other image attributes (`bootMode`, `kernel`, …) are read-only and read as unknown here.
const MODIFIABLE: &[&str] = &["description", "launchPermission", "imdsSupport"];

impl Change {
    /// The attribute it changes, as [`MODIFIABLE`] spells it.
    fn attribute(&self) -> &'static str {
        match self {
            Self::Description(_) => "description",
            Self::LaunchPermission { .. } => "launchPermission",
            Self::ImdsSupport => "imdsSupport",
        }
    }
}

/// `Attribute` as [`MODIFIABLE`] spells it. Compared without regard to case, as EC2 takes it:
/// Ansible's `ec2_ami` sends `LaunchPermission` and `Description`.
fn modifiable(attribute: &str) -> Result<&'static str, ApiError> {
    MODIFIABLE
        .iter()
        .copied()
        .find(|known| known.eq_ignore_ascii_case(attribute))
        .ok_or_else(|| unknown_attribute(attribute))
}

fn combination(message: &str) -> ApiError {
    ApiError::invalid_combination(message)
}

/// `LaunchPermission.<op>.N.{Group,UserId}`; organizations are refused (ec2d has none).
fn grants(params: &QueryParams, prefix: &str) -> Result<BTreeSet<Grantee>, ApiError> {
    let mut out = BTreeSet::new();
    for item in params.structs(prefix) {
        if item.get("OrganizationArn").is_some() || item.get("OrganizationalUnitArn").is_some() {
            return Err(organizations());
        }
        if let Some(name) = item.get("Group") {
            out.insert(group(name)?);
        }
        if let Some(id) = item.get("UserId") {
            out.insert(user(id)?);
        }
    }
    Ok(out)
}

fn organizations() -> ApiError {
    ApiError::client(
        "UnsupportedOperation",
        "ec2d has no AWS Organizations: share an AMI with accounts (UserId) or make it public (Group all)",
    )
}

fn description(value: &str) -> Result<Change, ApiError> {
    if value.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid_value(format!(
            "Value for parameter description is invalid. Length exceeds {MAX_DESCRIPTION} characters."
        )));
    }
    Ok(Change::Description(value.to_string()))
}

fn imds(value: &str) -> Result<Change, ApiError> {
    if value == "v2.0" {
        Ok(Change::ImdsSupport)
    } else {
        Err(ApiError::invalid_value(format!(
            "Value ({value}) for parameter imdsSupport is invalid. The only valid value is v2.0."
        )))
    }
}

/// The `Attribute`/`Value`/`OperationType` spelling of `attribute` (one of [`MODIFIABLE`]).
fn by_attribute(params: &QueryParams, attribute: &str) -> Result<Change, ApiError> {
    match attribute {
        "description" => description(params.require("Value")?),
        "imdsSupport" => imds(params.require("Value")?),
        _ => {
            if !params.list("OrganizationArn").is_empty()
                || !params.list("OrganizationalUnitArn").is_empty()
            {
                return Err(organizations());
            }
            let mut grantees = BTreeSet::new();
            for name in params.list("UserGroup") {
                grantees.insert(group(name)?);
            }
            for id in params.list("UserId") {
                grantees.insert(user(id)?);
            }
            if grantees.is_empty() {
                return Err(combination("No attributes specified."));
            }
            match params.require("OperationType")? {
                "add" => Ok(Change::LaunchPermission {
                    add: grantees,
                    remove: BTreeSet::new(),
                }),
                "remove" => Ok(Change::LaunchPermission {
                    add: BTreeSet::new(),
                    remove: grantees,
                }),
                other => Err(ApiError::invalid_value(format!(
                    "Value ({other}) for parameter operationType is invalid. Valid values are add and remove."
                ))),
            }
        }
    }
}

/// Whether the request also spells a change of `attribute` the `Attribute` way (`Value`, or
/// `UserId.N`/`UserGroup.N`/`Organization…Arn.N`), besides its structured parameter.
fn has_plain_spelling(params: &QueryParams, attribute: &str) -> bool {
    match attribute {
        "launchPermission" => [
            "UserId",
            "UserGroup",
            "OrganizationArn",
            "OrganizationalUnitArn",
        ]
        .iter()
        .any(|list| !params.list(list).is_empty()),
        _ => params.get("Value").is_some(),
    }
}

/// One change spelled both ways: launch permissions add up; a value must be the same.
fn merge(structured: Change, plain: Change) -> Result<Change, ApiError> {
    match (structured, plain) {
        (
            Change::LaunchPermission {
                mut add,
                mut remove,
            },
            Change::LaunchPermission {
                add: more_add,
                remove: more_remove,
            },
        ) => {
            add.extend(more_add);
            remove.extend(more_remove);
            Ok(Change::LaunchPermission { add, remove })
        }
        (structured, plain) if structured == plain => Ok(structured),
        (structured, _) => Err(combination(&format!(
            "Value and {} name different values for the {} attribute.",
            match structured.attribute() {
                "description" => "Description.Value",
                _ => "ImdsSupport.Value",
            },
            structured.attribute()
        ))),
    }
}

/// Parses and validates the request: exactly one attribute, named by `Attribute` (any case),
/// by its own parameter (`Description.Value`, `ImdsSupport.Value`, `LaunchPermission.*`), or
/// both, as Terraform's `aws_ami_launch_permission` and Ansible's `ec2_ami` send it
/// (`Attribute=launchPermission` with `LaunchPermission.Add.N.UserId`). `Value` or
/// `OperationType` with `UserId.N`/`UserGroup.N` is needed only when `Attribute` names an
/// attribute its own parameter does not give.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let image_id = ImageId::parse(params.require("ImageId")?)?;
    let mut structured = Vec::new();
    if let Some(value) = params.get("Description.Value") {
        structured.push(description(value)?);
    }
    if let Some(value) = params.get("ImdsSupport.Value") {
        structured.push(imds(value)?);
    }
    let add = grants(params, "LaunchPermission.Add")?;
    let remove = grants(params, "LaunchPermission.Remove")?;
    if !add.is_empty() || !remove.is_empty() {
        structured.push(Change::LaunchPermission { add, remove });
    }
    let named = match params.get("Attribute").filter(|a| !a.is_empty()) {
        Some(attribute) => Some(modifiable(attribute)?),
        None => None,
    };
    let change = match named {
        None => match structured.len() {
            0 => return Err(combination("No attributes specified.")),
            1 => structured.pop().expect("one change"),
            _ => return Err(combination("Only one attribute can be modified at a time.")),
        },
        Some(attribute) => {
            if structured.iter().any(|c| c.attribute() != attribute) {
                return Err(combination("Only one attribute can be modified at a time."));
            }
            match structured.pop() {
                None => by_attribute(params, attribute)?,
                Some(change) if has_plain_spelling(params, attribute) => {
                    merge(change, by_attribute(params, attribute)?)?
                }
                Some(change) => change,
            }
        }
    };
    Ok(Request {
        image_id,
        change,
        dry_run: kind::dry_run(params)?,
    })
}

/// Applies the change to the AMI's spec. Only the owner may: a public AMI is `AuthFailure`;
/// an AMI discovered from a Docker tag is observed state with no attributes of its own
/// (`UnsupportedOperation`, as for its tags). Nothing here asks the reconciler for anything,
/// so the generation stays.
pub fn handle(state: &ApiState, region: &str, req: &Request) -> Result<(), ApiError> {
    let id = &req.image_id;
    let not_found = || ApiError::images_not_found(&[id.to_string()]);
    match images::find_ami(state, region, id)? {
        None => return Err(not_found()),
        Some(Ami::Public { .. }) => return Err(images::not_authorized(id.as_str())),
        Some(Ami::Own(image)) if image.spec.source == ImageSource::Docker => {
            return Err(ApiError::client(
                "UnsupportedOperation",
                format!(
                    "The image '{id}' comes from a Docker tag; ec2d keeps attributes only for \
                     images made by CreateImage or CopyImage"
                ),
            ))
        }
        Some(Ami::Own(_)) => {}
    }
    kind::check_dry_run(req.dry_run)?;
    state
        .store
        .images()
        .update_spec_same_generation(id.as_str(), |image| {
            if image.metadata.namespace != region || image.spec.deregistered {
                return Err(not_found());
            }
            let spec = &mut image.spec;
            let before = (
                spec.description.clone(),
                spec.launch_permissions.clone(),
                spec.imds_support.clone(),
            );
            match &req.change {
                Change::Description(text) => spec.description = Some(text.clone()),
                Change::ImdsSupport => spec.imds_support = Some("v2.0".to_string()),
                Change::LaunchPermission { add, remove } => {
                    let permissions = &mut spec.launch_permissions;
                    for grantee in add {
                        match grantee {
                            Grantee::All => permissions.public = true,
                            Grantee::User(id) => {
                                permissions.user_ids.insert(id.clone());
                            }
                        }
                    }
                    for grantee in remove {
                        match grantee {
                            Grantee::All => permissions.public = false,
                            Grantee::User(id) => {
                                permissions.user_ids.remove(id);
                            }
                        }
                    }
                }
            }
            Ok(before
                != (
                    spec.description.clone(),
                    spec.launch_permissions.clone(),
                    spec.imds_support.clone(),
                ))
        })
        // A record collected between the look-up and the write is the store's `NotFound`,
        // which reads as `InvalidAMIID.NotFound`.
        .map(drop)
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, &parse(params)?)?;
    Ok(render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(s))
    }

    #[test]
    fn both_spellings() {
        assert_eq!(
            q("ImageId=ami-12345678&Description.Value=new")
                .unwrap()
                .change,
            Change::Description("new".into())
        );
        assert_eq!(
            q("ImageId=ami-12345678&Attribute=description&Value=new")
                .unwrap()
                .change,
            Change::Description("new".into())
        );
        assert_eq!(
            q("ImageId=ami-12345678&LaunchPermission.Add.1.Group=all&LaunchPermission.Remove.1.UserId=123456789012")
                .unwrap()
                .change,
            Change::LaunchPermission {
                add: [Grantee::All].into(),
                remove: [Grantee::User("123456789012".into())].into(),
            }
        );
        assert_eq!(
            q("ImageId=ami-12345678&Attribute=launchPermission&OperationType=remove&UserGroup.1=all")
                .unwrap()
                .change,
            Change::LaunchPermission {
                add: BTreeSet::new(),
                remove: [Grantee::All].into(),
            }
        );
        assert_eq!(
            q("ImageId=ami-12345678&ImdsSupport.Value=v2.0")
                .unwrap()
                .change,
            Change::ImdsSupport
        );
    }

    /// `Attribute` naming what the structured parameter changes is one change (Terraform's
    /// and Ansible's requests), in any case; both spellings of one change add up.
    #[test]
    fn attribute_with_its_structured_parameter() {
        let user = |id: &str| Grantee::User(id.into());
        assert_eq!(
            q("ImageId=ami-12345678&Attribute=launchPermission&LaunchPermission.Add.1.UserId=123456789012")
                .unwrap()
                .change,
            Change::LaunchPermission {
                add: [user("123456789012")].into(),
                remove: BTreeSet::new(),
            }
        );
        assert_eq!(
            q("ImageId=ami-12345678&Attribute=LaunchPermission&LaunchPermission.Add.1.Group=all&LaunchPermission.Add.2.UserId=123456789012")
                .unwrap()
                .change,
            Change::LaunchPermission {
                add: [Grantee::All, user("123456789012")].into(),
                remove: BTreeSet::new(),
            }
        );
        assert_eq!(
            q("ImageId=ami-12345678&Attribute=Description&Description.Value=new")
                .unwrap()
                .change,
            Change::Description("new".into())
        );
        assert_eq!(
            q("ImageId=ami-12345678&Attribute=IMDSSUPPORT&ImdsSupport.Value=v2.0")
                .unwrap()
                .change,
            Change::ImdsSupport
        );
        assert_eq!(
            q("ImageId=ami-12345678&Attribute=description&Value=same&Description.Value=same")
                .unwrap()
                .change,
            Change::Description("same".into())
        );
        assert_eq!(
            q("ImageId=ami-12345678&Attribute=launchPermission&LaunchPermission.Add.1.Group=all&OperationType=remove&UserId.1=123456789012")
                .unwrap()
                .change,
            Change::LaunchPermission {
                add: [Grantee::All].into(),
                remove: [user("123456789012")].into(),
            }
        );
        let message = |s: &str| q(s).unwrap_err().message;
        assert_eq!(
            message("ImageId=ami-12345678&Attribute=description&ImdsSupport.Value=v2.0"),
            "Only one attribute can be modified at a time."
        );
        assert_eq!(
            message("ImageId=ami-12345678&Attribute=description&Value=a&Description.Value=b"),
            "Value and Description.Value name different values for the description attribute."
        );
        assert_eq!(
            message("ImageId=ami-12345678&Attribute=launchPermission&LaunchPermission.Add.1.Group=all&UserId.1=123456789012"),
            "The request must contain the parameter OperationType"
        );
        assert_eq!(
            message("ImageId=ami-12345678&Attribute=LaunchPermission&UserId.1=123456789012"),
            "The request must contain the parameter OperationType"
        );
        assert_eq!(
            message("ImageId=ami-12345678&Attribute=launchPermission"),
            "No attributes specified."
        );
    }

    #[test]
    fn errors() {
        let code = |s: &str| q(s).unwrap_err().code.to_string();
        let message = |s: &str| q(s).unwrap_err().message;
        assert_eq!(message("ImageId=ami-12345678"), "No attributes specified.");
        assert_eq!(code("ImageId=ami-12345678"), "InvalidParameterCombination");
        assert_eq!(
            message("ImageId=ami-12345678&Description.Value=a&ImdsSupport.Value=v2.0"),
            "Only one attribute can be modified at a time."
        );
        assert_eq!(
            message("ImageId=ami-12345678&Attribute=bootMode&Value=uefi"),
            "Value (bootMode) for parameter attribute is invalid. Unknown attribute."
        );
        assert_eq!(
            message("ImageId=ami-12345678&LaunchPermission.Add.1.UserId=42"),
            "Invalid attribute item value \"42\" for userId item type."
        );
        assert_eq!(
            code("ImageId=ami-12345678&LaunchPermission.Add.1.Group=friends"),
            "InvalidAMIAttributeItemValue"
        );
        assert_eq!(
            code("ImageId=ami-12345678&Attribute=launchPermission&UserId.1=123456789012&OperationType=toggle"),
            "InvalidParameterValue"
        );
        assert_eq!(
            message("ImageId=ami-12345678&Attribute=launchPermission&UserId.1=123456789012"),
            "The request must contain the parameter OperationType"
        );
        assert_eq!(
            code("ImageId=ami-12345678&ImdsSupport.Value=v1.0"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(&format!(
                "ImageId=ami-12345678&Description.Value={}",
                "d".repeat(256)
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("ImageId=ami-12345678&LaunchPermission.Add.1.OrganizationArn=arn:aws:organizations::1:organization/o-1"),
            "UnsupportedOperation"
        );
    }
}
