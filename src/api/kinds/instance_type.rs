//! The instance type kind: the built-in catalogue (`model::instance_types`), derived, never stored.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::kind::{IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::instance_types::{self, InstanceTypeInfo, INSTANCE_TYPES};

/// Instance types.
pub struct InstanceTypeKind;

/// The `InvalidInstanceType` error EC2 answers for types it does not know:
/// `The following supplied instance types do not exist: [x, y]`.
pub fn unknown_types<S: AsRef<str>>(names: &[S]) -> ApiError {
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    ApiError::client(
        "InvalidInstanceType",
        format!(
            "The following supplied instance types do not exist: [{}]",
            names.join(", ")
        ),
    )
}

/// The catalogue's type called `name`, or RunInstances' and ModifyInstanceAttribute's
/// `InvalidParameterValue` (`Invalid value 'x' for InstanceType.`).
pub fn known_type(name: &str) -> Result<&'static InstanceTypeInfo, ApiError> {
    instance_types::find(name)
        .ok_or_else(|| ApiError::invalid_value(format!("Invalid value '{name}' for InstanceType.")))
}

fn list(w: &mut XmlWriter, name: &str, values: &[&str]) {
    w.el(name, |w| {
        for value in values {
            w.field("item", value);
        }
    });
}

impl Kind for InstanceTypeKind {
    type Item = &'static InstanceTypeInfo;
    type Ref = String;
    type Context = ();
    type Cursor = String;

