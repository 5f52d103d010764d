//! `ModifySnapshotAttribute`: adds or removes `createVolumePermission` grants (the `all` group, accounts), in either of EC2's two spellings (`Attribute`/`OperationType`/`UserId.N`/`UserGroup.N`, or `CreateVolumePermission.Add.N`/`.Remove.N`).

use std::collections::BTreeSet;

use crate::api::actions::describe_image_attribute::unknown_attribute;
use crate::api::attributes::{permission_group as group, permission_user as user, Grantee};
use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::snapshots;
use crate::api::state::ApiState;

/// A validated ModifySnapshotAttribute request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `SnapshotId`.
    pub snapshot_id: String,
    /// Grants added.
    pub add: BTreeSet<Grantee>,
    /// Grants removed (after the additions).
    pub remove: BTreeSet<Grantee>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// `CreateVolumePermission.<op>.N.{UserId,Group}`.
fn grants(params: &QueryParams, prefix: &str) -> Result<BTreeSet<Grantee>, ApiError> {
    let mut out = BTreeSet::new();
    for item in params.structs(prefix) {
        if let Some(name) = item.get("Group") {
            out.insert(group(name)?);
        }
        if let Some(id) = item.get("UserId") {
            out.insert(user(id)?);
        }
    }
    Ok(out)
}

/// Parses and validates the request. `Attribute` may be left out when the structured
/// `CreateVolumePermission` parameter says it all; when given it must be
/// `createVolumePermission` (`productCodes` cannot be changed). Both spellings add up.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let snapshot_id = snapshots::parse_id(params.require("SnapshotId")?)?;
    match params.get("Attribute").filter(|a| !a.is_empty()) {
        None | Some("createVolumePermission") => {}
        Some("productCodes") => {
            return Err(ApiError::invalid_value(
                "Value (productCodes) for parameter attribute is invalid. Only createVolumePermission can be modified.",
            ))
        }
        Some(other) => return Err(unknown_attribute(other)),
    }
    let mut add = grants(params, "CreateVolumePermission.Add")?;
    let mut remove = grants(params, "CreateVolumePermission.Remove")?;
    let mut plain = BTreeSet::new();
    for name in params.list("UserGroup") {
        plain.insert(group(name)?);
    }
    for id in params.list("UserId") {
        plain.insert(user(id)?);
    }
    if !plain.is_empty() {
        match params.require("OperationType")? {
            "add" => add.extend(plain),
            "remove" => remove.extend(plain),
            other => {
                return Err(ApiError::invalid_value(format!(
                    "Value ({other}) for parameter operationType is invalid. Valid values are add and remove."
                )))
            }
        }
    }
    if add.is_empty() && remove.is_empty() {
        return Err(ApiError::invalid_combination("No attributes specified."));
    }
    Ok(Request {
        snapshot_id,
        add,
        remove,
        dry_run: kind::dry_run(params)?,
    })
}

/// The permissions after the request: the additions, then the removals, in order.
pub fn apply(
    current: &[String],
    add: &BTreeSet<Grantee>,
    remove: &BTreeSet<Grantee>,
) -> Vec<String> {
    let mut all: BTreeSet<String> = current.iter().cloned().collect();
    all.extend(add.iter().map(|g| g.stored().to_string()));
    for grantee in remove {
        all.remove(grantee.stored());
    }
    all.into_iter().collect()
}

/// Applies the change with a compare-and-swap on the snapshot's record. Nothing here asks the
/// reconciler for anything, so the generation stays.
pub fn handle(state: &ApiState, region: &str, req: &Request) -> Result<(), ApiError> {
    snapshots::update_permissions(state, region, &req.snapshot_id, req.dry_run, |current| {
        apply(current, &req.add, &req.remove)
    })
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

    fn user_of(id: &str) -> Grantee {
        Grantee::User(id.into())
    }

    #[test]
    fn both_spellings() {
        let req = q("SnapshotId=snap-12345678&Attribute=createVolumePermission&OperationType=add&UserId.1=123456789012&UserGroup.1=all")
            .unwrap();
        assert_eq!(req.add, [Grantee::All, user_of("123456789012")].into());
        assert!(req.remove.is_empty());
        let req = q(
            "SnapshotId=snap-12345678&CreateVolumePermission.Add.1.UserId=123456789012\
                     &CreateVolumePermission.Remove.1.Group=all",
        )
        .unwrap();
        assert_eq!(req.add, [user_of("123456789012")].into());
        assert_eq!(req.remove, [Grantee::All].into());
        let req = q("SnapshotId=snap-12345678&Attribute=createVolumePermission&OperationType=remove&UserGroup.1=all\
                     &CreateVolumePermission.Add.1.UserId=123456789012")
        .unwrap();
        assert_eq!(req.add, [user_of("123456789012")].into());
        assert_eq!(req.remove, [Grantee::All].into());
    }

    #[test]
    fn errors() {
        let err = |s: &str| q(s).unwrap_err();
        assert_eq!(
            err("SnapshotId=snap-12345678&Attribute=createVolumePermission").message,
            "No attributes specified."
        );
        assert_eq!(
            err("SnapshotId=snap-12345678&Attribute=colour&UserGroup.1=all&OperationType=add")
                .message,
            "Value (colour) for parameter attribute is invalid. Unknown attribute."
        );
        assert_eq!(
            err("SnapshotId=snap-12345678&Attribute=productCodes").code,
            "InvalidParameterValue"
        );
        let e = err("SnapshotId=snap-12345678&OperationType=add&UserGroup.1=friends");
        assert_eq!(e.code, "InvalidAMIAttributeItemValue");
        assert_eq!(
            e.message,
            "Invalid attribute item value \"friends\" for group item type."
        );
        assert_eq!(
            err("SnapshotId=snap-12345678&CreateVolumePermission.Add.1.UserId=42").code,
            "InvalidAMIAttributeItemValue"
        );
        assert_eq!(
            err("SnapshotId=snap-12345678&UserId.1=123456789012").message,
            "The request must contain the parameter OperationType"
        );
        assert_eq!(
            err("SnapshotId=snap-12345678&UserId.1=123456789012&OperationType=toggle").code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn additions_then_removals() {
        let current = vec!["123456789012".to_string()];
        assert_eq!(
            apply(
                &current,
                &[Grantee::All].into(),
                &[user_of("123456789012")].into()
            ),
            vec!["all".to_string()]
        );
        assert_eq!(
            apply(
                &current,
                &[user_of("123456789012")].into(),
                &BTreeSet::new()
            ),
            current
        );
    }
}
