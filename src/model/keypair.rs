//! The KeyPair kind: EC2 key pairs (public half only), their ids, public-key parsing and AWS-exact fingerprints.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use md5::Md5;
use rsa::traits::PublicKeyParts;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use super::ids::IdError;
use super::meta::{Object, ObjectMeta, API_VERSION};

/// A key pair document. The private key is never stored: EC2 hands it out once, at creation.
pub type KeyPair = Object<KeyPairSpec, KeyPairStatus>;

/// The kind name stored in `kind`.
pub const KEY_PAIR_KIND: &str = "KeyPair";

/// A new key pair document with a fresh id, created now (not yet stored).
pub fn new_key_pair(
    region: &str,
    key_name: &str,
    origin: KeyPairOrigin,
    key_type: KeyType,
    public_key: String,
    fingerprint: String,
    tags: BTreeMap<String, String>,
) -> KeyPair {
    let id = KeyPairId::generate();
    Object {
        api_version: API_VERSION.to_string(),
        kind: KEY_PAIR_KIND.to_string(),
        metadata: ObjectMeta::new(id.as_str(), region, super::now()),
        spec: KeyPairSpec {
            key_name: key_name.to_string(),
            key_type,
            origin,
            public_key,
            fingerprint,
            tags,
        },
        status: KeyPairStatus::default(),
    }
}

/// The longest key name EC2 accepts ("Up to 255 ASCII characters").
pub const MAX_KEY_NAME: usize = 255;

/// The RSA sizes ImportKeyPair accepts: 2048 to 4096 bits, a range rather than AWS's list
/// (2048 and 4096) because real clients upload `ssh-keygen`'s 3072-bit default too. AWS's
/// import requirements also list 1024 bits; ec2d follows issue 11, which asks for 2048–4096.
pub const RSA_IMPORT_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// A key pair id, `key-` and 17 hex digits when generated.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct KeyPairId(String);

impl KeyPairId {
    /// The prefix every key pair id starts with.
    pub const PREFIX: &'static str = "key-";

    /// Parses a client-supplied id: the prefix and 8 or 17 hex digits, as AWS's (and ec2d's
    /// instance ids) have.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let rest = s.strip_prefix(Self::PREFIX).unwrap_or_default();
        if ![8, 17].contains(&rest.len()) || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IdError {
                id: s.to_string(),
                prefix: Self::PREFIX,
            });
        }
        Ok(Self(s.to_string()))
    }

    /// A fresh random id in AWS's long format.
    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, super::ids::random_hex(17)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPairId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// EC2's `KeyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum KeyType {
    /// `rsa`.
    Rsa,
    /// `ed25519`.
    Ed25519,
}

impl KeyType {
    /// EC2's wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }

    /// Parses EC2's wire name (case-sensitive, as the API enum is).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rsa" => Some(Self::Rsa),
            "ed25519" => Some(Self::Ed25519),
            _ => None,
        }
    }
}

/// How the key pair came to be; it decides which fingerprint algorithm AWS shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum KeyPairOrigin {
    /// CreateKeyPair: EC2 made the key and returned the private half once.
    Created,
    /// ImportKeyPair: the client uploaded a public key.
    Imported,
}

/// The key pair's definition. `createTime` is `metadata.creationTimestamp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairSpec {
    /// `KeyName`: unique per region.
    pub key_name: String,
    /// `rsa` or `ed25519`.
    pub key_type: KeyType,
    /// Created or imported.
    pub origin: KeyPairOrigin,
    /// The OpenSSH public key line, `<algorithm> <base64 blob> <key name>`.
    pub public_key: String,
    /// `KeyFingerprint`, computed once as AWS does for this type and origin.
    pub fingerprint: String,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Key pairs have nothing to observe (no reconciler acts on them); the status stays empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyPairStatus {}

/// Why public key material was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyError {
    /// Not an OpenSSH or RFC 4716 public key ec2d can read.
    #[error("not a public key: {0}")]
    Format(String),
    /// A readable key of a kind EC2 does not accept (ECDSA, DSA, certificates, odd RSA sizes).
    #[error("unsupported key: {0}")]
    Unsupported(String),
}

/// A public key accepted for a key pair, with the values stored for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPublicKey {
    /// `rsa` or `ed25519`.
    pub key_type: KeyType,
    /// The key's SSH wire blob (what the base64 of an OpenSSH line decodes to).
    pub blob: Vec<u8>,
}

impl ParsedPublicKey {
    /// The OpenSSH line, with the key pair's name as the comment (as EC2 shows it).
    pub fn openssh_line(&self, key_name: &str) -> String {
        let algorithm = match self.key_type {
            KeyType::Rsa => "ssh-rsa",
            KeyType::Ed25519 => "ssh-ed25519",
        };
        format!("{algorithm} {} {key_name}", STANDARD.encode(&self.blob))
            .trim_end()
            .to_string()
    }
}

