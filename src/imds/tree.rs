//! The metadata tree one instance sees, built from its records at each request: directories list their entries (`name/` for a directory), leaves are values.

use std::sync::Arc;

use crate::api::addresses::{public_dns_name, shown_public_ip};
use crate::api::block_devices::root_device_name;
use crate::api::instances::shown_state;
use crate::api::render::{derived_id, derived_mac, private_dns_name, private_ip};
use crate::model::instance_options::Switch;
use crate::model::{region, Address, Instance, SubnetSpec, VpcSpec, ACCOUNT_ID};

use super::role::Role;

/// A node of the tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// A value.
    Leaf(String),
    /// A directory.
    Dir(Vec<Entry>),
}

/// One entry of a directory.
#[derive(Debug, Clone)]
pub struct Entry {
    name: String,
    /// How the listing shows it when not by its name (`public-keys/` lists `0=<key name>`).
    listed_as: Option<String>,
    node: Node,
}

impl Node {
    /// An empty directory.
    pub(super) fn dir() -> Self {
        Self::Dir(Vec::new())
    }

    /// Adds `node` as `name` (a directory only).
    pub(super) fn with(mut self, name: impl Into<String>, node: Node) -> Self {
        if let Self::Dir(entries) = &mut self {
            entries.push(Entry {
                name: name.into(),
                listed_as: None,
                node,
            });
        }
        self
    }

    /// Adds a value.
    pub(super) fn leaf(self, name: &str, value: impl Into<String>) -> Self {
        self.with(name, Self::Leaf(value.into()))
    }

