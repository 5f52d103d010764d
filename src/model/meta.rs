//! Kubernetes-shaped object envelope (`apiVersion`, `kind`, `metadata`, `spec`, `status`) and shared value types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Timestamp;

/// The API group and version of every stored document.
pub const API_VERSION: &str = "ec2d.dev/v1alpha1";

/// Metadata common to every kind, as in Kubernetes' `ObjectMeta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The EC2 id (`i-…`, `ami-…`): the object's name.
    pub name: String,
    /// The AWS region the resource lives in; resources are scoped per region.
    pub namespace: String,
    /// Bumped by every spec change; status says which generation it describes.
    pub generation: u64,
    /// Bumped by every write of the spec document, for optimistic concurrency.
    pub resource_version: u64,
    /// When the API created the resource (EC2's `LaunchTime` / `CreationDate`).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub creation_timestamp: Timestamp,
    /// When deletion (termination, deregistration) was requested; the record stays until collected.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub deletion_timestamp: Option<Timestamp>,
}

impl ObjectMeta {
    /// Metadata for a resource created now, at generation 1.
    pub fn new(name: impl Into<String>, region: impl Into<String>, now: Timestamp) -> Self {
        Self {
            name: name.into(),
            namespace: region.into(),
            generation: 1,
            resource_version: 1,
            creation_timestamp: now,
            deletion_timestamp: None,
        }
    }
}

/// A stored document: spec written by the API, status written by the reconciler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Object<S, T: Default> {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// `Instance` or `Image`.
    pub kind: String,
    /// Identity, region, generations and timestamps.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: S,
    /// Observed state; the default means "nothing observed yet".
    #[serde(default)]
    pub status: T,
}

/// EC2's `StateReason`: why a resource is in its state (also where reconcile errors surface).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateReason {
    /// E.g. `Client.UserInitiatedShutdown`, `Server.InternalError`.
    pub code: String,
    /// E.g. `Client.UserInitiatedShutdown: User initiated shutdown`.
    pub message: String,
}

impl StateReason {
    /// A reason whose message follows AWS's `"<code>: <text>"` form.
    pub fn new(code: &str, text: &str) -> Self {
        Self {
            code: code.to_string(),
            message: format!("{code}: {text}"),
        }
    }

    /// The reason for a stop or terminate requested through the API.
    pub fn user_initiated_shutdown() -> Self {
        Self::new("Client.UserInitiatedShutdown", "User initiated shutdown")
    }

    /// The reason for a shutdown from inside the instance (its main process ended).
    pub fn instance_initiated_shutdown() -> Self {
        Self::new(
            "Client.InstanceInitiatedShutdown",
            "Instance initiated shutdown",
        )
    }

    /// The reason for a failure on ec2d's side (for example the AMI's image vanished).
    pub fn internal_error(detail: &str) -> Self {
        Self {
            code: "Server.InternalError".to_string(),
            message: format!("Server.InternalError: {detail}"),
        }
    }
}

/// The last error the reconciler met for a resource, with when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRecord {
    /// The error, as text.
    pub message: String,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: Timestamp,
}

impl ErrorRecord {
    /// The error `message`, met at `at`.
    pub fn new(message: impl Into<String>, at: Timestamp) -> Self {
        Self {
            message: message.into(),
            at,
        }
    }
}