/// Reads the formats ImportKeyPair takes (AWS's API reference: "OpenSSH public key format",
/// "Base64 encoded DER format", "SSH public key file format as specified in RFC4716"): an
/// OpenSSH public key line (`ssh-rsa AAAA… comment`), an RFC 4716 block (`---- BEGIN SSH2
/// PUBLIC KEY ----`), or a PEM RSA public key, SubjectPublicKeyInfo (`-----BEGIN PUBLIC
/// KEY-----`, what `openssl rsa -pubout` writes) or PKCS#1 (`-----BEGIN RSA PUBLIC KEY-----`).
/// Only RSA of [`RSA_IMPORT_BITS`] and ED25519 are accepted, as in EC2.
pub fn parse_public_key(text: &str) -> Result<ParsedPublicKey, PublicKeyError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    let key = if text.starts_with("---- BEGIN SSH2 PUBLIC KEY ----") {
        let blob = rfc4716_blob(text)?;
        PublicKey::from_bytes(&blob).map_err(|e| PublicKeyError::Format(e.to_string()))?
    } else if text.starts_with("-----BEGIN PUBLIC KEY-----") {
        use rsa::pkcs8::DecodePublicKey;
        ssh_rsa_key(rsa::RsaPublicKey::from_public_key_pem(text))?
    } else if text.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        use rsa::pkcs1::DecodeRsaPublicKey;
        ssh_rsa_key(rsa::RsaPublicKey::from_pkcs1_pem(text))?
    } else {
        // A `.pub` file is one line; anything after it (a second key) is not part of this one.
        let line = text.lines().next().unwrap_or_default().trim();
        PublicKey::from_openssh(line).map_err(|e| PublicKeyError::Format(e.to_string()))?
    };
    accepted(key)
}

/// The key, if EC2 takes its algorithm and size.
fn accepted(key: PublicKey) -> Result<ParsedPublicKey, PublicKeyError> {
    let key_type = match key.key_data() {
        KeyData::Ed25519(_) => KeyType::Ed25519,
        KeyData::Rsa(rsa) => {
            let bits = rsa_public_key(rsa)?.n().bits();
            if !RSA_IMPORT_BITS.contains(&bits) {
                return Err(PublicKeyError::Unsupported(format!("{bits}-bit RSA")));
            }
            KeyType::Rsa
        }
        other => {
            return Err(PublicKeyError::Unsupported(
                other.algorithm().as_str().to_string(),
            ))
        }
    };
    Ok(ParsedPublicKey {
        key_type,
        blob: key_blob(key.key_data())?,
    })
}

/// Reads a DER RSA public key, SubjectPublicKeyInfo or PKCS#1 (the "Base64 encoded DER format"
/// once the wire's base64 is decoded), checked as [`parse_public_key`] checks the others.
pub fn parse_public_key_der(der: &[u8]) -> Result<ParsedPublicKey, PublicKeyError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let key = match rsa::RsaPublicKey::from_public_key_der(der) {
        Ok(key) => Ok(key),
        Err(_) => rsa::RsaPublicKey::from_pkcs1_der(der).map_err(|e| e.to_string()),
    };
    accepted(ssh_rsa_key(key)?)
}

/// An `rsa` crate key (what the PEM and DER readers give) as an SSH key; a key the `rsa` crate
/// refuses (not RSA, as an EC or DSA SubjectPublicKeyInfo; over 4096 bits) is a format error.
fn ssh_rsa_key<E: ToString>(
    key: Result<rsa::RsaPublicKey, E>,
) -> Result<PublicKey, PublicKeyError> {
    let key = key.map_err(|e| PublicKeyError::Format(e.to_string()))?;
    let rsa = ssh_key::public::RsaPublicKey::try_from(&key)
        .map_err(|e| PublicKeyError::Format(e.to_string()))?;
    Ok(PublicKey::new(KeyData::Rsa(rsa), ""))
}

/// A key's SSH wire blob: a `PublicKey`'s bytes are exactly its key data (the comment is not encoded).
fn key_blob(key_data: &KeyData) -> Result<Vec<u8>, PublicKeyError> {
    PublicKey::new(key_data.clone(), "")
        .to_bytes()
        .map_err(|e| PublicKeyError::Format(e.to_string()))
}

