//! `CreateKeyPair`: makes an RSA or ED25519 key, stores its public half and returns the private key once.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::{KeyPair, KeyPairOrigin, KeyType};

use crate::api::key_pairs::{self, Secret};
use crate::api::{kind, tags};

/// A validated CreateKeyPair request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `KeyName`.
    pub key_name: String,
    /// `KeyType`, `rsa` unless given.
    pub key_type: KeyType,
    /// Tags of `TagSpecification`s with `ResourceType=key-pair`.
    pub tags: BTreeMap<String, String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// The stored key pair and the private key the client gets once.
#[derive(Debug)]
pub struct Created {
    /// What was stored (public half only).
    pub key_pair: KeyPair,
    /// `KeyMaterial`.
    pub key_material: Secret,
}

/// `KeyFormat`: `pem` (the default) only. PuTTY's `ppk` is a real EC2 option, but nothing in
/// ec2d needs it, so it is refused with a message saying so rather than silently given PEM.
fn check_key_format(format: Option<&str>) -> Result<(), ApiError> {
    let message = match format {
        None | Some("pem") => return Ok(()),
        Some("ppk") => {
            "Value (ppk) for parameter KeyFormat is not supported by ec2d. Use 'pem'.".to_string()
        }
        Some(raw) => format!(
            "Value ({raw}) for parameter KeyFormat is invalid. Valid values are 'pem' and 'ppk'."
        ),
    };
    Err(ApiError::invalid_value(message))
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let key_name = key_pairs::key_name_param(params)?;
    let key_type = match params.get("KeyType") {
        None => KeyType::Rsa,
        Some(raw) => KeyType::parse(raw).ok_or_else(|| {
            ApiError::invalid_value(format!(
                "Value ({raw}) for parameter KeyType is invalid. Valid values are 'rsa' and 'ed25519'."
            ))
        })?,
    };
    check_key_format(params.get("KeyFormat"))?;
    Ok(Request {
        key_name,
        key_type,
        tags: tags::tag_specifications(params, &[key_pairs::TAG_RESOURCE_TYPE])?,
        dry_run: kind::dry_run(params)?,
    })
}

/// Checks the name is free, makes the key and stores its public half.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Created, ApiError> {
    // Fail fast before the (comparatively slow) key generation; `insert_unique` checks again
    // in the same store transaction as the write, which is what makes the name unique.
    if key_pairs::find_by_name(&state.store, region, &req.key_name)?.is_some() {
        return Err(key_pairs::duplicate(&req.key_name));
    }
    kind::check_dry_run(req.dry_run)?;
    // An RSA key takes tens of milliseconds of CPU: on a worker of the multi-threaded
    // runtime, hand that worker's other tasks to another thread meanwhile, so requests queued
    // behind this one are not held up.
    let generate = || key_pairs::generate(req.key_type, &req.key_name);
    let generated = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(generate),
        _ => generate(),
    }?;
    let key_pair = key_pairs::new_key_pair(
        region,
        &req.key_name,
        KeyPairOrigin::Created,
        req.key_type,
        generated.public_key,
        generated.fingerprint,
        req.tags,
    );
    key_pairs::insert_unique(&state.store, &key_pair)?;
    tracing::info!(key_pair_id = %key_pair.metadata.name, key_name = %key_pair.spec.key_name, key_type = req.key_type.name(), "key pair created");
    Ok(Created {
        key_pair,
        key_material: generated.private_key,
    })
}

/// `keyName`, `keyFingerprint`, `keyMaterial`, `keyPairId`, `tagSet`.
pub fn render(created: &Created) -> String {
    key_pairs::render_created(&created.key_pair, Some(&created.key_material))
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
    fn defaults_and_tags() {
        let req = parse_str(
            "KeyName=k&TagSpecification.1.ResourceType=key-pair&TagSpecification.1.Tag.1.Key=a&TagSpecification.1.Tag.1.Value=b",
        )
        .unwrap();
        assert_eq!(req.key_type, KeyType::Rsa);
        assert_eq!(req.tags["a"], "b");
        assert!(!req.dry_run);
        let req = parse_str("KeyName=k&KeyType=ed25519&KeyFormat=pem&DryRun=true").unwrap();
        assert_eq!(req.key_type, KeyType::Ed25519);
        assert!(req.dry_run);
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_str("KeyType=rsa").unwrap_err().message,
            "The request must contain the parameter KeyName"
        );
        let e = parse_str("KeyName=k&KeyType=dsa").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert!(e.message.contains("(dsa)"), "{}", e.message);
        let e = parse_str("KeyName=k&KeyFormat=ppk").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert!(e.message.contains("not supported"), "{}", e.message);
        let e = parse_str("KeyName=k&KeyFormat=der").unwrap_err();
        assert!(e.message.contains("(der)"), "{}", e.message);
    }
}
