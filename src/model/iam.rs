//! IAM instance profiles as EC2 sees them (the reference an instance holds, its association) and the role credentials IMDS hands an instance, derived purely so a restart gives the same answer.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Timestamp, ACCOUNT_ID};

/// How long one set of role credentials is valid (EC2's instance credentials last 6 hours).
pub const CREDENTIALS_LIFETIME: time::Duration = time::Duration::hours(6);

/// How often the credentials change: a new set is handed out each hour, long before the
/// previous one expires, as EC2 rotates them well ahead of expiry.
pub const ROTATION_PERIOD: time::Duration = time::Duration::hours(1);

/// The prefix of an instance profile's ARN before its path and name.
const ARN_PREFIX: &str = "arn:aws:iam::";

/// The state of an instance's IAM instance profile association.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IamAssociationState {
    /// Being associated (what Associate and Replace answer).
    Associating,
    /// In force.
    #[default]
    Associated,
    /// Being disassociated (what Disassociate answers).
    Disassociating,
    /// No longer in force.
    Disassociated,
}

impl IamAssociationState {
    /// EC2's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Associating => "associating",
            Self::Associated => "associated",
            Self::Disassociating => "disassociating",
            Self::Disassociated => "disassociated",
        }
    }
}

/// The IAM instance profile an instance holds, with its association. ec2d keeps no IAM
/// store: the profile is what the launch or association named, its id derived from its ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IamProfileRef {
    /// `arn:aws:iam::<account>:instance-profile/<path><name>`.
    pub arn: String,
    /// `AIPA…`, derived from the ARN so one profile has one id.
    pub id: String,
    /// `iip-assoc-…`, new with each association.
    pub association_id: String,
    /// The association's state (ec2d applies it at once: `associated`).
    #[serde(default)]
    pub state: IamAssociationState,
    /// When it was associated (DescribeIamInstanceProfileAssociations' `timestamp`).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub associated_at: Timestamp,
}

impl IamProfileRef {
    /// A new association of the profile `arn` (already checked by [`profile_arn`]).
    pub fn associate(arn: String, at: Timestamp) -> Self {
        Self {
            id: profile_id(&arn),
            arn,
            association_id: format!("iip-assoc-{}", super::ids::random_hex(17)),
            state: IamAssociationState::Associated,
            associated_at: at,
        }
    }

    /// The profile's name: the last segment of its ARN's path.
    pub fn name(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    /// The role IMDS names under `iam/security-credentials/`. Without an IAM store the
    /// profile's role is taken to share its name (what `aws iam create-instance-profile`
    /// setups and Terraform examples most often do).
    pub fn role_name(&self) -> &str {
        self.name()
    }
}

/// Why an instance profile reference was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    /// Not an instance profile ARN.
    Arn,
    /// Not a valid profile name (1 to 128 of `\w+=,.@-`).
    Name,
}

/// The ARN of the profile named by `IamInstanceProfile.Arn` or `.Name` (the ARN wins).
pub fn profile_arn(arn: Option<&str>, name: Option<&str>) -> Result<Option<String>, ProfileError> {
    if let Some(arn) = arn.filter(|a| !a.is_empty()) {
        let rest = arn.strip_prefix(ARN_PREFIX).ok_or(ProfileError::Arn)?;
        let (account, resource) = rest.split_once(':').ok_or(ProfileError::Arn)?;
        let path_and_name = resource
            .strip_prefix("instance-profile/")
            .ok_or(ProfileError::Arn)?;
        let name = path_and_name.rsplit('/').next().unwrap_or_default();
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        if !account_ok || !valid_name(name) {
            return Err(ProfileError::Arn);
        }
        return Ok(Some(arn.to_string()));
    }
    match name.filter(|n| !n.is_empty()) {
        None => Ok(None),
        Some(name) if valid_name(name) => Ok(Some(format!(
            "{ARN_PREFIX}{ACCOUNT_ID}:instance-profile/{name}"
        ))),
        Some(_) => Err(ProfileError::Name),
    }
}

/// IAM's rule for names: 1 to 128 alphanumerics and `+=,.@_-`.
fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// `AIPA` and 17 characters of IAM's unique-id alphabet, derived from the ARN.
pub fn profile_id(arn: &str) -> String {
    format!("AIPA{}", unique_chars(&format!("profile/{arn}"), 17))
}