/// The base64 body of an RFC 4716 block: header lines (`Key: value`, possibly continued with a
/// trailing backslash) are skipped, the rest up to the END line is the key.
fn rfc4716_blob(text: &str) -> Result<Vec<u8>, PublicKeyError> {
    let mut body = String::new();
    let mut continued = false;
    let mut ended = false;
    for line in text.lines().skip(1).map(str::trim) {
        if line.starts_with("---- END SSH2 PUBLIC KEY ----") {
            ended = true;
            break;
        }
        if continued || line.contains(':') {
            continued = line.ends_with('\\');
            continue;
        }
        body.push_str(line);
    }
    if !ended {
        return Err(PublicKeyError::Format(
            "RFC 4716 block without END line".into(),
        ));
    }
    STANDARD
        .decode(body)
        .map_err(|e| PublicKeyError::Format(e.to_string()))
}

/// An SSH RSA key as an `rsa` crate key, allowing sizes above the crate's 4096-bit default cap.
fn rsa_public_key(
    key: &ssh_key::public::RsaPublicKey,
) -> Result<rsa::RsaPublicKey, PublicKeyError> {
    let bad = |what: &str| PublicKeyError::Format(format!("RSA key: {what}"));
    let n = key
        .n
        .as_positive_bytes()
        .ok_or_else(|| bad("negative modulus"))?;
    let e = key
        .e
        .as_positive_bytes()
        .ok_or_else(|| bad("negative exponent"))?;
    rsa::RsaPublicKey::new_with_max_size(
        rsa::BigUint::from_bytes_be(n),
        rsa::BigUint::from_bytes_be(e),
        *RSA_IMPORT_BITS.end(),
    )
    .map_err(|e| bad(&e.to_string()))
}

/// Lower-case hex bytes joined by colons, AWS's form of RSA fingerprints.
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The fingerprint AWS shows for an ED25519 key (created or imported): the standard base64,
/// with padding and without OpenSSH's `SHA256:` prefix, of the SHA-256 of the public key blob.
pub fn ed25519_fingerprint(blob: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(blob))
}

/// The fingerprint AWS shows for an imported RSA key: the MD5 of the DER SubjectPublicKeyInfo,
/// colon-separated (what `openssl rsa -pubin -outform DER | openssl md5 -c` prints).
pub fn imported_rsa_fingerprint(blob: &[u8]) -> Result<String, PublicKeyError> {
    use rsa::pkcs8::EncodePublicKey;
    let key = PublicKey::from_bytes(blob).map_err(|e| PublicKeyError::Format(e.to_string()))?;
    let KeyData::Rsa(rsa) = key.key_data() else {
        return Err(PublicKeyError::Unsupported(
            key.algorithm().as_str().to_string(),
        ));
    };
    let der = rsa_public_key(rsa)?
        .to_public_key_der()
        .map_err(|e| PublicKeyError::Format(e.to_string()))?;
    Ok(colon_hex(&Md5::digest(der.as_bytes())))
}

/// The fingerprint AWS shows for an RSA key it created: the SHA-1 of the DER PKCS#8 private key,
/// colon-separated (`openssl pkcs8 -topk8 -nocrypt -outform DER | openssl sha1 -c`).
pub fn created_rsa_fingerprint(pkcs8_der: &[u8]) -> String {
    colon_hex(&Sha1::digest(pkcs8_der))
}

