//! The IAM role an instance's metadata shows (`iam/info`, `iam/security-credentials/<role>`), in EC2's JSON shapes.
//!
//! STUB until issue 13's `iam` part is merged: [`role_of`] answers `None` (no instance has a
//! profile yet, so `iam/` is not listed, as on an instance without one). After the merge it
//! reads `spec.iam_instance_profile` and `model::iam::credentials_for(instance, profile, now)`
//! into a [`Role`]; nothing else here changes.

use serde_json::json;

use crate::model::{Instance, Timestamp};

use super::tree::Node;

/// What `iam/` shows: the profile and the role's current credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The role's name (the one entry of `iam/security-credentials/`).
    pub name: String,
    /// `InstanceProfileArn`.
    pub instance_profile_arn: String,
    /// `InstanceProfileId` (`AIPA…`).
    pub instance_profile_id: String,
    /// `AccessKeyId` (`ASIA…`).
    pub access_key_id: String,
    /// `SecretAccessKey`.
    pub secret_access_key: String,
    /// `Token`.
    pub token: String,
    /// `Expiration`, `2024-01-01T06:00:00Z`.
    pub expiration: String,
    /// `LastUpdated`, when these credentials were issued.
    pub last_updated: String,
}

/// The role `instance` runs as at `now`, when it has an instance profile (stub: none yet, see
/// the module's docs).
pub fn role_of(_instance: &Instance, _now: Timestamp) -> Option<Role> {
    None
}

impl Role {
    /// The `iam/` directory: `info` and `security-credentials/<role>`.
    pub fn tree(&self) -> Node {
        let info = json!({
            "Code": "Success",
            "LastUpdated": self.last_updated,
            "InstanceProfileArn": self.instance_profile_arn,
            "InstanceProfileId": self.instance_profile_id,
        });
        let credentials = json!({
            "Code": "Success",
            "LastUpdated": self.last_updated,
            "Type": "AWS-HMAC",
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.token,
            "Expiration": self.expiration,
        });
        Node::dir().leaf("info", pretty(&info)).with(
            "security-credentials",
            Node::dir().leaf(&self.name, pretty(&credentials)),
        )
    }
}

/// EC2 answers these documents indented by two spaces, one member a line.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