    const IDS: IdRules = IdRules {
        noun: "instance type",
        prefix: "",
        malformed: "InvalidInstanceType",
        not_found: "InvalidInstanceType",
    };
    const TAG_TYPE: Option<&'static str> = None;
    const FILTERS: &'static [&'static str] = &[
        "auto-recovery-supported",
        "bare-metal",
        "burstable-performance-supported",
        "current-generation",
        "dedicated-hosts-supported",
        "ebs-info.ebs-optimized-support",
        "ebs-info.encryption-support",
        "ebs-info.nvme-support",
        "free-tier-eligible",
        "hibernation-supported",
        "hypervisor",
        "instance-storage-supported",
        "instance-type",
        "memory-info.size-in-mib",
        "network-info.ena-support",
        "network-info.ipv4-addresses-per-interface",
        "network-info.ipv6-supported",
        "network-info.maximum-network-interfaces",
        "network-info.network-performance",
        "processor-info.supported-architecture",
        "processor-info.sustained-clock-speed-in-ghz",
        "supported-boot-mode",
        "supported-root-device-type",
        "supported-usage-class",
        "supported-virtualization-type",
        "vcpu-info.default-cores",
        "vcpu-info.default-threads-per-core",
        "vcpu-info.default-vcpus",
    ];
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const MAX_PAGE: i64 = 100;
    const SET: &'static str = "instanceTypeSet";

    fn id(item: &Self::Item) -> &str {
        item.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        Ok(params
            .list("InstanceType")
            .into_iter()
            .map(str::to_string)
            .collect())
    }

    fn find(
        _state: &ApiState,
        _region: &str,
        name: &String,
    ) -> Result<Option<Self::Item>, ApiError> {
        Ok(instance_types::find(name))
    }

    fn list(_state: &ApiState, _region: &str) -> Result<Vec<Self::Item>, ApiError> {
        Ok(INSTANCE_TYPES.iter().collect())
    }

    fn not_found(_region: &str, missing: &[String]) -> ApiError {
        unknown_types(missing)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(_item: &Self::Item) -> Option<&BTreeMap<String, String>> {
        None
    }

    fn values(name: &str, t: &Self::Item, _context: &()) -> Vec<String> {
        let f = t.family;
        let one = |s: &dyn ToString| vec![s.to_string()];
        let many = |list: &[&str]| list.iter().map(ToString::to_string).collect();
        match name {
            "auto-recovery-supported" => one(&f.auto_recovery),
            "bare-metal" => one(&false),
            "burstable-performance-supported" => one(&f.burstable),
            "current-generation" => one(&f.current_generation),
            "dedicated-hosts-supported" => one(&f.dedicated_hosts),
            "ebs-info.ebs-optimized-support" => one(&f.ebs_optimized),
            "ebs-info.encryption-support" => one(&f.ebs_encryption),
            "ebs-info.nvme-support" => one(&f.nvme),
            "free-tier-eligible" => one(&t.free_tier_eligible()),
            "hibernation-supported" => one(&f.hibernation),
            "hypervisor" => one(&f.hypervisor),
            "instance-storage-supported" => one(&f.instance_storage_gb.is_some()),
            "instance-type" => one(&t.name),
            "memory-info.size-in-mib" => one(&t.memory_mib),
            "network-info.ena-support" => one(&f.ena),
            "network-info.ipv4-addresses-per-interface" => one(&t.ipv4_per_interface),
            "network-info.ipv6-supported" => one(&f.ipv6),
            "network-info.maximum-network-interfaces" => one(&t.max_interfaces),
            "network-info.network-performance" => one(&t.network),
            "processor-info.supported-architecture" => many(f.architectures),
            "processor-info.sustained-clock-speed-in-ghz" => {
                f.clock_ghz.iter().map(ToString::to_string).collect()
            }
            "supported-boot-mode" => many(f.boot_modes),
            "supported-root-device-type" => many(f.root_device_types),
            "supported-usage-class" => many(t.usage_classes()),
            "supported-virtualization-type" => many(f.virtualization_types),
            "vcpu-info.default-cores" => one(&t.cores),
            "vcpu-info.default-threads-per-core" => one(&t.threads_per_core()),
            "vcpu-info.default-vcpus" => one(&t.vcpus),
            _ => Vec::new(),
        }
    }

    fn sort(items: &mut [Self::Item]) {
        items.sort_by_key(|t| t.name);
    }

    fn cursor(item: &Self::Item) -> String {
        item.name.to_string()
    }

    fn parse_cursor(text: &str) -> Option<String> {
        instance_types::find(text).map(|t| t.name.to_string())
    }

    fn after(item: &Self::Item, cursor: &String) -> bool {
        item.name > cursor.as_str()
    }

    fn render(w: &mut XmlWriter, t: &Self::Item) {
        let f = t.family;
        w.field("instanceType", t.name);
        w.field("currentGeneration", f.current_generation);
        w.field("freeTierEligible", t.free_tier_eligible());
        list(w, "supportedUsageClasses", t.usage_classes());
        list(w, "supportedRootDeviceTypes", f.root_device_types);
        list(w, "supportedVirtualizationTypes", f.virtualization_types);
        w.field("bareMetal", false);
        w.field("hypervisor", f.hypervisor);
        w.el("processorInfo", |w| {
            list(w, "supportedArchitectures", f.architectures);
            w.opt_field("sustainedClockSpeedInGhz", f.clock_ghz);
            w.field("manufacturer", f.manufacturer);
        });
        w.el("vCpuInfo", |w| {
            w.field("defaultVCpus", t.vcpus);
            w.field("defaultCores", t.cores);
            w.field("defaultThreadsPerCore", t.threads_per_core());
        });
        w.el("memoryInfo", |w| w.field("sizeInMiB", t.memory_mib));
        w.field("instanceStorageSupported", f.instance_storage_gb.is_some());
        if let Some(gb) = f.instance_storage_gb {
            w.el("instanceStorageInfo", |w| w.field("totalSizeInGB", gb));
        }
        w.el("ebsInfo", |w| {
            w.field("ebsOptimizedSupport", f.ebs_optimized);
            w.field("encryptionSupport", f.ebs_encryption);
            w.field("nvmeSupport", f.nvme);
        });
        w.el("networkInfo", |w| {
            w.field("networkPerformance", t.network);
            w.field("maximumNetworkInterfaces", t.max_interfaces);
            w.field("maximumNetworkCards", 1);
            w.field("defaultNetworkCardIndex", 0);
            w.field("ipv4AddressesPerInterface", t.ipv4_per_interface);
            w.field(
                "ipv6AddressesPerInterface",
                if f.ipv6 { t.ipv4_per_interface } else { 0 },
            );
            w.field("ipv6Supported", f.ipv6);
            w.field("enaSupport", f.ena);
            w.field("efaSupported", false);
        });
        w.el("placementGroupInfo", |w| {
            list(w, "supportedStrategies", f.placement_strategies);
        });
        w.field("hibernationSupported", f.hibernation);
        w.field("burstablePerformanceSupported", f.burstable);
        w.field("dedicatedHostsSupported", f.dedicated_hosts);
        w.field("autoRecoverySupported", f.auto_recovery);
        list(w, "supportedBootModes", f.boot_modes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::Describe;

    #[test]
    fn unknown_types_are_worded_as_ec2() {
        let e = unknown_types(&["x1.nope"]);
        assert_eq!(e.code, "InvalidInstanceType");
        assert_eq!(
            e.message,
            "The following supplied instance types do not exist: [x1.nope]"
        );
        assert_eq!(
            unknown_types(&["a.b", "c.d"]).message,
            "The following supplied instance types do not exist: [a.b, c.d]"
        );
        let e = known_type("t3.mega").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(e.message, "Invalid value 't3.mega' for InstanceType.");
        assert!(known_type("t3.micro").is_ok());
    }

    #[test]
    fn every_filter_has_values_and_pages_stop_at_100() {
        let t = instance_types::find("t3.micro").unwrap();
        for name in InstanceTypeKind::FILTERS {
            assert!(
                !InstanceTypeKind::values(name, &t, &()).is_empty(),
                "{name} answered"
            );
        }
        let q = QueryParams::from_query("MaxResults=101");
        let e = Describe::<InstanceTypeKind>::parse(&q).err().unwrap();
        assert_eq!(
            e.message,
            "Value ( 101 ) for parameter maxResults is invalid. Expecting a value between 5 and 100."
        );
        let q = QueryParams::from_query("NextToken=Zm9v");
        let e = Describe::<InstanceTypeKind>::parse(&q).err().unwrap();
        assert_eq!(e.code, "InvalidNextToken");
    }
}