/// The fingerprint for an imported key of either type.
pub fn imported_fingerprint(parsed: &ParsedPublicKey) -> Result<String, PublicKeyError> {
    match parsed.key_type {
        KeyType::Rsa => imported_rsa_fingerprint(&parsed.blob),
        KeyType::Ed25519 => Ok(ed25519_fingerprint(&parsed.blob)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A fixed ED25519 key (generated with ssh-keygen for this test; only the public half is here).
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHUnadv5TeuBDXrhWAPbeNiARAKmv2qep4Hv3Fka4CwD test@ec2d";

    #[test]
    fn ids_parse_and_generate() {
        let id = KeyPairId::generate();
        assert_eq!(id.as_str().len(), 4 + 17);
        assert_eq!(KeyPairId::parse(id.as_str()).unwrap(), id);
        assert!(KeyPairId::parse("key-0123abcd").is_ok());
        for bad in [
            "",
            "key-",
            "kp-0123abcd",
            "key-0123 abc",
            "key-a/b",
            "key-0123",
            "key-0123456789abcdefg",
            "key-xyzxyzxy",
            "i-0123abcd",
        ] {
            assert!(KeyPairId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            KeyPairId::parse("nope").unwrap_err().to_string(),
            "Invalid id: \"nope\" (expecting \"key-...\")"
        );
    }

    #[test]
    fn key_types() {
        assert_eq!(KeyType::parse("rsa"), Some(KeyType::Rsa));
        assert_eq!(KeyType::parse("ed25519"), Some(KeyType::Ed25519));
        assert_eq!(KeyType::parse("RSA"), None);
        assert_eq!(KeyType::Ed25519.name(), "ed25519");
    }

    #[test]
    fn ed25519_line_round_trips_with_the_key_name_as_comment() {
        let parsed = parse_public_key(ED25519).unwrap();
        assert_eq!(parsed.key_type, KeyType::Ed25519);
        assert_eq!(
            parsed.openssh_line("mine"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHUnadv5TeuBDXrhWAPbeNiARAKmv2qep4Hv3Fka4CwD mine"
        );
        // Independent computation: SHA-256 of the base64-decoded second field.
        let blob = STANDARD.decode(ED25519.split(' ').nth(1).unwrap()).unwrap();
        assert_eq!(parsed.blob, blob);
        // `ssh-keygen -l -E sha256` printed `SHA256:mB/Q…29Y`; AWS shows it padded, unprefixed.
        assert_eq!(
            ed25519_fingerprint(&blob),
            "mB/Q0ToM/To9kf/yinVIFH/N2R09loTm4jWslZpS29Y="
        );
    }

    #[test]
    fn rfc4716_blocks_are_read() {
        let b64 = ED25519.split(' ').nth(1).unwrap();
        let block = format!(
            "---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"a long \\\ncomment\"\nx-tag: 1\n{}\n{}\n---- END SSH2 PUBLIC KEY ----\n",
            &b64[..40],
            &b64[40..]
        );
        assert_eq!(
            parse_public_key(&block).unwrap(),
            parse_public_key(ED25519).unwrap()
        );
        let unterminated = "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n";
        assert!(matches!(
            parse_public_key(unterminated),
            Err(PublicKeyError::Format(_))
        ));
    }

    #[test]
    fn garbage_and_other_algorithms_are_refused() {
        assert!(matches!(
            parse_public_key("hello world"),
            Err(PublicKeyError::Format(_))
        ));
        assert!(matches!(
            parse_public_key(""),
            Err(PublicKeyError::Format(_))
        ));
        // An ECDSA P-256 key: readable, but EC2 only takes RSA and ED25519.
        let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAztEaTtlhkAvOLY+4oPeTkFOiG3n9/kioJ6rdtnsH9PpPqsa8WcHGS18sFs/E8zIBl+CHp7sDWBa7khcdO8RXs= x";
        assert!(matches!(
            parse_public_key(ecdsa),
            Err(PublicKeyError::Unsupported(_))
        ));
    }

    fn rsa_line(bits: usize) -> String {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap();
        let public = ssh_key::public::RsaPublicKey::try_from(key.to_public_key()).unwrap();
        PublicKey::new(KeyData::Rsa(public), "c")
            .to_openssh()
            .unwrap()
    }

    #[test]
    fn rsa_sizes_below_2048_bits_are_refused() {
        assert!(matches!(
            parse_public_key(&rsa_line(1024)),
            Err(PublicKeyError::Unsupported(_))
        ));
        let parsed = parse_public_key(&rsa_line(2048)).unwrap();
        assert_eq!(parsed.key_type, KeyType::Rsa);
        let fp = imported_fingerprint(&parsed).unwrap();
        assert_eq!(fp.len(), 16 * 3 - 1, "MD5, colon-separated: {fp}");
    }

    #[test]
    fn pem_and_der_rsa_keys_read_as_their_openssh_line() {
        use rsa::pkcs1::EncodeRsaPublicKey;
        use rsa::pkcs8::EncodePublicKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .unwrap()
            .to_public_key();
        let public = ssh_key::public::RsaPublicKey::try_from(&key).unwrap();
        let line = PublicKey::new(KeyData::Rsa(public), "c")
            .to_openssh()
            .unwrap();
        let want = parse_public_key(&line).unwrap();
        let lf = rsa::pkcs8::LineEnding::LF;
        let spki_pem = key.to_public_key_pem(lf).unwrap();
        let pkcs1_pem = key.to_pkcs1_pem(lf).unwrap();
        assert_eq!(parse_public_key(&spki_pem).unwrap(), want);
        assert_eq!(parse_public_key(&pkcs1_pem).unwrap(), want);
        let spki_der = key.to_public_key_der().unwrap();
        let pkcs1_der = key.to_pkcs1_der().unwrap();
        assert_eq!(parse_public_key_der(spki_der.as_bytes()).unwrap(), want);
        assert_eq!(parse_public_key_der(pkcs1_der.as_bytes()).unwrap(), want);
        assert!(parse_public_key_der(b"\x30\x03\x02\x01\x00").is_err());
        assert!(
            parse_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err()
        );
    }

    #[test]
    fn colon_hex_is_lower_case() {
        assert_eq!(colon_hex(&[0x0a, 0xff, 0x10]), "0a:ff:10");
        assert_eq!(created_rsa_fingerprint(b"").len(), 20 * 3 - 1);
    }
}
