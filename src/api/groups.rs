//! Security groups by reference: `GroupRef` (an id or a name), lookups in a region, and the region's `default` group, derived until a write stores it.

use std::collections::BTreeMap;
use std::fmt;

use super::error::ApiError;
use super::query::QueryParams;
use super::state::ApiState;
use crate::api::kind::Kind;
use crate::api::kinds::SecurityGroupKind;
use crate::model::network::{default_security_group, is_group_id, Subnet, GROUP_ID_PREFIX};
use crate::model::{now, region, SecurityGroup};
use crate::store::StoreError;

/// How a request names a group: anything starting `sg-` is an id (AWS forbids such names),
/// anything else a name, so `--group-id default` works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    /// `sg-…`.
    Id(String),
    /// `default`, `web`, ….
    Name(String),
}

impl fmt::Display for GroupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl GroupRef {
    /// Classifies a reference; an `sg-` value that is not a valid id is `InvalidGroupId.Malformed`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        if s.starts_with(GROUP_ID_PREFIX) || s.is_empty() {
            if is_group_id(s) {
                Ok(Self::Id(s.to_string()))
            } else {
                Err(SecurityGroupKind::IDS.malformed(s))
            }
        } else {
            Ok(Self::Name(s.to_string()))
        }
    }

    /// The reference as the client wrote it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(s) | Self::Name(s) => s,
        }
    }

    /// `InvalidGroup.NotFound` for this reference: ids plainly, names with the default VPC
    /// they were looked up in, as AWS words both.
    pub fn not_found(&self, region: &str) -> ApiError {
        let message = match self {
            Self::Id(id) => format!("The security group '{id}' does not exist"),
            Self::Name(name) => format!(
                "The security group '{name}' does not exist in default VPC '{}'",
                region::defaults(region).vpc.vpc_id
            ),
        };
        ApiError::client("InvalidGroup.NotFound", message)
    }
}

/// Stores the region's `default` group when it is not stored yet: called by writes that need
/// the region's network (a rule change, a tag, a launch), never by reads. Its id is derived
/// from the region, so a racing creation hits `AlreadyExists` on the same key and both
/// callers agree.
pub fn ensure_default_group(state: &ApiState, region: &str) -> Result<(), ApiError> {
    let id = &region::defaults(region).group_id;
    if state.store.security_groups().get_shared(id)?.is_some() {
        return Ok(());
    }
    let group = default_security_group(region, now());
    match state.store.create_security_group(&group) {
        Ok(()) => {
            tracing::info!(group_id = %group.metadata.name, %region, "default security group created");
            Ok(())
        }
        Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Every group of the region in id order, the `default` one derived (as the default VPC is)
/// until a write stores it: reads never write.
pub fn region_groups(state: &ApiState, region: &str) -> Result<Vec<SecurityGroup>, ApiError> {
    let mut groups: Vec<SecurityGroup> = state
        .store
        .security_groups()
        .list()?
        .objects
        .into_iter()
        .filter(|g| g.metadata.namespace == region)
        .collect();
    let default_id = &region::defaults(region).group_id;
    if !groups.iter().any(|g| g.metadata.name == *default_id) {
        let at = groups
            .binary_search_by(|g| g.metadata.name.as_str().cmp(default_id))
            .unwrap_or_else(|at| at);
        groups.insert(at, default_security_group(region, now()));
    }
    Ok(groups)
}

/// Looks a group up in the region by id or name; `None` when there is no such group.
pub fn find_group(
    state: &ApiState,
    region: &str,
    reference: &GroupRef,
) -> Result<Option<SecurityGroup>, ApiError> {
    match reference {
        GroupRef::Id(id) => {
            let stored = state
                .store
                .security_groups()
                .get(id)?
                .filter(|g| g.metadata.namespace == region);
            let derived = || {
                (*id == region::defaults(region).group_id)
                    .then(|| default_security_group(region, now()))
            };
            Ok(stored.or_else(derived))
        }
        // A name names a group of the default VPC, as in EC2 (names are unique per VPC).
        GroupRef::Name(name) => {
            let vpc_id = &region::defaults(region).vpc.vpc_id;
            Ok(region_groups(state, region)?
                .into_iter()
                .find(|g| g.spec.group_name == *name && g.spec.vpc_id == *vpc_id))
        }
    }
}

/// Like [`find_group`], but a missing group is `InvalidGroup.NotFound`.
pub fn resolve_group(
    state: &ApiState,
    region: &str,
    reference: &GroupRef,
) -> Result<SecurityGroup, ApiError> {
    find_group(state, region, reference)?.ok_or_else(|| reference.not_found(region))
}

/// A list of group ids (`GroupId.N`, `SecurityGroupId.N`), duplicates dropped in order; a
/// name is `InvalidGroupId.Malformed`, since these parameters take ids only ("You must
/// specify the ID of the security group, not the name").
pub fn parse_group_ids(raw: Vec<&str>) -> Result<Vec<String>, ApiError> {
    let mut ids: Vec<String> = Vec::new();
    for raw in raw {
        match GroupRef::parse(raw)? {
            GroupRef::Id(id) if !ids.contains(&id) => ids.push(id),
            GroupRef::Id(_) => {}
            GroupRef::Name(name) => return Err(SecurityGroupKind::IDS.malformed(&name)),
        }
    }
    Ok(ids)
}

/// Checks a launch's group is in its subnet's VPC, with EC2's `InvalidParameter`.
pub fn check_same_network(group: &SecurityGroup, subnet: &Subnet) -> Result<(), ApiError> {
    if group.spec.vpc_id == subnet.vpc_id {
        return Ok(());
    }
    Err(ApiError::client(
        "InvalidParameter",
        format!(
            "Security group {} and subnet {} belong to different networks.",
            group.metadata.name, subnet.subnet_id
        ),
    ))
}

/// The name of every group of the region by id, for filters and renderings that show peers.
pub fn names_by_id(groups: &[SecurityGroup]) -> BTreeMap<String, String> {
    groups
        .iter()
        .map(|g| (g.metadata.name.clone(), g.spec.group_name.clone()))
        .collect()
}

/// The group an Authorize/Revoke call names: `GroupId`, else `GroupName`.
pub fn group_param(params: &QueryParams) -> Result<GroupRef, ApiError> {
    let raw = params
        .get("GroupId")
        .or_else(|| params.get("GroupName"))
        .ok_or_else(|| ApiError::missing_parameter("GroupId"))?;
    GroupRef::parse(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_references() {
        assert_eq!(
            GroupRef::parse("default").unwrap(),
            GroupRef::Name("default".into())
        );
        assert_eq!(
            GroupRef::parse("sg-0123abcd").unwrap(),
            GroupRef::Id("sg-0123abcd".into())
        );
        let e = GroupRef::parse("sg-nothex!").unwrap_err();
        assert_eq!(e.code, "InvalidGroupId.Malformed");
        assert_eq!(
            e.message,
            "Invalid id: \"sg-nothex!\" (expecting \"sg-...\")"
        );
        let e = GroupRef::Name("web".into()).not_found("us-east-1");
        assert_eq!(e.code, "InvalidGroup.NotFound");
        assert_eq!(
            e.message,
            format!(
                "The security group 'web' does not exist in default VPC '{}'",
                region::defaults("us-east-1").vpc.vpc_id
            )
        );
        assert_eq!(
            GroupRef::Id("sg-1".into()).not_found("us-east-1").message,
            "The security group 'sg-1' does not exist"
        );
    }
}
