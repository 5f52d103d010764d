//! The IAM role an instance's metadata shows (`iam/info`, `iam/security-credentials/<role>`), in EC2's JSON shapes.
//!
//! The role is the instance's profile (`spec.iam_instance_profile`, its role named as the
//! profile: ec2d keeps no IAM store) and its credentials `model::iam::credentials_for` derives
//! for the current rotation window, so every read within an hour answers the same set.

use serde_json::json;

use crate::model::iam::{credentials_for, IamAssociationState};
use crate::model::{Instance, Timestamp};

use super::identity::seconds_timestamp;

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

/// The role `instance` runs as at `now`, when it holds an instance profile in force.
pub fn role_of(instance: &Instance, now: Timestamp) -> Option<Role> {
    let profile = instance
        .spec
        .iam_instance_profile
        .as_ref()
        .filter(|p| p.state == IamAssociationState::Associated)?;
    let credentials = credentials_for(&instance.metadata.name, profile, now);
    Some(Role {
        name: credentials.role_name.clone(),
        instance_profile_arn: profile.arn.clone(),
        instance_profile_id: profile.id.clone(),
        access_key_id: credentials.access_key_id,
        secret_access_key: credentials.secret_access_key,
        token: credentials.token,
        expiration: seconds_timestamp(credentials.expiration),
        last_updated: seconds_timestamp(credentials.last_updated),
    })
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
