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

/// The VPC a network backs. Networks without it are never touched.
pub const VPC_ID: &str = "ec2d.vpc-id";

/// The EBS volume whose data a Docker volume holds. Volumes without it (or
/// [`SNAPSHOT_ID`]) are never touched.
pub const VOLUME_ID: &str = "ec2d.volume-id";

/// The EBS snapshot whose copy a Docker volume holds.
pub const SNAPSHOT_ID: &str = "ec2d.snapshot-id";

/// Marks the never-started helper containers that copy one Docker volume's files into another;
/// the value is the target volume's name, so a sweep collects only its own store's leftovers.
pub const VOLUME_HELPER: &str = "ec2d.volume-helper";

/// How the name of every VPC network ec2d makes begins (network events carry no labels).
pub const NETWORK_PREFIX: &str = "ec2d-";

/// The Docker network of a VPC in a store: `ec2d-<store>-<vpc-id>`, with the store's id cut to
/// 8 characters, so two stores sharing an engine (each with the region's default VPC, whose id
/// is the same everywhere) never share a network.
pub fn network_name(store_id: &str, vpc_id: &str) -> String {
    let store: String = store_id.chars().take(8).collect();
    format!("{NETWORK_PREFIX}{store}-{vpc_id}")
}

/// The VPC id in a [`network_name`] made by the store `store_id`; `None` for any other name.
pub fn vpc_of_network(store_id: &str, name: &str) -> Option<String> {
    let store: String = store_id.chars().take(8).collect();
    let vpc = name
        .strip_prefix(NETWORK_PREFIX)?
        .strip_prefix(store.as_str())?
        .strip_prefix('-')?;
    vpc.starts_with("vpc-").then(|| vpc.to_string())
}

/// The Docker volume holding an EBS volume's or snapshot's data in a store:
/// `ec2d-<store>-<vol-or-snap id>`, the store's id cut to 8 characters as in [`network_name`].
pub fn volume_name(store_id: &str, id: &str) -> String {
    format!("{}{id}", volume_prefix(store_id))
}

/// How the names of a store's Docker volumes (and so its helper containers' labels) begin.
pub fn volume_prefix(store_id: &str) -> String {
    let store: String = store_id.chars().take(8).collect();
    format!("{NETWORK_PREFIX}{store}-")
}

/// The `vol-` or `snap-` id in a [`volume_name`] made by the store `store_id`; `None` for any
/// other name (volume events carry no labels, so ec2d's volumes are told by their name).
pub fn id_of_volume(store_id: &str, name: &str) -> Option<String> {
    let id = name.strip_prefix(volume_prefix(store_id).as_str())?;
    (id.starts_with("vol-") || id.starts_with("snap-")).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names_round_trip_per_store() {
        let name = network_name("0123456789abcdef", "vpc-0a1b2c3d4e5f60718");
        assert_eq!(name, "ec2d-01234567-vpc-0a1b2c3d4e5f60718");
        assert_eq!(
            vpc_of_network("0123456789abcdef", &name).as_deref(),
            Some("vpc-0a1b2c3d4e5f60718")
        );
        assert_eq!(vpc_of_network("fedcba9876543210", &name), None);
        assert_eq!(vpc_of_network("0123456789abcdef", "bridge"), None);
    }

    #[test]
    fn volume_names_round_trip_per_store() {
        let name = volume_name("0123456789abcdef", "vol-0a1b2c3d4e5f60718");
        assert_eq!(name, "ec2d-01234567-vol-0a1b2c3d4e5f60718");
        assert_eq!(
            id_of_volume("0123456789abcdef", &name).as_deref(),
            Some("vol-0a1b2c3d4e5f60718")
        );
        let snap = volume_name("0123456789abcdef", "snap-0a1b2c3d4e5f60718");
        assert_eq!(
            id_of_volume("0123456789abcdef", &snap).as_deref(),
            Some("snap-0a1b2c3d4e5f60718")
        );
        assert_eq!(id_of_volume("fedcba9876543210", &name), None);
        assert_eq!(
            id_of_volume("0123456789abcdef", "ec2d-01234567-vpc-0a1b2c3d4e5f60718"),
            None
        );
    }
}
