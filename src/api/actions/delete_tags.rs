//! `DeleteTags`: removes tags (all the user's, those keys, or those key-value pairs) from taggable resources.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;

use crate::api::tags::{self, Resource};
use crate::api::{kind, render};

/// One `Tag.N` of a DeleteTags request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagToDelete {
    /// `Tag.N.Key`.
    pub key: String,
    /// `Tag.N.Value`: when given (even empty), the tag goes only if its value is this one.
    pub value: Option<String>,
}

/// A validated DeleteTags request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `ResourceId.N`, deduplicated.
    pub resources: Vec<Resource>,
    /// `Tag.N`; `None` (no `Tag` at all) deletes every tag the user set on the resources, as in
    /// EC2 (its own `aws:` tags stay).
    pub tags: Option<Vec<TagToDelete>>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses ids and the tags to delete.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let resources = tags::resource_ids(params)?;
    let given = params.structs("Tag");
    let tags = if given.is_empty() {
        None
    } else {
        let mut tags = Vec::with_capacity(given.len());
        for (i, tag) in given.iter().enumerate() {
            let key = tag
                .get("Key")
                .ok_or_else(|| ApiError::missing_parameter(&format!("Tag.{}.Key", i + 1)))?;
            tags::validate_tag(key, tag.get("Value").unwrap_or_default())?;
            tags.push(TagToDelete {
                key: key.to_string(),
                value: tag.get("Value").map(str::to_string),
            });
        }
        Some(tags)
    };
    Ok(Request {
        resources,
        tags,
        dry_run: kind::dry_run(params)?,
    })
}

/// Checks every resource exists in the region before changing any, then deletes.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    for resource in &req.resources {
        tags::existing_tags(state, region, resource)?;
    }
    kind::check_dry_run(req.dry_run)?;
    for resource in &req.resources {
        tags::change_tags(state, region, resource, |tags| {
            let before = tags.len();
            match &req.tags {
                None => tags.retain(|key, _| key.starts_with(tags::RESERVED_PREFIX)),
                Some(wanted) => tags.retain(|key, value| {
                    !wanted
                        .iter()
                        .any(|w| w.key == *key && w.value.as_ref().is_none_or(|v| v == value))
                }),
            }
            tags.len() != before
        })?;
        tracing::info!(resource_id = resource.id(), "tags deleted");
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

    #[test]
    fn no_tag_means_every_tag_and_a_given_value_must_match() {
        let req = parse(&QueryParams::from_query("ResourceId.1=i-0123456789abcdef0")).unwrap();
        assert_eq!(req.tags, None);
        let req = parse(&QueryParams::from_query(
            "ResourceId.1=i-0123456789abcdef0&Tag.1.Key=a&Tag.2.Key=b&Tag.2.Value=",
        ))
        .unwrap();
        assert_eq!(
            req.tags,
            Some(vec![
                TagToDelete {
                    key: "a".into(),
                    value: None
                },
                TagToDelete {
                    key: "b".into(),
                    value: Some(String::new())
                },
            ])
        );
        let e = parse(&QueryParams::from_query("Tag.1.Key=a")).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
    }
}
