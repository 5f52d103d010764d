//! Key pair plumbing shared by the four key pair actions and RunInstances: lookups, name rules, key generation and rendering.

use rand::rngs::OsRng;
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, LineEnding, PrivateKey, PublicKey};

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
pub use crate::model::keypair::new_key_pair;
use crate::model::keypair::{
    created_rsa_fingerprint, ed25519_fingerprint, ParsedPublicKey, MAX_KEY_NAME,
};
use crate::model::{format_timestamp, KeyPair, KeyPairId, KeyType};
use crate::store::{SpecStore, StoreError};

use crate::api::render::render_tags;

/// The size of RSA keys CreateKeyPair makes (EC2 makes 2048-bit keys only).
pub const RSA_BITS: usize = 2048;

/// The `ResourceType` of key pair `TagSpecification`s.
pub const TAG_RESOURCE_TYPE: &str = "key-pair";

/// `InvalidKeyPair.NotFound` for a key name or id, in AWS's wording.
pub fn not_found(name_or_id: &str) -> ApiError {
    ApiError::client(
        "InvalidKeyPair.NotFound",
        format!("The key pair '{name_or_id}' does not exist"),
    )
}

/// `InvalidKeyPair.Duplicate`, in AWS's wording (note: "keypair", one word, and a full stop).
pub fn duplicate(name: &str) -> ApiError {
    ApiError::client(
        "InvalidKeyPair.Duplicate",
        format!("The keypair '{name}' already exists."),
    )
}

/// `InvalidKey.Format`: ImportKeyPair material that is not an RSA or ED25519 OpenSSH public key.
pub fn invalid_key_format() -> ApiError {
    ApiError::client(
        "InvalidKey.Format",
        "Key is not in valid OpenSSH public key format",
    )
}

/// EC2's key name rule: 1 to 255 ASCII characters. Control characters are refused too: XML
/// cannot carry most of them, so such a key could never be described by its name.
pub fn validate_key_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::missing_parameter("KeyName"));
    }
    if name.len() > MAX_KEY_NAME {
        return Err(ApiError::invalid_value(format!(
            "Value for parameter KeyName is invalid. Length exceeds maximum of {MAX_KEY_NAME} characters."
        )));
    }
    if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ApiError::invalid_value(
            "Value for parameter KeyName is invalid. Key names may contain only printable ASCII characters.",
        ));
    }
    Ok(())
}

/// The required, validated `KeyName` of CreateKeyPair and ImportKeyPair.
pub fn key_name_param(params: &QueryParams) -> Result<String, ApiError> {
    let name = params.require("KeyName")?;
    validate_key_name(name)?;
    Ok(name.to_string())
}

/// Every readable key pair of `region`, ordered by name (corrupt records are skipped; the store logs them).
pub fn region_key_pairs(store: &SpecStore, region: &str) -> Result<Vec<KeyPair>, ApiError> {
    let mut found: Vec<KeyPair> = store
        .key_pairs()
        .list()?
        .objects
        .into_iter()
        .filter(|k| k.metadata.namespace == region)
        .collect();
    found.sort_by(|a, b| {
        (&a.spec.key_name, &a.metadata.name).cmp(&(&b.spec.key_name, &b.metadata.name))
    });
    Ok(found)
}

/// The key pair called `name` in `region`, if any.
pub fn find_by_name(
    store: &SpecStore,
    region: &str,
    name: &str,
) -> Result<Option<KeyPair>, ApiError> {
    Ok(region_key_pairs(store, region)?
        .into_iter()
        .find(|k| k.spec.key_name == name))
}

/// The key pair with this id in `region`; one of another region is not found, as in EC2.
pub fn find_by_id(
    store: &SpecStore,
    region: &str,
    id: &KeyPairId,
) -> Result<Option<KeyPair>, ApiError> {
    Ok(store
        .key_pairs()
        .get(id.as_str())?
        .filter(|k| k.metadata.namespace == region))
}

/// The OpenSSH public key line (`ssh-rsa AAAA… name`) of the key pair `key_name` in `region`, for
/// RunInstances' `KeyName`; `InvalidKeyPair.NotFound` when there is none.
pub fn public_key_for(store: &SpecStore, region: &str, key_name: &str) -> Result<String, ApiError> {
    find_by_name(store, region, key_name)?
        .map(|k| k.spec.public_key)
        .ok_or_else(|| not_found(key_name))
}

