//! The declarations of the resource kinds the API serves, one file each.

pub mod address;
pub mod credit_specification;
pub mod iam_profile_association;
pub mod image;
pub mod instance;
pub mod instance_type;
pub mod internet_gateway;
pub mod key_pair;
pub mod launch_template;
pub mod network_acl;
pub mod network_interface;
pub mod route_table;
pub mod security_group;
pub mod security_group_rule;
pub mod snapshot;
pub mod subnet;
pub mod volume;
pub mod vpc;

pub use address::AddressKind;
pub use iam_profile_association::IamProfileAssociationKind;
pub use image::ImageKind;
pub use instance::InstanceKind;
pub use instance_type::InstanceTypeKind;
pub use internet_gateway::InternetGatewayKind;
pub use key_pair::KeyPairKind;
pub use launch_template::LaunchTemplateKind;
pub use network_acl::NetworkAclKind;
pub use network_interface::NetworkInterfaceKind;
pub use route_table::RouteTableKind;
pub use security_group::SecurityGroupKind;
pub use security_group_rule::SecurityGroupRuleKind;
pub use snapshot::SnapshotKind;
pub use subnet::SubnetKind;
pub use volume::{VolumeKind, VolumeModificationKind, VolumeStatusKind};
pub use vpc::VpcKind;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::error::ApiError;
use crate::model::Object;
use crate::store::Specs;

/// A region's derived record (the default VPC's gateway or main table), then its stored ones.
pub fn derived_and_stored<S, T>(
    derived: &Object<S, T>,
    stored: Specs<'_, S, T>,
    region: &str,
) -> Result<Vec<Arc<Object<S, T>>>, ApiError>
where
    S: Serialize + DeserializeOwned + Clone,
    T: Serialize + DeserializeOwned + Default + Clone,
{
    let mut all = vec![Arc::new(derived.clone())];
    all.extend(
        stored
            .list_shared()?
            .objects
            .into_iter()
            .filter(|o| o.metadata.namespace == region),
    );
    Ok(all)
}

/// The derived record when `id` names it, else the stored record `id` of the region.
pub fn derived_or_stored<S, T>(
    derived: &Object<S, T>,
    stored: Specs<'_, S, T>,
    region: &str,
    id: &str,
) -> Result<Option<Arc<Object<S, T>>>, ApiError>
where
    S: Serialize + DeserializeOwned + Clone,
    T: Serialize + DeserializeOwned + Default + Clone,
{
    if derived.metadata.name == id {
        return Ok(Some(Arc::new(derived.clone())));
    }
    Ok(stored
        .get_shared(id)?
        .filter(|o| o.metadata.namespace == region))
}
