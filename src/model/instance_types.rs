//! The built-in catalogue of EC2 instance types, with AWS's published figures: what
//! DescribeInstanceTypes lists and the types RunInstances and ModifyInstanceAttribute accept.
//!
//! A row per size (vCPUs, cores, memory, network) and a [`Family`] per family for what all its
//! sizes share (processor, hypervisor, storage and network features).

/// What every size of a family shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    /// `supportedArchitectures`: `x86_64`, `arm64`, and `i386` for the oldest types.
    pub architectures: &'static [&'static str],
    /// `processorInfo.manufacturer`: `Intel`, `AMD` or `AWS`.
    pub manufacturer: &'static str,
    /// `sustainedClockSpeedInGhz`, when AWS publishes one.
    pub clock_ghz: Option<f64>,
    /// `xen` or `nitro`.
    pub hypervisor: &'static str,
    /// The T types: CPU credits.
    pub burstable: bool,
    /// Whether it is a current-generation type.
    pub current_generation: bool,
    /// `supportedVirtualizationTypes`.
    pub virtualization_types: &'static [&'static str],
    /// `supportedRootDeviceTypes`.
    pub root_device_types: &'static [&'static str],
    /// `supportedBootModes`.
    pub boot_modes: &'static [&'static str],
    /// Local instance store, in GB (`None`: EBS only).
    pub instance_storage_gb: Option<u32>,
    /// `ebsOptimizedSupport`: `unsupported`, `supported` or `default`.
    pub ebs_optimized: &'static str,
    /// `ebsInfo.encryptionSupport`.
    pub ebs_encryption: &'static str,
    /// `ebsInfo.nvmeSupport`: `unsupported` on Xen, `required` on Nitro.
    pub nvme: &'static str,
    /// `enaSupport`.
    pub ena: &'static str,
    /// `ipv6Supported`.
    pub ipv6: bool,
    /// `placementGroupInfo.supportedStrategies`.
    pub placement_strategies: &'static [&'static str],
    /// `hibernationSupported`.
    pub hibernation: bool,
    /// `dedicatedHostsSupported`.
    pub dedicated_hosts: bool,
    /// `autoRecoverySupported`.
    pub auto_recovery: bool,
}

/// One instance type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstanceTypeInfo {
    /// `t3.micro`.
    pub name: &'static str,
    /// What it shares with its family.
    pub family: &'static Family,
    /// `defaultVCpus`.
    pub vcpus: u32,
    /// `defaultCores` (`defaultThreadsPerCore` is vCPUs over cores).
    pub cores: u32,
    /// `memoryInfo.sizeInMiB`.
    pub memory_mib: u64,
    /// `networkPerformance`, as AWS words it (`Up to 5 Gigabit`).
    pub network: &'static str,
    /// `maximumNetworkInterfaces`.
    pub max_interfaces: u32,
    /// `ipv4AddressesPerInterface` (and, where IPv6 is supported, IPv6 addresses too).
    pub ipv4_per_interface: u32,
}

impl InstanceTypeInfo {
    /// `defaultThreadsPerCore`.
    pub fn threads_per_core(&self) -> u32 {
        self.vcpus / self.cores
    }

    /// Free-tier eligible: t2.micro and t3.micro.
    pub fn free_tier_eligible(&self) -> bool {
        matches!(self.name, "t2.micro" | "t3.micro")
    }

    /// `supportedUsageClasses`: every type in the catalogue is sold on demand and as spot.
    pub fn usage_classes(&self) -> &'static [&'static str] {
        &["on-demand", "spot"]
    }
}

const X86: &[&str] = &["x86_64"];
const X86_I386: &[&str] = &["i386", "x86_64"];
const ARM: &[&str] = &["arm64"];
const HVM: &[&str] = &["hvm"];
const EBS: &[&str] = &["ebs"];
const BIOS: &[&str] = &["legacy-bios"];
const BIOS_UEFI: &[&str] = &["legacy-bios", "uefi"];
const UEFI: &[&str] = &["uefi"];
const SPREAD: &[&str] = &["partition", "spread"];
const ALL_STRATEGIES: &[&str] = &["cluster", "partition", "spread"];

/// Who makes a Nitro family's processor.
#[derive(Clone, Copy)]
enum Cpu {
    Intel,
    Amd,
    /// AWS Graviton: arm64, UEFI only.
    Graviton,
}

