//! `ImportKeyPair`: stores a client's OpenSSH (or RFC 4716) RSA/ED25519 public key under a name.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::keypair::{
    imported_fingerprint, parse_public_key, parse_public_key_der, ParsedPublicKey,
};
use crate::model::{KeyPair, KeyPairOrigin};

use crate::api::key_pairs;
use crate::api::{kind, tags};

/// A validated ImportKeyPair request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `KeyName`.
    pub key_name: String,
    /// The decoded, accepted public key.
    pub public_key: ParsedPublicKey,
    /// Tags of `TagSpecification`s with `ResourceType=key-pair`.
    pub tags: BTreeMap<String, String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// `PublicKeyMaterial` is a blob, so on the wire it is the base64 of the key file (what
/// `fileb://` and boto3 send): an OpenSSH line, an RFC 4716 block, a PEM RSA public key, or DER
/// (AWS's "Base64 encoded DER format": the base64 decodes to the DER itself). Clients that pass
/// the key text itself (`file://` with CLI v1, hand-made requests) are tolerated: if the base64
/// reading is not a key, the raw text is tried.
pub fn decode_material(raw: &str) -> Result<ParsedPublicKey, ApiError> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if let Ok(bytes) = STANDARD.decode(compact) {
        let key = match std::str::from_utf8(&bytes) {
            Ok(text) => parse_public_key(text),
            Err(_) => parse_public_key_der(&bytes),
        };
        if let Ok(key) = key {
            return Ok(key);
        }
    }
    parse_public_key(raw).map_err(|e| {
        tracing::debug!(error = %e, "ImportKeyPair material refused");
        key_pairs::invalid_key_format()
    })
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let key_name = key_pairs::key_name_param(params)?;
    let material = params.require("PublicKeyMaterial")?;
    Ok(Request {
        key_name,
        public_key: decode_material(material)?,
        tags: tags::tag_specifications(params, &[key_pairs::TAG_RESOURCE_TYPE])?,
        dry_run: kind::dry_run(params)?,
    })
}

/// Stores the key unless the name is taken in the region.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<KeyPair, ApiError> {
    if key_pairs::find_by_name(&state.store, region, &req.key_name)?.is_some() {
        return Err(key_pairs::duplicate(&req.key_name));
    }
    kind::check_dry_run(req.dry_run)?;
    let fingerprint =
        imported_fingerprint(&req.public_key).map_err(|_| key_pairs::invalid_key_format())?;
    let key_pair = key_pairs::new_key_pair(
        region,
        &req.key_name,
        KeyPairOrigin::Imported,
        req.public_key.key_type,
        req.public_key.openssh_line(&req.key_name),
        fingerprint,
        req.tags,
    );
    key_pairs::insert_unique(&state.store, &key_pair)?;
    tracing::info!(key_pair_id = %key_pair.metadata.name, key_name = %key_pair.spec.key_name, key_type = key_pair.spec.key_type.name(), "key pair imported");
    Ok(key_pair)
}

/// `keyName`, `keyFingerprint`, `keyPairId`, `tagSet`.
pub fn render(key_pair: &KeyPair) -> String {
    key_pairs::render_created(key_pair, None)
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyType;

    const LINE: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHUnadv5TeuBDXrhWAPbeNiARAKmv2qep4Hv3Fka4CwD test@ec2d";

    #[test]
    fn base64_wrapped_and_raw_lines_decode_alike() {
        let wrapped = STANDARD.encode(format!("{LINE}\n"));
        let a = decode_material(&wrapped).unwrap();
        let b = decode_material(LINE).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key_type, KeyType::Ed25519);
    }

    #[test]
    fn junk_is_invalid_key_format() {
        for junk in [
            "",
            "bm90IGEga2V5",
            "ssh-rsa AAAA",
            "-----BEGIN RSA PRIVATE KEY-----",
        ] {
            let e = decode_material(junk).unwrap_err();
            assert_eq!(e.code, "InvalidKey.Format", "{junk:?}");
            assert_eq!(e.message, "Key is not in valid OpenSSH public key format");
        }
    }

    #[test]
    fn parse_requires_material() {
        let e = parse(&QueryParams::from_query("KeyName=k")).unwrap_err();
        assert_eq!(
            e.message,
            "The request must contain the parameter PublicKeyMaterial"
        );
    }
}