/// Stores a new key pair unless its name is taken in its region (`InvalidKeyPair.Duplicate`).
/// The store claims the name in the same transaction as the write, so two concurrent requests
/// for one name cannot both succeed.
pub fn insert_unique(store: &SpecStore, key_pair: &KeyPair) -> Result<(), ApiError> {
    match store.create_key_pair(key_pair) {
        Ok(()) => Ok(()),
        Err(StoreError::NameTaken { .. }) => Err(duplicate(&key_pair.spec.key_name)),
        // A random id collision: 68 bits make it practically impossible, but never overwrite.
        Err(StoreError::AlreadyExists { id, .. }) => Err(ApiError::internal(format!(
            "key pair id {id} generated twice"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the key pair `select` picks among the region's, with its name. Returns the deleted
/// key pair: `None` when none was picked, or a concurrent delete removed it first.
pub fn remove(
    store: &SpecStore,
    region: &str,
    select: impl FnOnce(&SpecStore) -> Result<Option<KeyPair>, ApiError>,
) -> Result<Option<KeyPair>, ApiError> {
    let Some(key_pair) = select(store)? else {
        return Ok(None);
    };
    debug_assert_eq!(key_pair.metadata.namespace, region);
    Ok(store.delete_key_pair(&key_pair.metadata.name)?)
}

/// Secret text wiped from memory when dropped (the `zeroize` crate, as re-exported by `der`).
pub type Secret = rsa::pkcs8::der::zeroize::Zeroizing<String>;

/// A key made by CreateKeyPair: the private half goes to the client once and is then dropped.
pub struct GeneratedKey {
    /// `KeyMaterial`: PKCS#1 PEM for RSA, OpenSSH format for ED25519 (as EC2 returns them).
    pub private_key: Secret,
    /// The OpenSSH public key line with the key name as comment.
    pub public_key: String,
    /// `KeyFingerprint`, as AWS computes it for created keys.
    pub fingerprint: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public_key", &self.public_key)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Makes a key pair as CreateKeyPair does. RSA: 2048 bits, PKCS#1 PEM, fingerprint the SHA-1 of
/// the PKCS#8 DER private key. ED25519: OpenSSH private key, fingerprint the base64 SHA-256 of
/// the public blob.
pub fn generate(key_type: KeyType, key_name: &str) -> Result<GeneratedKey, ApiError> {
    match key_type {
        KeyType::Rsa => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS).map_err(ApiError::internal)?;
            let pem = key
                .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                .map_err(ApiError::internal)?;
            let pkcs8 = key.to_pkcs8_der().map_err(ApiError::internal)?;
            let public = ssh_key::public::RsaPublicKey::try_from(key.to_public_key())
                .map_err(ApiError::internal)?;
            let blob = PublicKey::new(KeyData::Rsa(public), "")
                .to_bytes()
                .map_err(ApiError::internal)?;
            let parsed = ParsedPublicKey { key_type, blob };
            Ok(GeneratedKey {
                private_key: pem,
                public_key: parsed.openssh_line(key_name),
                fingerprint: created_rsa_fingerprint(pkcs8.as_bytes()),
            })
        }
        KeyType::Ed25519 => {
            let mut key =
                PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(ApiError::internal)?;
            key.set_comment(key_name);
            let pem = key.to_openssh(LineEnding::LF).map_err(ApiError::internal)?;
            let blob = key.public_key().to_bytes().map_err(ApiError::internal)?;
            let parsed = ParsedPublicKey { key_type, blob };
            Ok(GeneratedKey {
                private_key: pem,
                public_key: parsed.openssh_line(key_name),
                fingerprint: ed25519_fingerprint(&parsed.blob),
            })
        }
    }
}

/// The members CreateKeyPair and ImportKeyPair share: `keyName`, `keyFingerprint`, then the
/// caller's extras (`keyMaterial`), `keyPairId` and `tagSet`.
pub fn render_created(key_pair: &KeyPair, key_material: Option<&str>) -> String {
    let mut w = XmlWriter::new();
    w.field("keyName", &key_pair.spec.key_name);
    w.field("keyFingerprint", &key_pair.spec.fingerprint);
    w.opt_field("keyMaterial", key_material);
    w.field("keyPairId", &key_pair.metadata.name);
    render_tags(&mut w, &key_pair.spec.tags);
    w.finish()
}

/// One `keySet` item of DescribeKeyPairs (`publicKey` only when asked for).
pub fn render_item(w: &mut XmlWriter, key_pair: &KeyPair, include_public_key: bool) {
    w.field("keyPairId", &key_pair.metadata.name);
    w.field("keyType", key_pair.spec.key_type.name());
    render_tags(w, &key_pair.spec.tags);
    w.field("keyName", &key_pair.spec.key_name);
    w.field("keyFingerprint", &key_pair.spec.fingerprint);
    if include_public_key {
        w.field("publicKey", &key_pair.spec.public_key);
    }
    w.field(
        "createTime",
        format_timestamp(key_pair.metadata.creation_timestamp),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::KeyPairOrigin;

    fn stored(store: &SpecStore, region: &str, name: &str) -> KeyPair {
        let generated = generate(KeyType::Ed25519, name).unwrap();
        let kp = new_key_pair(
            region,
            name,
            KeyPairOrigin::Created,
            KeyType::Ed25519,
            generated.public_key,
            generated.fingerprint,
            BTreeMap::new(),
        );
        insert_unique(store, &kp).unwrap();
        kp
    }

    #[test]
    fn public_key_for_is_region_scoped() {
        let store = crate::store::Store::temporary().unwrap().spec_view();
        let kp = stored(&store, "us-east-1", "dev");
        assert_eq!(
            public_key_for(&store, "us-east-1", "dev").unwrap(),
            kp.spec.public_key
        );
        assert!(kp.spec.public_key.starts_with("ssh-ed25519 AAAA"));
        assert!(kp.spec.public_key.ends_with(" dev"));
        let e = public_key_for(&store, "eu-west-1", "dev").unwrap_err();
        assert_eq!(e.code, "InvalidKeyPair.NotFound");
        assert_eq!(e.message, "The key pair 'dev' does not exist");
    }

    #[test]
    fn names_are_unique_per_region() {
        let store = crate::store::Store::temporary().unwrap().spec_view();
        stored(&store, "us-east-1", "dev");
        stored(&store, "eu-west-1", "dev");
        let again = new_key_pair(
            "us-east-1",
            "dev",
            KeyPairOrigin::Imported,
            KeyType::Rsa,
            "ssh-rsa AAAA dev".into(),
            "00".into(),
            BTreeMap::new(),
        );
        let e = insert_unique(&store, &again).unwrap_err();
        assert_eq!(e.code, "InvalidKeyPair.Duplicate");
        assert_eq!(e.message, "The keypair 'dev' already exists.");
        assert_eq!(store.key_pairs().len(), 2);
    }

    #[test]
    fn concurrent_creates_of_one_name_leave_one_key_pair() {
        // Many rounds of threads released together by a barrier: without the store's name
        // index the check-then-insert race shows up within a few rounds.
        let store = crate::store::Store::temporary().unwrap().spec_view();
        const THREADS: usize = 8;
        for round in 0..25 {
            let name = format!("race-{round}");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (store, barrier, name) = (store.clone(), barrier.clone(), name.clone());
                    std::thread::spawn(move || {
                        let kp = new_key_pair(
                            "us-east-1",
                            &name,
                            KeyPairOrigin::Imported,
                            KeyType::Ed25519,
                            format!("ssh-ed25519 AAAA {name}"),
                            "fp".into(),
                            BTreeMap::new(),
                        );
                        barrier.wait();
                        insert_unique(&store, &kp).is_ok()
                    })
                })
                .collect();
            let wins = threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|ok| *ok)
                .count();
            assert_eq!(wins, 1, "round {round}");
        }
        assert_eq!(store.key_pairs().len(), 25);
    }

    #[test]
    fn key_name_rules() {
        assert!(validate_key_name("my key (1) [prod]!").is_ok());
        assert!(validate_key_name(&"k".repeat(255)).is_ok());
        assert_eq!(
            validate_key_name(&"k".repeat(256)).unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            validate_key_name("ключ").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            validate_key_name("a\nb").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(validate_key_name("").unwrap_err().code, "MissingParameter");
    }

    #[test]
    fn remove_returns_what_it_deleted() {
        let store = crate::store::Store::temporary().unwrap().spec_view();
        let kp = stored(&store, "us-east-1", "gone");
        let removed = remove(&store, "us-east-1", |s| {
            find_by_name(s, "us-east-1", "gone")
        })
        .unwrap()
        .unwrap();
        assert_eq!(removed.metadata.name, kp.metadata.name);
        assert!(store.key_pairs().is_empty());
        assert!(remove(&store, "us-east-1", |s| find_by_name(
            s,
            "us-east-1",
            "gone"
        ))
        .unwrap()
        .is_none());
    }

    #[test]
    fn generated_secrets_do_not_leak_through_debug() {
        let g = generate(KeyType::Ed25519, "k").unwrap();
        let shown = format!("{g:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(g.private_key.contains("OPENSSH PRIVATE KEY"));
    }
}
