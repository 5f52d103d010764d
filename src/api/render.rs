//! The XML shapes of instances, instance states and images, shared by every action that returns them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::api::xml::XmlWriter;
pub(crate) use crate::model::ids::{derived_id, derived_mac};

use crate::model::{
    format_timestamp, Address, DesiredState, GroupRef, Image, ImageBlockDevice, ImageState,
    Instance, InstanceState, StateReason, Timestamp, Volume, ACCOUNT_ID,
};

use super::addresses::{public_dns_name, render_association, shown_public_ip};
use super::block_devices::{render_block_devices, root_device_name};
use super::iam_profiles::{live_profile, render_profile};

use super::images::Ami;
use super::instance_options::{monitoring_state, render_option_blocks};
use super::instances::shown_state;

/// The root device of instances and AMIs that record none (those recorded before volumes
/// existed, discovered AMIs).
pub const ROOT_DEVICE_NAME: &str = "/dev/sda1";

/// `<name><code>…</code><name>…</name></name>`: EC2's `InstanceState`.
pub fn render_state(w: &mut XmlWriter, element: &str, state: InstanceState) {
    w.el(element, |w| {
        w.field("code", state.code());
        w.field("name", state.name());
    });
}

/// `<tagSet>` when there are tags; EC2 omits the element otherwise.
pub fn render_tags(w: &mut XmlWriter, tags: &BTreeMap<String, String>) {
    if tags.is_empty() {
        return;
    }
    w.set("tagSet", tags, |w, (key, value)| {
        w.field("key", key);
        w.field("value", value);
    });
}

/// The instance's private IPv4 address: its container's as last observed (the truth, also on
/// Docker's default bridge when its VPC's network was refused), else the one RunInstances
/// allocated; a terminated instance has none.
pub fn private_ip(instance: &Instance, shown: InstanceState) -> Option<&str> {
    if shown == InstanceState::Terminated {
        return None;
    }
    instance
        .status
        .container
        .as_ref()
        .and_then(|c| c.ip_address.as_deref())
        .filter(|ip| !ip.is_empty())
        .or(instance.spec.private_ip.as_deref())
}

/// The public address: the same container address, shown only while the instance can serve,
/// as EC2 releases a public IP on stop.
pub fn public_ip(instance: &Instance, shown: InstanceState) -> Option<&str> {
    match shown {
        InstanceState::Pending | InstanceState::Running => private_ip(instance, shown),
        _ => None,
    }
}

/// EC2's private DNS name for an address: `ip-a-b-c-d.ec2.internal` in us-east-1,
/// `ip-a-b-c-d.<region>.compute.internal` elsewhere.
pub fn private_dns_name(ip: &str, region: &str) -> String {
    match ip.parse::<Ipv4Addr>() {
        Ok(addr) => {
            let [a, b, c, d] = addr.octets();
            if region == "us-east-1" {
                format!("ip-{a}-{b}-{c}-{d}.ec2.internal")
            } else {
                format!("ip-{a}-{b}-{c}-{d}.{region}.compute.internal")
            }
        }
        Err(_) => String::new(),
    }
}