/// The role credentials IMDS serves under `iam/security-credentials/<role>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCredentials {
    /// `ASIA…`, a temporary key id.
    pub access_key_id: String,
    /// 40 characters.
    pub secret_access_key: String,
    /// The session token.
    pub token: String,
    /// When they stop being valid.
    pub expiration: Timestamp,
    /// When they were issued (the start of their rotation window).
    pub last_updated: Timestamp,
    /// The role they are for.
    pub role_name: String,
}

/// The credentials of `instance_id` holding `profile` at `now`: the same for every call in
/// one rotation window (an hour), so a restart of ec2d changes nothing; each window's set is
/// valid for six hours, so a client holding the previous set is never left with expired ones.
/// They are derived from public inputs: ec2d checks no signatures, so they are a shape clients
/// accept, not a secret.
pub fn credentials_for(
    instance_id: &str,
    profile: &IamProfileRef,
    now: Timestamp,
) -> RoleCredentials {
    let period = ROTATION_PERIOD.whole_seconds();
    let window = now.unix_timestamp().div_euclid(period);
    let issued = Timestamp::from_unix_timestamp(window * period).unwrap_or(now);
    let seed = format!(
        "{instance_id}/{}/{}/{window}",
        profile.arn, profile.association_id
    );
    let token: Vec<u8> = (0..4)
        .flat_map(|i| Sha256::digest(format!("token/{i}/{seed}").as_bytes()))
        .collect();
    RoleCredentials {
        access_key_id: format!("ASIA{}", unique_chars(&format!("key/{seed}"), 16)),
        secret_access_key: STANDARD
            .encode(Sha256::digest(format!("secret/{seed}").as_bytes()))
            .chars()
            .take(40)
            .collect(),
        token: STANDARD.encode(token),
        expiration: issued + CREDENTIALS_LIFETIME,
        last_updated: issued,
        role_name: profile.role_name().to_string(),
    }
}

/// `len` characters of IAM's unique-id alphabet (upper-case letters and 2-7), hashed from `seed`.
fn unique_chars(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    Sha256::digest(seed.as_bytes())
        .iter()
        .take(len)
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> IamProfileRef {
        IamProfileRef::associate(
            profile_arn(None, Some("web")).unwrap().unwrap(),
            time::macros::datetime!(2026-01-01 00:00 UTC),
        )
    }

    #[test]
    fn names_and_arns_are_checked() {
        assert_eq!(
            profile_arn(None, Some("web")).unwrap().unwrap(),
            format!("arn:aws:iam::{ACCOUNT_ID}:instance-profile/web")
        );
        let arn = "arn:aws:iam::123456789012:instance-profile/team/web";
        assert_eq!(profile_arn(Some(arn), Some("x")).unwrap().unwrap(), arn);
        assert_eq!(profile_arn(None, None), Ok(None));
        assert_eq!(profile_arn(None, Some("a b")), Err(ProfileError::Name));
        for bad in [
            "web",
            "arn:aws:iam::1234:instance-profile/web",
            "arn:aws:iam::123456789012:role/web",
            "arn:aws:iam::123456789012:instance-profile/",
        ] {
            assert_eq!(
                profile_arn(Some(bad), None),
                Err(ProfileError::Arn),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_profile_has_one_id_and_its_name_is_its_role() {
        let p = profile();
        assert_eq!(p.id, profile_id(&p.arn));
        assert_eq!(p.id.len(), 21);
        assert!(p.id.starts_with("AIPA"));
        assert!(p.association_id.starts_with("iip-assoc-"));
        assert_eq!(p.association_id.len(), "iip-assoc-".len() + 17);
        assert_eq!(p.role_name(), "web");
    }

    #[test]
    fn credentials_are_stable_within_an_hour_and_rotate_before_expiry() {
        let p = profile();
        let at = time::macros::datetime!(2026-03-01 10:15 UTC);
        let a = credentials_for("i-1", &p, at);
        let b = credentials_for("i-1", &p, at + time::Duration::minutes(40));
        assert_eq!(a, b);
        assert!(a.access_key_id.starts_with("ASIA") && a.access_key_id.len() == 20);
        assert_eq!(a.secret_access_key.len(), 40);
        assert_eq!(
            a.last_updated,
            time::macros::datetime!(2026-03-01 10:00 UTC)
        );
        assert_eq!(a.expiration, time::macros::datetime!(2026-03-01 16:00 UTC));
        assert_eq!(a.role_name, "web");
        let next = credentials_for("i-1", &p, at + time::Duration::hours(1));
        assert_ne!(next.access_key_id, a.access_key_id);
        assert!(next.last_updated < a.expiration);
        assert_ne!(
            credentials_for("i-2", &p, at).access_key_id,
            a.access_key_id
        );
    }
}
