//! `DeleteSecurityGroup`: removes a group by id or name unless it is `default` or something still depends on it.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{InstanceState, DEFAULT_GROUP_NAME};

use crate::api::groups::{region_groups, resolve_group, GroupRef};
use crate::api::{instances, kind};

/// A validated DeleteSecurityGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GroupId`, else `GroupName`; either may be an id or a name.
    pub group: GroupRef,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses the request: one of `GroupId` and `GroupName` is required.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let raw = params
        .get("GroupId")
        .or_else(|| params.get("GroupName"))
        .ok_or_else(|| ApiError::missing_parameter("GroupId"))?;
    Ok(Request {
        group: GroupRef::parse(raw)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// Refuses `default` and groups that an instance (not terminated) or another group's rule
/// still uses, as EC2 does; otherwise deletes. Returns the deleted group's id. The store
/// runs the dependency check again whenever a launch put instances in the group meanwhile
/// ([`crate::store::Store::delete_security_group`]), so no launch can slip in between.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<String, ApiError> {
    let group = resolve_group(state, region, &req.group)?;
    let id = group.metadata.name.clone();
    if group.spec.group_name == DEFAULT_GROUP_NAME {
        return Err(ApiError::client(
            "CannotDelete",
            format!(
                "the specified group: \"{id}\" name: \"{DEFAULT_GROUP_NAME}\" cannot be deleted by a user"
            ),
        ));
    }
    let dependency = || {
        ApiError::client(
            "DependencyViolation",
            format!("resource {id} has a dependent object"),
        )
    };
    let still_deletable = || {
        let in_use = instances::region_instances(state, region)?
            .iter()
            .filter(|i| instances::shown_state(i) != InstanceState::Terminated)
            .any(|i| i.spec.security_groups.iter().any(|g| g.group_id == id));
        if in_use {
            return Err(dependency());
        }
        let referenced = region_groups(state, region)?
            .iter()
            .any(|g| g.metadata.name != id && g.spec.references(&id));
        if referenced {
            return Err(dependency());
        }
        kind::check_dry_run(req.dry_run)
    };
    if state
        .store
        .delete_security_group(&id, still_deletable)?
        .is_none()
    {
        // Deleted by a concurrent request since it was resolved.
        return Err(req.group.not_found(region));
    }
    tracing::info!(group_id = %id, %region, "security group deleted");
    Ok(id)
}

/// `return`, `groupId`.
pub fn render(id: &str) -> String {
    let mut w = XmlWriter::new();
    w.field("return", true);
    w.field("groupId", id);
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_or_name() {
        let q = QueryParams::from_query("GroupName=web");
        assert_eq!(parse(&q).unwrap().group, GroupRef::Name("web".into()));
        let q = QueryParams::from_query("GroupId=sg-0abc&GroupName=ignored");
        assert_eq!(parse(&q).unwrap().group, GroupRef::Id("sg-0abc".into()));
        let e = parse(&QueryParams::default()).unwrap_err();
        assert_eq!(e.message, "The request must contain the parameter GroupId");
        let q = QueryParams::from_query("GroupId=sg-zz");
        assert_eq!(parse(&q).unwrap_err().code, "InvalidGroupId.Malformed");
    }
}
