//! Resource id newtypes: parsing (with EC2's `Malformed` rules) and generation.

use std::fmt;

use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An id derived from the instance id (`eni-…`, `eni-attach-…`): the interface is not stored,
/// so its ids must come out the same on every describe.
pub fn derived_id(prefix: &str, instance_id: &str) -> String {
    let digest = Sha256::digest(format!("{prefix}/{instance_id}").as_bytes());
    let mut id = format!("{prefix}-");
    push_hex(&mut id, &digest[..9]);
    id.truncate(prefix.len() + 1 + 17);
    id
}

/// A locally administered MAC address derived from the instance id, as `02:…` on EC2: the
/// API's `MacAddress`, IMDS's `mac` and the container's interface all show it.
pub fn derived_mac(instance_id: &str) -> String {
    let digest = Sha256::digest(format!("mac/{instance_id}").as_bytes());
    let mut mac = String::from("02");
    for byte in &digest[..5] {
        mac.push(':');
        push_hex(&mut mac, std::slice::from_ref(byte));
    }
    mac
}

/// Lower-case hex without a `format!` per byte: DescribeInstances renders these for every
/// instance, and per-byte formatting showed up in its profile.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
}

/// An id that does not have the shape EC2 expects for its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid id: \"{id}\" (expecting \"{prefix}...\")")]
pub struct IdError {
    /// The rejected input.
    pub id: String,
    /// The prefix the kind expects, e.g. `i-`.
    pub prefix: &'static str,
}

/// `len` random lower-case hex digits, the tail of every generated EC2 id.
pub fn random_hex(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).expect("digit below 16"))
        .collect()
}

/// Accepts `<prefix>` followed by hex digits of an allowed length. AWS's ids have 8 or 17
/// hex digits; AMI ids are looser because LocalStack's have 12 and users tag hand-made
/// AMIs such as `ami-000001`.
fn parse_with_prefix(s: &str, prefix: &'static str, lengths: &[usize]) -> Result<String, IdError> {
    let err = || IdError {
        id: s.to_string(),
        prefix,
    };
    let rest = s.strip_prefix(prefix).ok_or_else(err)?;
    let hex = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit());
    let length_ok = lengths.is_empty() && rest.len() <= 32 || lengths.contains(&rest.len());
    if !hex || !length_ok {
        return Err(err());
    }
    Ok(s.to_string())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $hex:literal, $lengths:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Parses a client-supplied id; the error carries EC2's `Malformed` wording.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                parse_with_prefix(s, $prefix, $lengths).map(Self)
            }

            /// A fresh random id in AWS's long format.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, random_hex($hex)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An EC2 instance id, `i-` and 17 hex digits when generated.
    InstanceId, "i-", 17, &[8, 17]
);
id_type!(
    /// An AMI id, `ami-` and 17 hex digits when generated.
    ImageId, "ami-", 17, &[]
);
id_type!(
    /// A reservation id, `r-` and 17 hex digits.
    ReservationId, "r-", 17, &[]
);
id_type!(
    /// A launch template id, `lt-` and 17 hex digits (the only length AWS makes).
    LaunchTemplateId, "lt-", 17, &[17]
);

id_type!(
    /// An Elastic IP's allocation id, `eipalloc-` and 17 hex digits.
    AllocationId, "eipalloc-", 17, &[]
);
id_type!(
    /// An Elastic IP association's id, `eipassoc-` and 17 hex digits.
    AssociationId, "eipassoc-", 17, &[]
);
id_type!(
    /// An EBS volume id, `vol-` and 17 hex digits when generated.
    VolumeId, "vol-", 17, &[8, 17]
);
id_type!(
    /// An EBS snapshot id, `snap-` and 17 hex digits when generated.
    SnapshotId, "snap-", 17, &[8, 17]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = InstanceId::generate();
        assert_eq!(id.as_str().len(), 2 + 17);
        assert_eq!(InstanceId::parse(id.as_str()).unwrap(), id);
        let ami = ImageId::generate();
        assert_eq!(ImageId::parse(ami.as_str()).unwrap(), ami);
    }

    #[test]
    fn malformed_ids_are_rejected_with_aws_wording() {
        for bad in [
            "",
            "i-",
            "x-123",
            "i-12 34",
            "i-abc/def",
            "ami-123",
            "i-xyz",
            "i-123",
            "i-0123456789abcdefg",
        ] {
            assert!(InstanceId::parse(bad).is_err(), "{bad:?} accepted");
        }
        let err = InstanceId::parse("i-xyz!").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid id: \"i-xyz!\" (expecting \"i-...\")"
        );
        assert!(ImageId::parse("rocket-man").is_err());
        assert!(ImageId::parse("ami-local").is_err());
        assert!(InstanceId::parse("i-0123456789abcdef0").is_ok());
        assert!(ImageId::parse("ami-000001").is_ok());
        assert!(ImageId::parse("ami-12345678").is_ok());
        assert!(InstanceId::parse("i-baadf00d").is_ok());
    }
}
