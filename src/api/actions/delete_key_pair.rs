//! `DeleteKeyPair`: removes a key pair by name (idempotent, as in EC2) or by id.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{KeyPair, KeyPairId};

use crate::api::key_pairs;
use crate::api::kind;

/// Which key pair to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `KeyPairId`: must exist.
    Id(KeyPairId),
    /// `KeyName`: a missing name is not an error.
    Name(String),
}

/// A validated DeleteKeyPair request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The key pair to delete.
    pub target: Target,
    /// `DryRun`.
    pub dry_run: bool,
}

/// `KeyPairId` wins over `KeyName` when both are given: the id names exactly one key pair.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let target = match (params.get("KeyPairId"), params.get("KeyName")) {
        (Some(id), _) if !id.is_empty() => {
            Target::Id(KeyPairId::parse(id).map_err(|e| ApiError::invalid_value(e.to_string()))?)
        }
        (_, Some(name)) if !name.is_empty() => Target::Name(name.to_string()),
        _ => return Err(ApiError::missing_parameter("KeyName or KeyPairId")),
    };
    Ok(Request {
        target,
        dry_run: kind::dry_run(params)?,
    })
}

/// Deletes the key pair; returns it when one was deleted. An unknown name succeeds (EC2 is
/// idempotent there); an unknown id is `InvalidKeyPair.NotFound`.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Option<KeyPair>, ApiError> {
    if req.dry_run {
        if let Target::Id(id) = &req.target {
            key_pairs::find_by_id(&state.store, region, id)?
                .ok_or_else(|| key_pairs::not_found(id.as_str()))?;
        }
        kind::check_dry_run(true)?;
    }
    let deleted = key_pairs::remove(&state.store, region, |store| match &req.target {
        Target::Id(id) => key_pairs::find_by_id(store, region, id)?
            .map(Some)
            .ok_or_else(|| key_pairs::not_found(id.as_str())),
        Target::Name(name) => key_pairs::find_by_name(store, region, name),
    })?;
    if let Some(k) = &deleted {
        tracing::info!(key_pair_id = %k.metadata.name, key_name = %k.spec.key_name, "key pair deleted");
    }
    Ok(deleted)
}

/// `return` and, when a key pair was deleted, its `keyPairId`.
pub fn render(deleted: Option<&KeyPair>) -> String {
    let mut w = XmlWriter::new();
    w.field("return", "true");
    w.opt_field("keyPairId", deleted.map(|k| k.metadata.name.as_str()));
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(handle(state, region, parse(params)?)?.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let req = parse(&QueryParams::from_query(
            "KeyName=a&KeyPairId=key-0123456789abcdef0",
        ))
        .unwrap();
        assert_eq!(
            req.target,
            Target::Id(KeyPairId::parse("key-0123456789abcdef0").unwrap())
        );
        let req = parse(&QueryParams::from_query("KeyName=a")).unwrap();
        assert_eq!(req.target, Target::Name("a".into()));
        assert_eq!(
            parse(&QueryParams::from_query("")).unwrap_err().code,
            "MissingParameter"
        );
        assert_eq!(
            parse(&QueryParams::from_query("KeyPairId=bogus"))
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn render_without_and_with_id() {
        assert_eq!(render(None), "<return>true</return>");
    }
}
