//! The store's error type.

/// What can go wrong reading or writing the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No object with that id.
    #[error("{kind} {id} not found")]
    NotFound {
        /// The kind looked up.
        kind: &'static str,
        /// The id looked up.
        id: String,
    },
    /// An object with that id already exists.
    #[error("{kind} {id} already exists")]
    AlreadyExists {
        /// The kind written.
        kind: &'static str,
        /// The clashing id.
        id: String,
    },
    /// A name that must be unique in its scope (a key pair's in its region, a security
    /// group's in its VPC, an AMI's in its region, a ClientToken in its region) is taken.
    #[error("{kind} name {name} is taken by {holder}")]
    NameTaken {
        /// The kind whose name index refused the write.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The id of the record that holds it.
        holder: String,
    },
    /// A stored value could not be decoded.
    #[error("corrupt {kind} record {key}: {reason}")]
    Corrupt {
        /// The kind of the record.
        kind: &'static str,
        /// The record's key, lossily decoded.
        key: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// sled or the file system failed.
    #[error("store backend error: {0}")]
    Backend(String),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        Self::Backend(e.to_string())
    }
}