    /// Adds a value when there is one.
    fn opt_leaf(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(value) => self.leaf(name, value),
            None => self,
        }
    }

    /// The node at `path` (segments, no empty ones).
    pub fn find(&self, path: &[&str]) -> Option<&Node> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match self {
            Self::Leaf(_) => None,
            Self::Dir(entries) => entries
                .iter()
                .find(|e| e.name == *first)
                .and_then(|e| e.node.find(rest)),
        }
    }

    /// What a GET of this node answers: the value, or the listing (one entry a line, a
    /// directory with a trailing `/`, no final newline, as EC2 answers).
    pub fn body(&self) -> String {
        match self {
            Self::Leaf(value) => value.clone(),
            Self::Dir(entries) => entries
                .iter()
                .map(|e| match (&e.listed_as, &e.node) {
                    (Some(listed), _) => listed.clone(),
                    (None, Self::Dir(_)) => format!("{}/", e.name),
                    (None, Self::Leaf(_)) => e.name.clone(),
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Everything an instance's metadata is made of, read from the store for one request.
#[derive(Debug)]
pub struct Facts {
    /// The instance.
    pub instance: Arc<Instance>,
    /// The Elastic IP it holds.
    pub address: Option<Arc<Address>>,
    /// Its subnet's record, when the subnet is stored (a default subnet is derived).
    pub subnet: Option<SubnetSpec>,
    /// Its VPC's record, when stored.
    pub vpc: Option<VpcSpec>,
    /// Its IAM role, when it has an instance profile.
    pub role: Option<Role>,
}

impl Facts {
    /// The instance's private address.
    pub fn private_ip(&self) -> Option<&str> {
        private_ip(&self.instance, shown_state(&self.instance))
    }

    /// The instance's region.
    pub fn region(&self) -> &str {
        &self.instance.metadata.namespace
    }

    /// The zone id of the instance's zone (`use1-az1`).
    fn zone_id(&self) -> Option<String> {
        region::zones(self.region())
            .into_iter()
            .find(|z| z.name == self.instance.spec.availability_zone)
            .map(|z| z.id)
    }
}

/// The `meta-data/` tree of an instance.
pub fn meta_data(facts: &Facts) -> Node {
    let instance = &facts.instance;
    let spec = &instance.spec;
    let id = instance.metadata.name.as_str();
    let region = facts.region();
    let private = facts.private_ip();
    let hostname = private.map(|ip| private_dns_name(ip, region));
    let public = shown_public_ip(instance, shown_state(instance), facts.address.as_deref());
    let public_hostname = facts
        .address
        .as_ref()
        .map(|a| public_dns_name(&a.spec.public_ip, region));
    let mac = derived_mac(id);
    let groups = |f: fn(&crate::model::GroupRef) -> &str| {
        spec.security_groups
            .iter()
            .map(f)
            .collect::<Vec<_>>()
            .join("\n")
    };

    let mut tree = Node::dir()
        .leaf("ami-id", spec.image_id.as_str())
        .leaf("ami-launch-index", spec.ami_launch_index.to_string())
        .leaf("ami-manifest-path", "(unknown)")
        .with(
            "block-device-mapping",
            Node::dir()
                .leaf("ami", root_device_name(instance))
                .leaf("root", root_device_name(instance)),
        )
        .opt_leaf("hostname", hostname.clone());
    if let Some(role) = &facts.role {
        tree = tree.with("iam", role.tree());
    }
    tree = tree
        .leaf("instance-action", "none")
        .leaf("instance-id", id)
        .leaf("instance-life-cycle", "on-demand")
        .leaf("instance-type", spec.instance_type.as_str())
        .opt_leaf("local-hostname", hostname.clone())
        .opt_leaf("local-ipv4", private)
        .leaf("mac", mac.clone());

    let mut interface = Node::dir().leaf("device-number", "0");
    if spec.vpc_id.is_some() {
        interface = interface.leaf("interface-id", derived_id("eni", id));
    }
    interface = interface
        .opt_leaf("local-hostname", hostname.clone())
        .opt_leaf("local-ipv4s", private)
        .leaf("mac", mac.clone())
        .leaf("owner-id", ACCOUNT_ID)
        .opt_leaf("public-hostname", public_hostname.clone())
        .opt_leaf("public-ipv4s", public)
        .leaf("security-group-ids", groups(|g| &g.group_id))
        .leaf("security-groups", groups(|g| &g.group_name))
        .opt_leaf("subnet-id", spec.subnet_id.as_deref())
        .opt_leaf(
            "subnet-ipv4-cidr-block",
            facts.subnet.as_ref().map(|s| s.cidr_block.as_str()),
        )
        .opt_leaf("vpc-id", spec.vpc_id.as_deref());
    if let Some(vpc) = &facts.vpc {
        interface = interface
            .leaf("vpc-ipv4-cidr-block", vpc.cidr_block.as_str())
            .leaf("vpc-ipv4-cidr-blocks", vpc.cidr_block.as_str());
    }
    tree = tree
        .with(
            "network",
            Node::dir().with(
                "interfaces",
                Node::dir().with("macs", Node::dir().with(mac, interface)),
            ),
        )
        .with(
            "placement",
            Node::dir()
                .leaf("availability-zone", spec.availability_zone.as_str())
                .opt_leaf("availability-zone-id", facts.zone_id())
                .leaf("region", region),
        )
        .opt_leaf("public-hostname", public_hostname)
        .opt_leaf("public-ipv4", public);
    if let (Some(name), Some(key)) = (&spec.key_name, &spec.public_key) {
        let mut keys = Node::dir().with("0", Node::dir().leaf("openssh-key", key.as_str()));
        if let Node::Dir(entries) = &mut keys {
            entries[0].listed_as = Some(format!("0={name}"));
        }
        tree = tree.with("public-keys", keys);
    }
    tree = tree
        .leaf("reservation-id", spec.reservation_id.as_str())
        .leaf("security-groups", groups(|g| &g.group_name))
        .with(
            "services",
            Node::dir()
                .leaf("domain", "amazonaws.com")
                .leaf("partition", "aws"),
        );
    if spec.options.metadata.instance_metadata_tags == Switch::Enabled {
        let tags = spec
            .tags
            .iter()
            .fold(Node::dir(), |dir, (k, v)| dir.leaf(k, v.as_str()));
        tree = tree.with("tags", Node::dir().with("instance", tags));
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_mark_directories_and_lookups_walk_them() {
        let tree = Node::dir()
            .leaf("a", "1")
            .with("b", Node::dir().leaf("c", "2"));
        assert_eq!(tree.body(), "a\nb/");
        assert_eq!(tree.find(&["b", "c"]).unwrap().body(), "2");
        assert!(tree.find(&["a", "x"]).is_none());
        assert!(tree.find(&["x"]).is_none());
    }
}
