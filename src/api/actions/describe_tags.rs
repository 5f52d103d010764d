//! `DescribeTags`: every tag of the region's taggable resources, filtered and paged.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;

use crate::api::tags;
use crate::api::{kind, paging};

/// The filter names EC2 documents for DescribeTags (plus `tag:<key>`).
pub const FILTERS: &[&str] = &["key", "value", "resource-id", "resource-type"];

/// One tag of one resource, as DescribeTags lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagItem {
    /// `resourceId`.
    pub resource_id: String,
    /// `key`.
    pub key: String,
    /// `resourceType`.
    pub resource_type: &'static str,
    /// `value`.
    pub value: String,
}

/// A validated DescribeTags request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `MaxResults`.
    pub max_results: Option<usize>,
    /// `NextToken`, decoded: the (resource id, key) the previous page ended on.
    pub after: Option<(String, String)>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// What a page of DescribeTags holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The tags, by resource id then key.
    pub tags: Vec<TagItem>,
    /// Where the next page starts, when there is one.
    pub next_token: Option<String>,
}

/// The cursor of a page ending at `item`: its resource id and key.
fn cursor(item: &TagItem) -> String {
    paging::pair_cursor(&item.resource_id, &item.key)
}

/// Parses filters and paging (`MaxResults` 5..=1000, as EC2 accepts).
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    let max_results = paging::max_results(params, None, paging::SizeWording::Between)?;
    let after = paging::next_pair(params)?;
    Ok(Request {
        filters,
        max_results,
        after,
        dry_run: kind::dry_run(params)?,
    })
}

/// A tag's values for each filter name; `tag:<key>` looks at the other tags of its resource.
fn filter_values(
    name: &str,
    item: &TagItem,
    tags: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    match name {
        "key" => vec![item.key.clone()],
        "value" => vec![item.value.clone()],
        "resource-id" => vec![item.resource_id.clone()],
        "resource-type" => vec![item.resource_type.to_string()],
        other => tags::tag_filter_values(other, tags).unwrap_or_default(),
    }
}

/// Lists, filters and pages the region's tags.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    kind::check_dry_run(req.dry_run)?;
    let mut tags = Vec::new();
    for (resource, resource_tags) in tags::region_tags(state, region)? {
        for (key, value) in &resource_tags {
            let item = TagItem {
                resource_id: resource.id().to_string(),
                key: key.clone(),
                resource_type: resource.type_name(),
                value: value.clone(),
            };
            let after_token = req.after.as_ref().is_none_or(|(id, k)| {
                (item.resource_id.as_str(), item.key.as_str()) > (id.as_str(), k.as_str())
            });
            if after_token
                && filter::matches_all(&req.filters, |name| {
                    filter_values(name, &item, &resource_tags)
                })
            {
                tags.push(item);
            }
        }
    }
    tags.sort();
    let next_token = paging::cut(&mut tags, req.max_results, cursor);
    Ok(Response { tags, next_token })
}

/// `tagSet` and `nextToken`.
pub fn render(resp: &Response) -> String {
    let mut w = XmlWriter::new();
    w.set("tagSet", &resp.tags, |w, t| {
        w.field("resourceId", &t.resource_id);
        w.field("resourceType", t.resource_type);
        w.field("key", &t.key);
        w.field("value", &t.value);
    });
    w.opt_field("nextToken", resp.next_token.as_deref());
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
    fn tokens_round_trip_and_junk_is_refused() {
        let item = TagItem {
            resource_id: "i-0123456789abcdef0".into(),
            key: "Name".into(),
            resource_type: "instance",
            value: "web".into(),
        };
        let token = paging::token(&cursor(&item));
        let req = parse(&QueryParams::from_query(&format!("NextToken={token}"))).unwrap();
        assert_eq!(
            req.after,
            Some(("i-0123456789abcdef0".to_string(), "Name".to_string()))
        );
        let junk = parse(&QueryParams::from_query("NextToken=!!")).unwrap_err();
        assert_eq!(junk.code, "InvalidNextToken");
        let no_key = paging::token("i-0123456789abcdef0");
        let junk = parse(&QueryParams::from_query(&format!("NextToken={no_key}"))).unwrap_err();
        assert_eq!(junk.code, "InvalidNextToken");
    }

    #[test]
    fn filters_and_page_sizes_are_checked() {
        let code = |q: &str| parse(&QueryParams::from_query(q)).unwrap_err().code;
        assert_eq!(
            code("Filter.1.Name=bogus&Filter.1.Value.1=x"),
            "InvalidParameterValue"
        );
        assert_eq!(code("MaxResults=2"), "InvalidParameterValue");
        let ok = parse(&QueryParams::from_query(
            "Filter.1.Name=resource-type&Filter.1.Value.1=instance&MaxResults=5",
        ))
        .unwrap();
        assert_eq!(ok.max_results, Some(5));
    }
}
