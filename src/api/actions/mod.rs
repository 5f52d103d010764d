//! The EC2 actions, one file each (the table in `dispatch` says which handler answers which `Action`).

pub mod authorize_security_group;
pub mod change_instance_state;
pub mod create_image;
pub mod create_key_pair;
pub mod create_security_group;
pub mod create_tags;
pub mod delete_key_pair;
pub mod delete_security_group;
pub mod delete_tags;
pub mod describe_availability_zones;
pub mod describe_images;
pub mod describe_instance_attribute;
pub mod describe_instance_status;
pub mod describe_instances;
pub mod describe_key_pairs;
pub mod describe_regions;
pub mod describe_security_groups;
pub mod describe_subnets;
pub mod describe_tags;
pub mod describe_vpcs;
pub mod import_key_pair;
pub mod modify_instance_attribute;
pub mod reboot_instances;
pub mod revoke_security_group;
pub mod run_instances;
