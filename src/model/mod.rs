//! Pure data: resource documents, ids, state machine and guards; no IO, no async.

pub mod address;
pub mod ami_tag;
pub mod console;
pub mod fixtures;
pub mod iam;
pub mod ids;
pub mod image;
pub mod instance;
pub mod instance_options;
pub mod instance_types;
pub mod keypair;
pub mod launch_template;
pub mod meta;
pub mod network;
pub mod public_amis;
pub mod region;
pub mod routing;
pub mod schema;
pub mod snapshot;
pub mod state;
pub mod volume;
pub mod vpc;

pub use address::{Address, AddressAssociation, AddressSpec, AddressStatus, ADDRESS_KIND};
pub use ami_tag::{AmiTag, AMI_REPOSITORY_PREFIX};
pub use console::ConsoleOutput;
pub use iam::{credentials_for, IamAssociationState, IamProfileRef, RoleCredentials};
pub use ids::{
    AllocationId, AssociationId, IdError, ImageId, InstanceId, LaunchTemplateId, ReservationId,
    SnapshotId, VolumeId,
};
pub use image::{docker_repository_name, DISCOVERED_NAMESPACE, IMAGE_KIND};
pub use image::{
    Image, ImageBlockDevice, ImageSource, ImageSpec, ImageState, ImageStatus, LaunchPermissions,
};
pub use instance::{
    ContainerObservation, GroupRef, ImageCopy, Instance, InstanceSpec, InstanceStatus, PortMapping,
    PortProtocol, PortSpec, ShutdownBehavior, Transition, INSTANCE_KIND, MAX_PUBLISHED_PORTS,
};
pub use instance_options::{
    CpuCredits, CpuOptions, HostnameType, HttpTokens, InstanceOptions, MetadataOptions,
    PrivateDnsNameOptions, Switch,
};
pub use keypair::{
    KeyPair, KeyPairId, KeyPairOrigin, KeyPairSpec, KeyPairStatus, KeyType, KEY_PAIR_KIND,
};
pub use launch_template::{
    LaunchTemplate, LaunchTemplateData, LaunchTemplateSpec, LaunchTemplateStatus,
    LaunchTemplateVersion, VersionRef, LAUNCH_TEMPLATE_KIND,
};
pub use meta::{ErrorRecord, Object, ObjectMeta, StateReason, API_VERSION};
pub use network::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, SecurityGroup, SecurityGroupSpec,
    SecurityGroupStatus, UserIdGroupPair, DEFAULT_GROUP_NAME, SECURITY_GROUP_KIND,
};
pub use public_amis::PublicAmi;
pub use routing::{
    InternetGateway, InternetGatewaySpec, InternetGatewayStatus, RouteTable, RouteTableSpec,
    RouteTableStatus, INTERNET_GATEWAY_KIND, ROUTE_TABLE_KIND,
};
pub use snapshot::{
    Snapshot, SnapshotSource, SnapshotSpec, SnapshotState, SnapshotStatus, SNAPSHOT_KIND,
};
pub use state::{
    display_state, stop_never_ran, DesiredState, InstanceState, NeverRanError, TransitionError,
};
pub use volume::{
    MountedVolume, Volume, VolumeAttachmentSpec, VolumeModificationSpec, VolumeSpec, VolumeStatus,
    VOLUME_KIND,
};
pub use vpc::{
    SubnetRecord, SubnetSpec, SubnetStatus, VpcRecord, VpcSpec, VpcStatus, SUBNET_KIND, VPC_KIND,
};

/// The tag every Docker-backed AMI and instance carries, as in LocalStack.
pub const VM_MANAGER_TAG: &str = "ec2_vm_manager";

/// The container name prefix for instances: `localstack-ec2.<InstanceId>`.
pub const CONTAINER_NAME_PREFIX: &str = "localstack-ec2.";

/// The account id every resource belongs to (LocalStack's default account).
pub const ACCOUNT_ID: &str = "000000000000";

/// Timestamps are stored and shown as RFC 3339 UTC with milliseconds, as EC2 does.
pub type Timestamp = time::OffsetDateTime;

/// Formats a timestamp the way EC2 responses do (`2024-01-01T00:00:00.000Z`).
pub fn format_timestamp(t: Timestamp) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The current time, truncated to milliseconds so stored and shown values agree.
pub fn now() -> Timestamp {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t)
}
