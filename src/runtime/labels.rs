//! Label keys that act as owner references on instance containers.

/// The instance that owns a container. Containers without it are never touched.
pub const INSTANCE_ID: &str = "ec2d.instance-id";

/// Marks every container ec2d created, for `docker ps --filter label=ec2d.managed`.
pub const MANAGED: &str = "ec2d.managed";

/// LocalStack's tag, also put on containers so users' filters keep working.
pub const VM_MANAGER: &str = "ec2_vm_manager";

/// The region of the owning instance, for humans reading `docker inspect`.
pub const REGION: &str = "ec2d.region";

/// The id of the ec2d store that owns the container; garbage collection only touches its own.
pub const STORE_ID: &str = "ec2d.store-id";
