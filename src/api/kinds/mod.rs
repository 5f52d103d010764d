//! The declarations of the resource kinds the API serves, one file each.

pub mod address;
pub mod credit_specification;
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
pub mod subnet;
pub mod vpc;

pub use address::AddressKind;
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
pub use subnet::SubnetKind;
pub use vpc::VpcKind;