/// `User initiated (2025-07-11 03:24:24 GMT)`, EC2's `StateTransitionReason` for API stops and terminations.
pub fn user_initiated_reason(at: Timestamp) -> String {
    let t = at.to_offset(time::UtcOffset::UTC);
    format!(
        "User initiated ({:04}-{:02}-{:02} {:02}:{:02}:{:02} GMT)",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether the shown state is on the way down (or down).
fn is_down(shown: InstanceState) -> bool {
    matches!(
        shown,
        InstanceState::Stopping
            | InstanceState::Stopped
            | InstanceState::ShuttingDown
            | InstanceState::Terminated
    )
}

/// `StateTransitionReason`: set when the user stopped or terminated the instance through the API.
pub(crate) fn transition_reason(instance: &Instance, shown: InstanceState) -> String {
    match instance.spec.user_transition_at {
        Some(at) if is_down(shown) && instance.spec.desired != DesiredState::Running => {
            user_initiated_reason(at)
        }
        _ => String::new(),
    }
}

/// `StateReason`: the reconciler's when it describes the current generation (or the instance
/// reached `terminated`, which is final); otherwise `Client.UserInitiatedShutdown` while a user
/// stop/terminate is under way; otherwise none, so a reason from before a restart is not shown
/// on the new `pending`.
fn state_reason(instance: &Instance, shown: InstanceState) -> Option<StateReason> {
    let status = &instance.status;
    let current = status.observed_generation >= instance.metadata.generation;
    if current || shown == InstanceState::Terminated {
        if let Some(reason) = &status.state_reason {
            return Some(reason.clone());
        }
    }
    let user_down = is_down(shown)
        && instance.spec.desired != DesiredState::Running
        && instance.spec.user_transition_at.is_some();
    user_down.then(StateReason::user_initiated_shutdown)
}

/// `<groupSet>` of an instance or interface: `GroupIdentifier`s (`groupId`, `groupName`).
pub fn render_group_set(w: &mut XmlWriter, groups: &[GroupRef]) {
    w.set("groupSet", groups, |w, g| {
        w.field("groupId", &g.group_id);
        w.field("groupName", &g.group_name);
    });
}

/// The instance's one network interface (device 0) in its subnet, as a VPC instance has.
/// Shown only for instances launched into a subnet and not terminated (EC2 detaches it then).
fn render_network_interfaces(
    w: &mut XmlWriter,
    instance: &Instance,
    shown: InstanceState,
    eip: Option<&Address>,
) {
    let spec = &instance.spec;
    let (Some(subnet_id), Some(vpc_id)) = (&spec.subnet_id, &spec.vpc_id) else {
        return;
    };
    if shown == InstanceState::Terminated {
        w.empty("networkInterfaceSet");
        return;
    }
    let id = instance.metadata.name.as_str();
    let private = private_ip(instance, shown);
    let dns = private.map(|ip| private_dns_name(ip, &instance.metadata.namespace));
    let public = shown_public_ip(instance, shown, eip);
    let association = |w: &mut XmlWriter| render_association(w, public, eip, false);
    w.set("networkInterfaceSet", [()], |w, ()| {
        w.field("networkInterfaceId", derived_id("eni", id));
        w.field("subnetId", subnet_id);
        w.field("vpcId", vpc_id);
        w.field(
            "description",
            spec.interface_description.as_deref().unwrap_or_default(),
        );
        w.field("ownerId", ACCOUNT_ID);
        w.field("status", "in-use");
        w.field("macAddress", derived_mac(id));
        w.opt_field("privateIpAddress", private);
        w.opt_field("privateDnsName", dns.as_deref());
        w.field("sourceDestCheck", spec.options.source_dest_check);
        render_group_set(w, &spec.security_groups);
        w.el("attachment", |w| {
            w.field("attachmentId", derived_id("eni-attach", id));
            w.field("deviceIndex", 0);
            w.field("status", "attached");
            w.field(
                "attachTime",
                format_timestamp(instance.metadata.creation_timestamp),
            );
            w.field("deleteOnTermination", true);
            w.field("networkCardIndex", 0);
        });
        association(w);
        w.set("privateIpAddressesSet", private, |w, ip| {
            w.field("privateIpAddress", ip);
            w.opt_field("privateDnsName", dns.as_deref());
            w.field("primary", true);
            association(w);
        });
        w.empty("ipv6AddressesSet");
        w.field("interfaceType", "interface");
    });
}

/// One `RunningInstancesItemType`: the element list boto3 and the aws CLI expect, with
/// ec2d's fixed answers for what it does not model (hvm). `eip` is the Elastic IP the
/// instance holds (`api::addresses::HeldAddresses::of`), `volumes` the volume records naming
/// it (`api::block_devices::InstanceVolumes::of`), shown as its `blockDeviceMapping`.
pub fn render_instance(
    w: &mut XmlWriter,
    instance: &Instance,
    eip: Option<&Address>,
    volumes: &[Arc<Volume>],
) {
    let shown = shown_state(instance);
    let spec = &instance.spec;
    let private = private_ip(instance, shown);
    w.field("instanceId", &instance.metadata.name);
    w.field("imageId", &spec.image_id);
    render_state(w, "instanceState", shown);
    w.field(
        "privateDnsName",
        private
            .map(|ip| private_dns_name(ip, &instance.metadata.namespace))
            .unwrap_or_default(),
    );
    // No public DNS for the launch address: a made-up name would not resolve, and tools
    // prefer it over the address. An Elastic IP has EC2's name, as clients expect of one.
    w.field(
        "dnsName",
        eip.map(|a| public_dns_name(&a.spec.public_ip, &instance.metadata.namespace))
            .unwrap_or_default(),
    );
    w.field("reason", transition_reason(instance, shown));
    w.opt_field("keyName", spec.key_name.as_deref());
    w.field("amiLaunchIndex", spec.ami_launch_index);
    w.empty("productCodes");
    w.field("instanceType", &spec.instance_type);
    w.field(
        "launchTime",
        format_timestamp(instance.metadata.creation_timestamp),
    );
    w.el("placement", |w| {
        w.field("availabilityZone", &spec.availability_zone);
        w.field("groupName", "");
        w.field("tenancy", "default");
    });
    w.el("monitoring", |w| {
        w.field("state", monitoring_state(instance))
    });
    w.opt_field("subnetId", spec.subnet_id.as_deref());
    w.opt_field("vpcId", spec.vpc_id.as_deref());
    w.opt_field("privateIpAddress", private);
    w.opt_field("ipAddress", shown_public_ip(instance, shown, eip));
    w.field("sourceDestCheck", spec.options.source_dest_check);
    render_group_set(w, &spec.security_groups);
    if let Some(reason) = state_reason(instance, shown) {
        w.el("stateReason", |w| {
            w.field("code", &reason.code);
            w.field("message", &reason.message);
        });
    }
    w.field("architecture", "x86_64");
    w.field("rootDeviceType", "ebs");
    w.field("rootDeviceName", root_device_name(instance));
    render_block_devices(w, instance, volumes);
    w.field("virtualizationType", "hvm");
    w.field(
        "clientToken",
        spec.client_token.as_deref().unwrap_or_default(),
    );
    render_tags(w, &spec.tags);
    w.field("hypervisor", "xen");
    render_network_interfaces(w, instance, shown, eip);
    if let Some(profile) = live_profile(instance) {
        render_profile(w, profile);
    }
    w.field("ebsOptimized", spec.options.ebs_optimized);
    w.field("enaSupport", true);
    w.field("bootMode", "legacy-bios");
    w.field("platformDetails", "Linux/UNIX");
    w.field("usageOperation", "RunInstances");
    w.field(
        "usageOperationUpdateTime",
        format_timestamp(instance.metadata.creation_timestamp),
    );
    render_option_blocks(w, instance);
    w.field("currentInstanceBootMode", "legacy-bios");
}

/// EC2's architecture word for the AMI's Docker architecture (`amd64`, `arm64`).
pub fn image_architecture(image: &Image) -> &'static str {
    match image.status.architecture.as_deref() {
        Some("arm64") | Some("aarch64") => "arm64",
        _ => "x86_64",
    }
}

/// One `DescribeImagesResponseItemType`, in the order EC2 writes its members.
pub fn render_image(w: &mut XmlWriter, ami: &Ami) {
    let state = ami.state();
    w.field("imageId", ami.id());
    w.field("imageLocation", ami.location());
    w.field("imageState", state.name());
    w.field("imageOwnerId", ami.owner_id());
    w.field("creationDate", ami.creation_date());
    w.field("isPublic", ami.is_public());
    w.field("architecture", ami.architecture());
    w.field("imageType", "machine");
    w.opt_field("platform", ami.platform());
    w.opt_field("imageOwnerAlias", ami.owner_alias());
    w.field("name", ami.name());
    w.opt_field("description", ami.description());
    w.field("rootDeviceType", "ebs");
    w.field("rootDeviceName", ami.root_device_name());
    let devices = ami.block_devices();
    if devices.is_empty() {
        w.empty("blockDeviceMapping");
    } else {
        w.set("blockDeviceMapping", &devices, render_image_block_device);
    }
    w.field("virtualizationType", "hvm");
    render_tags(w, ami.tags());
    w.field("hypervisor", "xen");
    w.field("enaSupport", true);
    if !ami.is_own() {
        w.field("sriovNetSupport", "simple");
    }
    w.opt_field("bootMode", ami.boot_mode());
    w.field("platformDetails", ami.platform_details());
    w.field("usageOperation", ami.usage_operation());
    w.opt_field("deprecationTime", ami.deprecation_time());
    w.opt_field("imdsSupport", ami.imds_support());
    w.opt_field("sourceInstanceId", ami.source_instance_id());
    if let Some((image_id, region)) = ami.copied_from() {
        w.field("sourceImageId", image_id);
        w.field("sourceImageRegion", region);
    }
    if state == ImageState::Failed {
        if let Some(reason) = ami.state_reason() {
            w.el("stateReason", |w| {
                w.field("code", &reason.code);
                w.field("message", &reason.message);
            });
        }
    }
}

/// One `BlockDeviceMapping` item of an AMI: the device and the EBS volume a launch makes.
pub fn render_image_block_device(w: &mut XmlWriter, device: &ImageBlockDevice) {
    w.field("deviceName", &device.device_name);
    w.el("ebs", |w| {
        w.field("deleteOnTermination", device.delete_on_termination);
        w.opt_field("snapshotId", device.snapshot_id.as_deref());
        w.field("volumeSize", device.volume_size_gib);
        w.field("volumeType", &device.volume_type);
        w.field("encrypted", device.encrypted);
        // gp3's baseline when none was provisioned, as EC2 reports it for gp3 devices.
        let gp3 = device.volume_type == "gp3";
        w.opt_field("iops", device.iops.or(gp3.then_some(3000)));
        w.opt_field("throughput", device.throughput.or(gp3.then_some(125)));
    });
}

/// `<return>true</return>`: the whole answer of actions that only succeed or fail.
pub fn render_return_true() -> String {
    let mut w = XmlWriter::new();
    w.field("return", true);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, ContainerObservation};

    fn xml(instance: &Instance) -> String {
        let mut w = XmlWriter::new();
        render_instance(&mut w, instance, None, &[]);
        w.finish()
    }

    #[test]
    fn pending_instance_without_container() {
        let inst = fixtures::instance();
        let doc = xml(&inst);
        assert!(doc.contains("<instanceState><code>0</code><name>pending</name></instanceState>"));
        assert!(doc.contains("<privateDnsName></privateDnsName>"));
        assert!(!doc.contains("privateIpAddress"));
        assert!(!doc.contains("stateReason"));
        assert!(!doc.contains("tagSet"), "no tags, no tagSet");
        assert!(!doc.contains("instanceLifecycle"));
        assert!(doc.contains("<reason></reason>"));
    }

    #[test]
    fn running_instance_shows_container_address() {
        let mut inst = fixtures::instance();
        inst.status.observed_generation = 1;
        inst.status.state = Some(InstanceState::Running);
        inst.status.container = Some(ContainerObservation {
            id: "c".into(),
            state: "running".into(),
            ip_address: Some("172.17.0.2".into()),
            ports: Vec::new(),
        });
        let doc = xml(&inst);
        assert!(doc.contains("<name>running</name>"));
        assert!(doc.contains("<privateDnsName>ip-172-17-0-2.ec2.internal</privateDnsName>"));
        assert!(doc.contains("<privateIpAddress>172.17.0.2</privateIpAddress>"));
        assert!(doc.contains("<ipAddress>172.17.0.2</ipAddress>"));
    }

    #[test]
    fn user_stop_reads_stopping_with_user_reason() {
        let mut inst = fixtures::instance();
        inst.status.observed_generation = 1;
        inst.status.state = Some(InstanceState::Running);
        inst.metadata.generation = 2;
        inst.spec.desired = DesiredState::Stopped;
        let at = time::macros::datetime!(2025-07-11 03:24:24.5 UTC);
        inst.spec.user_transition_at = Some(at);
        let doc = xml(&inst);
        assert!(doc.contains("<name>stopping</name>"));
        assert!(doc.contains("<reason>User initiated (2025-07-11 03:24:24 GMT)</reason>"));
        assert!(doc.contains(
            "<stateReason><code>Client.UserInitiatedShutdown</code><message>Client.UserInitiatedShutdown: User initiated shutdown</message></stateReason>"
        ));
    }

    #[test]
    fn stale_reasons_are_not_shown_after_a_restart() {
        let mut inst = fixtures::instance();
        inst.metadata.generation = 3;
        inst.status.observed_generation = 2;
        inst.status.state = Some(InstanceState::Stopped);
        inst.status.state_reason = Some(StateReason::new(
            "Client.InstanceInitiatedShutdown",
            "Instance initiated shutdown",
        ));
        assert_eq!(shown_state(&inst), InstanceState::Pending);
        assert!(!xml(&inst).contains("stateReason"));
        // A failed boot ends terminated: its reason stays whatever was asked since.
        inst.status.state = Some(InstanceState::Terminated);
        inst.status.state_reason = Some(StateReason::internal_error("image vanished"));
        inst.spec.desired = DesiredState::Terminated;
        inst.spec.user_transition_at = Some(crate::model::now());
        assert!(xml(&inst).contains("<code>Server.InternalError</code>"));
    }

    #[test]
    fn vpc_instance_shows_key_subnet_groups_and_its_interface() {
        let mut inst = fixtures::instance();
        assert!(
            !xml(&inst).contains("networkInterfaceSet"),
            "no subnet, no interface"
        );
        assert!(xml(&inst).contains("<groupSet></groupSet>"));
        inst.spec.key_name = Some("alice".into());
        inst.spec.subnet_id = Some("subnet-1".into());
        inst.spec.vpc_id = Some("vpc-1".into());
        inst.spec.client_token = Some("tok".into());
        inst.spec.security_groups = vec![GroupRef {
            group_id: "sg-1".into(),
            group_name: "web".into(),
        }];
        let doc = xml(&inst);
        assert!(doc.contains("<reason></reason><keyName>alice</keyName><amiLaunchIndex>"));
        assert!(doc.contains("<subnetId>subnet-1</subnetId><vpcId>vpc-1</vpcId>"));
        assert!(doc.contains(
            "<groupSet><item><groupId>sg-1</groupId><groupName>web</groupName></item></groupSet>"
        ));
        assert!(doc.contains("<clientToken>tok</clientToken>"));
        let eni = derived_id("eni", &inst.metadata.name);
        assert!(doc.contains(&format!(
            "<networkInterfaceSet><item><networkInterfaceId>{eni}</networkInterfaceId><subnetId>subnet-1</subnetId>"
        )));
        assert_eq!(eni, derived_id("eni", &inst.metadata.name), "stable");
        assert!(
            !doc.contains("privateIpAddressesSet><item>"),
            "no address yet"
        );
        // Once running, the interface carries the address; once terminated, it is gone.
        inst.status.observed_generation = 1;
        inst.status.state = Some(InstanceState::Running);
        inst.status.container = Some(ContainerObservation {
            id: "c".into(),
            state: "running".into(),
            ip_address: Some("172.17.0.9".into()),
            ports: Vec::new(),
        });
        assert!(xml(&inst).contains(
            "<privateIpAddressesSet><item><privateIpAddress>172.17.0.9</privateIpAddress>"
        ));
        inst.status.state = Some(InstanceState::Terminated);
        assert!(xml(&inst).contains("<networkInterfaceSet/>"));
        assert!(derived_mac(&inst.metadata.name).starts_with("02:"));
    }

    #[test]
    fn dns_names_follow_the_region() {
        assert_eq!(
            private_dns_name("10.0.0.1", "eu-west-1"),
            "ip-10-0-0-1.eu-west-1.compute.internal"
        );
        assert_eq!(private_dns_name("not-an-ip", "us-east-1"), "");
    }

    #[test]
    fn image_architecture_mapping() {
        let inst = fixtures::instance();
        let mut image = fixtures::committed_image(
            &crate::model::InstanceId::parse(&inst.metadata.name).unwrap(),
            "x",
        );
        assert_eq!(image_architecture(&image), "x86_64");
        image.status.architecture = Some("arm64".into());
        assert_eq!(image_architecture(&image), "arm64");
        image.status.architecture = Some("amd64".into());
        assert_eq!(image_architecture(&image), "x86_64");
    }
}
