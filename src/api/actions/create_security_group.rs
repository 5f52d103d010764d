//! `CreateSecurityGroup`: validates the name and VPC, then records a group with AWS's default egress rule.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::network::{allow_all_egress, generate_group_id, security_group, GROUP_ID_PREFIX};
use crate::model::{now, SecurityGroupSpec, DEFAULT_GROUP_NAME};

use crate::api::groups::{ensure_default_group, region_groups};
use crate::api::kind::Kind;
use crate::api::kinds::VpcKind;
use crate::api::render::render_tags;
use crate::api::{kind, tags};
use crate::model::region;
use crate::store::StoreError;

/// The longest group name and description EC2 accepts.
const MAX_LENGTH: usize = 255;

/// A validated CreateSecurityGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GroupName`.
    pub group_name: String,
    /// `GroupDescription`.
    pub description: String,
    /// `VpcId`; the region's default VPC when absent.
    pub vpc_id: Option<String>,
    /// Tags of `TagSpecification`s with `ResourceType=security-group`.
    pub tags: BTreeMap<String, String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Response {
    /// `sg-…`.
    pub group_id: String,
    /// The group's tags.
    pub tags: BTreeMap<String, String>,
}

/// EC2's character set for VPC group names and descriptions.
fn valid_text(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c))
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let group_name = params.require("GroupName")?;
    let description = params.require("GroupDescription")?;
    if group_name.is_empty() || group_name.chars().count() > MAX_LENGTH || !valid_text(group_name) {
        return Err(ApiError::invalid_value(format!(
            "Value ({group_name}) for parameter GroupName is invalid. Character sets beyond ASCII are not supported; up to {MAX_LENGTH} characters of a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{{}}!$*."
        )));
    }
    if group_name.starts_with(GROUP_ID_PREFIX) {
        return Err(ApiError::invalid_value(
            "Group names may not be in the format sg-*.",
        ));
    }
    // EC2 requires a description; an empty one reads as none given (AWS refuses to create a
    // group with an empty description: ansible/ansible#19791).
    if description.is_empty() {
        return Err(ApiError::missing_parameter("GroupDescription"));
    }
    // Real EC2's wording (cds-snc/notification-terraform#561), two spaces included.
    if description.chars().count() > MAX_LENGTH || !valid_text(description) {
        return Err(ApiError::invalid_value(
            "Invalid security group description. Valid descriptions are strings less than 256 \
             characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*",
        ));
    }
    let vpc_id = params.get("VpcId").filter(|v| !v.is_empty());
    if let Some(id) = vpc_id {
        VpcKind::check_id(id)?;
    }
    Ok(Request {
        group_name: group_name.to_string(),
        description: description.to_string(),
        vpc_id: vpc_id.map(str::to_string),
        tags: tags::tag_specifications(params, &["security-group"])?,
        dry_run: kind::dry_run(params)?,
    })
}

/// Checks the VPC and that the name is free in it, then writes the group.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    let vpc_id = match &req.vpc_id {
        Some(asked) => {
            crate::api::kinds::vpc::find_vpc(state, region, asked)?
                .ok_or_else(|| VpcKind::IDS.not_found(&[asked]))?
                .vpc_id
        }
        None => region::defaults(region).vpc.vpc_id.clone(),
    };
    if req.group_name == DEFAULT_GROUP_NAME {
        return Err(ApiError::client(
            "InvalidGroup.Reserved",
            "The security group 'default' is reserved",
        ));
    }
    let duplicate = {
        let message = format!(
            "The security group '{}' already exists for VPC '{vpc_id}'",
            req.group_name
        );
        move || ApiError::client("InvalidGroup.Duplicate", message.clone())
    };
    // Answers a taken name before DryRun; the store's name index decides at the write.
    if region_groups(state, region)?
        .iter()
        .any(|g| g.spec.group_name == req.group_name && g.spec.vpc_id == vpc_id)
    {
        return Err(duplicate());
    }
    kind::check_dry_run(req.dry_run)?;
    // The region's network is written to: its `default` group is stored first.
    ensure_default_group(state, region)?;
    let id = generate_group_id();
    let group = security_group(
        &id,
        region,
        SecurityGroupSpec {
            group_name: req.group_name,
            description: req.description,
            vpc_id,
            ingress: Vec::new(),
            egress: allow_all_egress(),
            tags: req.tags.clone(),
            rule_meta: Default::default(),
        },
        now(),
    );
    match state.store.create_security_group(&group) {
        Ok(()) => {}
        Err(StoreError::NameTaken { .. }) => return Err(duplicate()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(group_id = %id, group_name = %group.spec.group_name, %region, "security group created");
    Ok(Response {
        group_id: id,
        tags: req.tags,
    })
}

/// `return`, `groupId`, `tagSet`.
pub fn render(resp: &Response) -> String {
    let mut w = XmlWriter::new();
    w.field("return", true);
    w.field("groupId", &resp.group_id);
    render_tags(&mut w, &resp.tags);
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn valid_request() {
        let req = parse_str(
            "GroupName=web&GroupDescription=web%20servers&TagSpecification.1.ResourceType=security-group\
             &TagSpecification.1.Tag.1.Key=team&TagSpecification.1.Tag.1.Value=a",
        )
        .unwrap();
        assert_eq!(req.group_name, "web");
        assert_eq!(req.description, "web servers");
        assert_eq!(req.vpc_id, None);
        assert_eq!(req.tags["team"], "a");
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_str("GroupDescription=d").unwrap_err().message,
            "The request must contain the parameter GroupName"
        );
        assert_eq!(
            parse_str("GroupName=web").unwrap_err().message,
            "The request must contain the parameter GroupDescription"
        );
        assert_eq!(
            parse_str("GroupName=sg-web&GroupDescription=d")
                .unwrap_err()
                .message,
            "Group names may not be in the format sg-*."
        );
        assert_eq!(
            parse_str("GroupName=%3Cx%3E&GroupDescription=d")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        assert_eq!(
            parse_str("GroupName=web&GroupDescription=")
                .unwrap_err()
                .message,
            "The request must contain the parameter GroupDescription"
        );
        let e = parse_str("GroupName=web&GroupDescription=caf%C3%A9").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert!(e.message.starts_with("Invalid security group description."));
        let long = "n".repeat(256);
        assert!(parse_str(&format!("GroupName={long}&GroupDescription=d")).is_err());
        assert!(parse_str(&format!("GroupName=w&GroupDescription={long}")).is_err());
        assert!(parse_str(&format!("GroupName=w&GroupDescription={}", &long[1..])).is_ok());
        assert_eq!(
            parse_str(
                "GroupName=w&GroupDescription=d&TagSpecification.1.ResourceType=instance\
                 &TagSpecification.1.Tag.1.Key=k"
            )
            .unwrap_err()
            .message,
            "'instance' is not a valid taggable resource type for this operation."
        );
        assert_eq!(
            parse_str("GroupName=w&GroupDescription=d&VpcId=x")
                .unwrap_err()
                .code,
            "InvalidVpcID.Malformed"
        );
    }
}