/// A Nitro family: EBS only, ENA and NVMe required, EBS-optimized by default.
const fn nitro(
    cpu: Cpu,
    clock_ghz: f64,
    burstable: bool,
    hibernation: bool,
    dedicated_hosts: bool,
) -> Family {
    let (architectures, manufacturer, boot_modes) = match cpu {
        Cpu::Intel => (X86, "Intel", BIOS_UEFI),
        Cpu::Amd => (X86, "AMD", BIOS_UEFI),
        Cpu::Graviton => (ARM, "AWS", UEFI),
    };
    Family {
        architectures,
        manufacturer,
        clock_ghz: Some(clock_ghz),
        hypervisor: "nitro",
        burstable,
        current_generation: true,
        virtualization_types: HVM,
        root_device_types: EBS,
        boot_modes,
        instance_storage_gb: None,
        ebs_optimized: "default",
        ebs_encryption: "supported",
        nvme: "required",
        ena: "required",
        ipv6: true,
        placement_strategies: if burstable { SPREAD } else { ALL_STRATEGIES },
        hibernation,
        dedicated_hosts,
        auto_recovery: true,
    }
}

/// T2: Xen, Intel, burstable.
const T2: Family = Family {
    architectures: X86,
    manufacturer: "Intel",
    clock_ghz: Some(2.5),
    hypervisor: "xen",
    burstable: true,
    current_generation: true,
    virtualization_types: HVM,
    root_device_types: EBS,
    boot_modes: BIOS,
    instance_storage_gb: None,
    ebs_optimized: "unsupported",
    ebs_encryption: "supported",
    nvme: "unsupported",
    ena: "unsupported",
    ipv6: true,
    placement_strategies: SPREAD,
    hibernation: true,
    dedicated_hosts: false,
    auto_recovery: true,
};
/// T2's smaller sizes also run 32-bit AMIs.
const T2_I386: Family = Family {
    architectures: X86_I386,
    ..T2
};
/// M1: the first generation (previous generation), Xen, instance store, paravirtual too.
const M1: Family = Family {
    architectures: X86_I386,
    manufacturer: "Intel",
    clock_ghz: None,
    hypervisor: "xen",
    burstable: false,
    current_generation: false,
    virtualization_types: &["hvm", "paravirtual"],
    root_device_types: &["ebs", "instance-store"],
    boot_modes: BIOS,
    instance_storage_gb: Some(160),
    ebs_optimized: "unsupported",
    ebs_encryption: "unsupported",
    nvme: "unsupported",
    ena: "unsupported",
    ipv6: false,
    placement_strategies: SPREAD,
    hibernation: false,
    dedicated_hosts: false,
    auto_recovery: false,
};
const T3: Family = nitro(Cpu::Intel, 2.5, true, true, true);
const T3A: Family = nitro(Cpu::Amd, 2.2, true, true, false);
const T4G: Family = nitro(Cpu::Graviton, 2.5, true, false, false);
const M5: Family = nitro(Cpu::Intel, 3.1, false, true, true);
const M6I: Family = nitro(Cpu::Intel, 3.5, false, true, true);
const M6G: Family = nitro(Cpu::Graviton, 2.5, false, false, true);
const M7I: Family = nitro(Cpu::Intel, 3.2, false, true, true);
const M7G: Family = nitro(Cpu::Graviton, 2.6, false, false, true);
const C5: Family = nitro(Cpu::Intel, 3.4, false, true, true);
const C6I: Family = nitro(Cpu::Intel, 3.5, false, true, true);
const C7G: Family = nitro(Cpu::Graviton, 2.6, false, false, true);
const R5: Family = nitro(Cpu::Intel, 3.1, false, true, true);
const R6I: Family = nitro(Cpu::Intel, 3.5, false, true, true);

/// One row: name, family, vCPUs, cores, memory MiB, network performance, interfaces, IPv4
/// addresses per interface.
#[allow(clippy::too_many_arguments)] // one row of the table, in its columns' order
const fn t(
    name: &'static str,
    family: &'static Family,
    vcpus: u32,
    cores: u32,
    memory_mib: u64,
    network: &'static str,
    max_interfaces: u32,
    ipv4_per_interface: u32,
) -> InstanceTypeInfo {
    InstanceTypeInfo {
        name,
        family,
        vcpus,
        cores,
        memory_mib,
        network,
        max_interfaces,
        ipv4_per_interface,
    }
}

const UP_5: &str = "Up to 5 Gigabit";
const UP_10: &str = "Up to 10 Gigabit";
const UP_12: &str = "Up to 12.5 Gigabit";
const UP_15: &str = "Up to 15 Gigabit";
const LOW_MOD: &str = "Low to Moderate";

