//! `DescribeKeyPairs`: the region's key pairs by name, id and filter.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
use crate::api::ApiState;
use crate::model::{KeyPair, KeyPairId};

use super::key_pairs;
use super::shared;

/// The filter names EC2 documents for key pairs (plus `tag:<key>`).
pub const FILTERS: &[&str] = &[
    "key-pair-id",
    "key-name",
    "fingerprint",
    "key-type",
    "tag-key",
];

/// A validated DescribeKeyPairs request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `KeyName.N`; exact names, each of which must exist.
    pub names: Vec<String>,
    /// `KeyPairId.N`; each must exist.
    pub ids: Vec<KeyPairId>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `IncludePublicKey`.
    pub include_public_key: bool,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses names, ids (a malformed one is `InvalidParameterValue`), filters and flags.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let mut names: Vec<String> = Vec::new();
    for name in params.list("KeyName") {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    let mut ids = Vec::new();
    for raw in params.list("KeyPairId") {
        let id = KeyPairId::parse(raw).map_err(|e| ApiError::invalid_value(e.to_string()))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    Ok(Request {
        names,
        ids,
        filters,
        include_public_key: params.bool("IncludePublicKey")?.unwrap_or(false),
        dry_run: shared::dry_run(params)?,
    })
}

/// The key pair's values for one filter name.
pub fn filter_values(name: &str, key_pair: &KeyPair) -> Vec<String> {
    if name.starts_with("tag:") || name == "tag-key" {
        return shared::tag_filter_values(name, &key_pair.spec.tags).unwrap_or_default();
    }
    let one = |s: &str| vec![s.to_string()];
    match name {
        "key-pair-id" => one(&key_pair.metadata.name),
        "key-name" => one(&key_pair.spec.key_name),
        "fingerprint" => one(&key_pair.spec.fingerprint),
        "key-type" => one(key_pair.spec.key_type.name()),
        _ => Vec::new(),
    }
}

/// Selects the region's key pairs: every named name and id must exist (else
/// `InvalidKeyPair.NotFound` for the first missing one), then the filters narrow.
pub fn handle(state: &ApiState, region: &str, req: &Request) -> Result<Vec<KeyPair>, ApiError> {
    let all = key_pairs::region_key_pairs(&state.store, region)?;
    if let Some(missing) = req
        .names
        .iter()
        .find(|n| !all.iter().any(|k| &k.spec.key_name == *n))
    {
        return Err(key_pairs::not_found(missing));
    }
    if let Some(missing) = req
        .ids
        .iter()
        .find(|id| !all.iter().any(|k| k.metadata.name == id.as_str()))
    {
        return Err(key_pairs::not_found(missing.as_str()));
    }
    shared::check_dry_run(req.dry_run)?;
    let listed = |k: &KeyPair| {
        (req.names.is_empty() && req.ids.is_empty())
            || req.names.contains(&k.spec.key_name)
            || req.ids.iter().any(|id| id.as_str() == k.metadata.name)
    };
    Ok(all
        .into_iter()
        .filter(|k| listed(k) && filter::matches_all(&req.filters, |name| filter_values(name, k)))
        .collect())
}

/// `keySet`.
pub fn render(key_pairs: &[KeyPair], include_public_key: bool) -> String {
    let mut w = XmlWriter::new();
    w.set("keySet", key_pairs, |w, k| {
        key_pairs::render_item(w, k, include_public_key)
    });
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let req = parse(params)?;
    Ok(render(
        &handle(state, region, &req)?,
        req.include_public_key,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_ids_filters() {
        let req = parse(&QueryParams::from_query(
            "KeyName.1=a&KeyName.2=a&KeyName.3=b&KeyPairId.1=key-0123abcd&Filter.1.Name=key-type&Filter.1.Value.1=rsa&IncludePublicKey=true",
        ))
        .unwrap();
        assert_eq!(req.names, vec!["a", "b"]);
        assert_eq!(req.ids.len(), 1);
        assert_eq!(req.filters.len(), 1);
        assert!(req.include_public_key);
        let e = parse(&QueryParams::from_query("KeyPairId.1=kp-1")).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        let e = parse(&QueryParams::from_query("Filter.1.Name=tag-value")).unwrap_err();
        assert_eq!(e.message, "The filter 'tag-value' is invalid");
        let e = parse(&QueryParams::from_query("IncludePublicKey=yes")).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }
}
