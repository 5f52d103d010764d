//! The `dynamic/` tree: the instance identity document (JSON) and its signatures.
//!
//! EC2 signs the document with AWS's regional keys, whose certificates AWS publishes; nobody
//! can hold those here. ec2d signs with an RSA-2048 key of its own, derived from the store's
//! id (so a restart signs alike): `signature`, `rsa2048` and `pkcs7` all answer the base64
//! RSASSA-PKCS1-v1_5 SHA-256 signature of the document's exact bytes. Limitation: they are not
//! PKCS#7 containers, and no AWS certificate verifies them.

use std::sync::OnceLock;

use base64::Engine;
use rand::SeedableRng;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::model::Timestamp;

use super::role::pretty;
use super::tree::{Facts, Node};

/// The signing key, made on first use (RSA key generation takes a moment).
#[derive(Debug, Default)]
pub struct Signer(OnceLock<Option<RsaPrivateKey>>);

impl Signer {
    /// The base64 signature of `document` with the key derived from `seed`.
    pub fn sign(&self, seed: &str, document: &str) -> Option<String> {
        let key = self.0.get_or_init(|| {
            let seed: [u8; 32] = Sha256::digest(format!("ec2d-imds/{seed}")).into();
            RsaPrivateKey::new(&mut rand::rngs::StdRng::from_seed(seed), 2048).ok()
        });
        let digest = Sha256::digest(document.as_bytes());
        let signature = key
            .as_ref()?
            .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
            .ok()?;
        Some(base64::engine::general_purpose::STANDARD.encode(signature))
    }
}

/// `2024-01-01T00:00:00Z`: the identity document's and IAM's timestamps (whole seconds).
pub fn seconds_timestamp(t: Timestamp) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The instance identity document, as EC2 lays it out.
pub fn document(facts: &Facts) -> String {
    let instance = &facts.instance;
    let spec = &instance.spec;
    pretty(&json!({
        "accountId": crate::model::ACCOUNT_ID,
        "architecture": "x86_64",
        "availabilityZone": spec.availability_zone,
        "billingProducts": null,
        "devpayProductCodes": null,
        "marketplaceProductCodes": null,
        "imageId": spec.image_id.as_str(),
        "instanceId": instance.metadata.name,
        "instanceType": spec.instance_type,
        "kernelId": null,
        "pendingTime": seconds_timestamp(instance.metadata.creation_timestamp),
        "privateIp": facts.private_ip(),
        "ramdiskId": null,
        "region": facts.region(),
        "version": "2017-09-30",
    }))
}

/// The signatures `instance-identity/` lists beside the document.
pub const SIGNATURES: &[&str] = &["pkcs7", "rsa2048", "signature"];

/// The `dynamic/` tree with the document; the signatures' leaves are listed, their values are
/// made only when asked for ([`Signer::sign`]).
pub fn dynamic(document: &str) -> Node {
    let identity = SIGNATURES
        .iter()
        .fold(Node::dir().leaf("document", document), |dir, name| {
            dir.leaf(name, "")
        });
    Node::dir().with("instance-identity", identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_whole_seconds_in_utc() {
        let t = time::macros::datetime!(2024-05-06 07:08:09.123 +02:00);
        assert_eq!(seconds_timestamp(t), "2024-05-06T05:08:09Z");
    }
}
