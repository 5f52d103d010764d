//! `CreateTags`: adds or overwrites tags on instances, security groups, key pairs, CreateImage AMIs and launch templates.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

use crate::api::tags::{self, user_tag_count, Resource, MAX_TAGS_PER_RESOURCE};
use crate::api::{kind, render};

/// A validated CreateTags request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `ResourceId.N`, deduplicated.
    pub resources: Vec<Resource>,
    /// `Tag.N.Key` / `Tag.N.Value` (a missing value is the empty string, as in EC2); a key
    /// given twice keeps its last value.
    pub tags: Vec<(String, String)>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses ids and tags; every tag is checked (length, the reserved `aws:` prefix).
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let resources = tags::resource_ids(params)?;
    let given = params.structs("Tag");
    if given.is_empty() {
        return Err(ApiError::missing_parameter("Tag"));
    }
    let mut tags: Vec<(String, String)> = Vec::with_capacity(given.len());
    for (i, tag) in given.iter().enumerate() {
        let key = tag
            .get("Key")
            .ok_or_else(|| ApiError::missing_parameter(&format!("Tag.{}.Key", i + 1)))?;
        let value = tag.get("Value").unwrap_or_default();
        tags::validate_tag(key, value)?;
        tags.retain(|(k, _)| k != key);
        tags.push((key.to_string(), value.to_string()));
    }
    Ok(Request {
        resources,
        tags,
        dry_run: kind::dry_run(params)?,
    })
}

/// Checks every resource (it exists in the region; the tags fit) before writing any, so a
/// bad id leaves all untouched; then writes each resource's tags.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    for resource in &req.resources {
        let mut merged = tags::existing_tags(state, region, resource)?;
        merged.extend(req.tags.iter().cloned());
        if user_tag_count(&merged) > MAX_TAGS_PER_RESOURCE {
            return Err(tags::tag_limit_exceeded(resource.id()));
        }
    }
    kind::check_dry_run(req.dry_run)?;
    for resource in &req.resources {
        tags::change_tags(state, region, resource, |tags| {
            let mut changed = false;
            for (key, value) in &req.tags {
                if tags.get(key) != Some(value) {
                    tags.insert(key.clone(), value.clone());
                    changed = true;
                }
            }
            changed
        })?;
        tracing::info!(
            resource_id = resource.id(),
            tags = req.tags.len(),
            "tags created"
        );
    }
    Ok(())
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, parse(params)?)?;
    Ok(render::render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn parses_resources_and_tags() {
        let req = parse_str(
            "ResourceId.1=i-0123456789abcdef0&ResourceId.2=sg-0123456789abcdef0\
             &ResourceId.3=i-0123456789abcdef0&Tag.1.Key=Name&Tag.1.Value=web&Tag.2.Key=empty",
        )
        .unwrap();
        assert_eq!(req.resources.len(), 2);
        assert_eq!(req.resources[1].type_name(), "security-group");
        assert_eq!(
            req.tags,
            vec![
                ("Name".to_string(), "web".to_string()),
                ("empty".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn rejects_what_ec2_rejects() {
        let code = |q: &str| parse_str(q).unwrap_err().code;
        assert_eq!(code("Tag.1.Key=a"), "MissingParameter");
        assert_eq!(code("ResourceId.1=i-0123456789abcdef0"), "MissingParameter");
        assert_eq!(
            code("ResourceId.1=i-0123456789abcdef0&Tag.1.Value=v"),
            "MissingParameter"
        );
        assert_eq!(
            code("ResourceId.1=i-zz&Tag.1.Key=a"),
            "InvalidInstanceID.Malformed"
        );
        assert_eq!(
            code("ResourceId.1=vpc-12!&Tag.1.Key=a"),
            "InvalidVpcID.Malformed"
        );
        assert_eq!(code("ResourceId.1=eni-12345678&Tag.1.Key=a"), "InvalidID");
        assert_eq!(code("ResourceId.1=bogus&Tag.1.Key=a"), "InvalidID");
        assert_eq!(
            code("ResourceId.1=i-0123456789abcdef0&Tag.1.Key=aws:x"),
            "InvalidParameterValue"
        );
        let long = "k".repeat(200);
        assert_eq!(
            code(&format!(
                "ResourceId.1=i-0123456789abcdef0&Tag.1.Key={long}"
            )),
            "InvalidParameterValue"
        );
    }
}