/// Every type ec2d knows, sorted by name.
pub const INSTANCE_TYPES: &[InstanceTypeInfo] = &[
    t("c5.12xlarge", &C5, 48, 24, 98304, "12 Gigabit", 8, 30),
    t("c5.18xlarge", &C5, 72, 36, 147456, "25 Gigabit", 15, 50),
    t("c5.24xlarge", &C5, 96, 48, 196608, "25 Gigabit", 15, 50),
    t("c5.2xlarge", &C5, 8, 4, 16384, UP_10, 4, 15),
    t("c5.4xlarge", &C5, 16, 8, 32768, UP_10, 8, 30),
    t("c5.9xlarge", &C5, 36, 18, 73728, "10 Gigabit", 8, 30),
    t("c5.large", &C5, 2, 1, 4096, UP_10, 3, 10),
    t("c5.xlarge", &C5, 4, 2, 8192, UP_10, 4, 15),
    t("c6i.12xlarge", &C6I, 48, 24, 98304, "18.75 Gigabit", 8, 30),
    t("c6i.16xlarge", &C6I, 64, 32, 131072, "25 Gigabit", 15, 50),
    t("c6i.24xlarge", &C6I, 96, 48, 196608, "37.5 Gigabit", 15, 50),
    t("c6i.2xlarge", &C6I, 8, 4, 16384, UP_12, 4, 15),
    t("c6i.32xlarge", &C6I, 128, 64, 262144, "50 Gigabit", 15, 50),
    t("c6i.4xlarge", &C6I, 16, 8, 32768, UP_12, 8, 30),
    t("c6i.8xlarge", &C6I, 32, 16, 65536, "12.5 Gigabit", 8, 30),
    t("c6i.large", &C6I, 2, 1, 4096, UP_12, 3, 10),
    t("c6i.xlarge", &C6I, 4, 2, 8192, UP_12, 4, 15),
    t("c7g.12xlarge", &C7G, 48, 48, 98304, "22.5 Gigabit", 8, 30),
    t("c7g.16xlarge", &C7G, 64, 64, 131072, "30 Gigabit", 15, 50),
    t("c7g.2xlarge", &C7G, 8, 8, 16384, UP_15, 4, 15),
    t("c7g.4xlarge", &C7G, 16, 16, 32768, UP_15, 8, 30),
    t("c7g.8xlarge", &C7G, 32, 32, 65536, "15 Gigabit", 8, 30),
    t("c7g.large", &C7G, 2, 2, 4096, UP_12, 3, 10),
    t("c7g.medium", &C7G, 1, 1, 2048, UP_12, 2, 4),
    t("c7g.xlarge", &C7G, 4, 4, 8192, UP_12, 4, 15),
    t("m1.small", &M1, 1, 1, 1740, "Low", 2, 4),
    t("m5.12xlarge", &M5, 48, 24, 196608, "10 Gigabit", 8, 30),
    t("m5.16xlarge", &M5, 64, 32, 262144, "20 Gigabit", 15, 50),
    t("m5.24xlarge", &M5, 96, 48, 393216, "25 Gigabit", 15, 50),
    t("m5.2xlarge", &M5, 8, 4, 32768, UP_10, 4, 15),
    t("m5.4xlarge", &M5, 16, 8, 65536, UP_10, 8, 30),
    t("m5.8xlarge", &M5, 32, 16, 131072, "10 Gigabit", 8, 30),
    t("m5.large", &M5, 2, 1, 8192, UP_10, 3, 10),
    t("m5.xlarge", &M5, 4, 2, 16384, UP_10, 4, 15),
    t("m6g.12xlarge", &M6G, 48, 48, 196608, "20 Gigabit", 8, 30),
    t("m6g.16xlarge", &M6G, 64, 64, 262144, "25 Gigabit", 15, 50),
    t("m6g.2xlarge", &M6G, 8, 8, 32768, UP_10, 4, 15),
    t("m6g.4xlarge", &M6G, 16, 16, 65536, UP_10, 8, 30),
    t("m6g.8xlarge", &M6G, 32, 32, 131072, "12 Gigabit", 8, 30),
    t("m6g.large", &M6G, 2, 2, 8192, UP_10, 3, 10),
    t("m6g.medium", &M6G, 1, 1, 4096, UP_10, 2, 4),
    t("m6g.xlarge", &M6G, 4, 4, 16384, UP_10, 4, 15),
    t("m6i.12xlarge", &M6I, 48, 24, 196608, "18.75 Gigabit", 8, 30),
    t("m6i.16xlarge", &M6I, 64, 32, 262144, "25 Gigabit", 15, 50),
    t("m6i.24xlarge", &M6I, 96, 48, 393216, "37.5 Gigabit", 15, 50),
    t("m6i.2xlarge", &M6I, 8, 4, 32768, UP_12, 4, 15),
    t("m6i.32xlarge", &M6I, 128, 64, 524288, "50 Gigabit", 15, 50),
    t("m6i.4xlarge", &M6I, 16, 8, 65536, UP_12, 8, 30),
    t("m6i.8xlarge", &M6I, 32, 16, 131072, "12.5 Gigabit", 8, 30),
    t("m6i.large", &M6I, 2, 1, 8192, UP_12, 3, 10),
    t("m6i.xlarge", &M6I, 4, 2, 16384, UP_12, 4, 15),
    t("m7g.12xlarge", &M7G, 48, 48, 196608, "22.5 Gigabit", 8, 30),
    t("m7g.16xlarge", &M7G, 64, 64, 262144, "30 Gigabit", 15, 50),
    t("m7g.2xlarge", &M7G, 8, 8, 32768, UP_15, 4, 15),
    t("m7g.4xlarge", &M7G, 16, 16, 65536, UP_15, 8, 30),
    t("m7g.8xlarge", &M7G, 32, 32, 131072, "15 Gigabit", 8, 30),
    t("m7g.large", &M7G, 2, 2, 8192, UP_12, 3, 10),
    t("m7g.medium", &M7G, 1, 1, 4096, UP_12, 2, 4),
    t("m7g.xlarge", &M7G, 4, 4, 16384, UP_12, 4, 15),
    t("m7i.12xlarge", &M7I, 48, 24, 196608, "18.75 Gigabit", 8, 30),
    t("m7i.16xlarge", &M7I, 64, 32, 262144, "25 Gigabit", 15, 50),
    t("m7i.24xlarge", &M7I, 96, 48, 393216, "37.5 Gigabit", 15, 50),
    t("m7i.2xlarge", &M7I, 8, 4, 32768, UP_12, 4, 15),
    t("m7i.48xlarge", &M7I, 192, 96, 786432, "50 Gigabit", 15, 50),
    t("m7i.4xlarge", &M7I, 16, 8, 65536, UP_12, 8, 30),
    t("m7i.8xlarge", &M7I, 32, 16, 131072, "12.5 Gigabit", 8, 30),
    t("m7i.large", &M7I, 2, 1, 8192, UP_12, 3, 10),
    t("m7i.xlarge", &M7I, 4, 2, 16384, UP_12, 4, 15),
    t("r5.12xlarge", &R5, 48, 24, 393216, "10 Gigabit", 8, 30),
    t("r5.16xlarge", &R5, 64, 32, 524288, "20 Gigabit", 15, 50),
    t("r5.24xlarge", &R5, 96, 48, 786432, "25 Gigabit", 15, 50),
    t("r5.2xlarge", &R5, 8, 4, 65536, UP_10, 4, 15),
    t("r5.4xlarge", &R5, 16, 8, 131072, UP_10, 8, 30),
    t("r5.8xlarge", &R5, 32, 16, 262144, "10 Gigabit", 8, 30),
    t("r5.large", &R5, 2, 1, 16384, UP_10, 3, 10),
    t("r5.xlarge", &R5, 4, 2, 32768, UP_10, 4, 15),
    t("r6i.12xlarge", &R6I, 48, 24, 393216, "18.75 Gigabit", 8, 30),
    t("r6i.16xlarge", &R6I, 64, 32, 524288, "25 Gigabit", 15, 50),
    t("r6i.24xlarge", &R6I, 96, 48, 786432, "37.5 Gigabit", 15, 50),
    t("r6i.2xlarge", &R6I, 8, 4, 65536, UP_12, 4, 15),
    t("r6i.32xlarge", &R6I, 128, 64, 1048576, "50 Gigabit", 15, 50),
    t("r6i.4xlarge", &R6I, 16, 8, 131072, UP_12, 8, 30),
    t("r6i.8xlarge", &R6I, 32, 16, 262144, "12.5 Gigabit", 8, 30),
    t("r6i.large", &R6I, 2, 1, 16384, UP_12, 3, 10),
    t("r6i.xlarge", &R6I, 4, 2, 32768, UP_12, 4, 15),
    t("t2.2xlarge", &T2, 8, 8, 32768, "Moderate", 3, 15),
    t("t2.large", &T2, 2, 2, 8192, LOW_MOD, 3, 12),
    t("t2.medium", &T2_I386, 2, 2, 4096, LOW_MOD, 3, 6),
    t("t2.micro", &T2_I386, 1, 1, 1024, LOW_MOD, 2, 2),
    t("t2.nano", &T2_I386, 1, 1, 512, LOW_MOD, 2, 2),
    t("t2.small", &T2_I386, 1, 1, 2048, LOW_MOD, 3, 4),
    t("t2.xlarge", &T2, 4, 4, 16384, "Moderate", 3, 15),
    t("t3.2xlarge", &T3, 8, 4, 32768, UP_5, 4, 15),
    t("t3.large", &T3, 2, 1, 8192, UP_5, 3, 12),
    t("t3.medium", &T3, 2, 1, 4096, UP_5, 3, 6),
    t("t3.micro", &T3, 2, 1, 1024, UP_5, 2, 2),
    t("t3.nano", &T3, 2, 1, 512, UP_5, 2, 2),
    t("t3.small", &T3, 2, 1, 2048, UP_5, 3, 4),
    t("t3.xlarge", &T3, 4, 2, 16384, UP_5, 4, 15),
    t("t3a.2xlarge", &T3A, 8, 4, 32768, UP_5, 4, 15),
    t("t3a.large", &T3A, 2, 1, 8192, UP_5, 3, 12),
    t("t3a.medium", &T3A, 2, 1, 4096, UP_5, 3, 6),
    t("t3a.micro", &T3A, 2, 1, 1024, UP_5, 2, 2),
    t("t3a.nano", &T3A, 2, 1, 512, UP_5, 2, 2),
    t("t3a.small", &T3A, 2, 1, 2048, UP_5, 2, 4),
    t("t3a.xlarge", &T3A, 4, 2, 16384, UP_5, 4, 15),
    t("t4g.2xlarge", &T4G, 8, 8, 32768, UP_5, 4, 15),
    t("t4g.large", &T4G, 2, 2, 8192, UP_5, 3, 12),
    t("t4g.medium", &T4G, 2, 2, 4096, UP_5, 3, 6),
    t("t4g.micro", &T4G, 2, 2, 1024, UP_5, 2, 2),
    t("t4g.nano", &T4G, 2, 2, 512, UP_5, 2, 2),
    t("t4g.small", &T4G, 2, 2, 2048, UP_5, 3, 4),
    t("t4g.xlarge", &T4G, 4, 4, 16384, UP_5, 4, 15),
];

/// The type called `name`, if the catalogue has it.
pub fn find(name: &str) -> Option<&'static InstanceTypeInfo> {
    INSTANCE_TYPES
        .binary_search_by(|t| t.name.cmp(name))
        .ok()
        .map(|i| &INSTANCE_TYPES[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_consistent() {
        for pair in INSTANCE_TYPES.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for t in INSTANCE_TYPES {
            assert_eq!(t.cores * t.threads_per_core(), t.vcpus, "{}", t.name);
            assert_eq!(find(t.name), Some(t));
            let arm = t.family.architectures == ARM;
            assert_eq!(arm, t.family.boot_modes == UEFI, "{}", t.name);
            let family = t.name.split('.').next().unwrap();
            assert_eq!(t.family.burstable, family.starts_with('t'), "{}", t.name);
            assert_eq!(arm, family.ends_with('g'), "{}: Graviton is arm64", t.name);
        }
    }

    #[test]
    fn well_known_figures() {
        let micro = find("t3.micro").unwrap();
        assert_eq!((micro.vcpus, micro.memory_mib), (2, 1024));
        assert!(micro.free_tier_eligible());
        assert_eq!(micro.family.hypervisor, "nitro");
        let t2 = find("t2.micro").unwrap();
        assert_eq!(
            (t2.vcpus, t2.memory_mib, t2.family.hypervisor),
            (1, 1024, "xen")
        );
        assert!(t2.free_tier_eligible());
        assert!(!find("t3.small").unwrap().free_tier_eligible());
        assert_eq!(find("m6g.large").unwrap().family.architectures, ["arm64"]);
        assert!(!find("m1.small").unwrap().family.current_generation);
        assert_eq!(find("nope.large"), None);
    }
}
