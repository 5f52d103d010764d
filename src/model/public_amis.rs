//! The built-in catalogue of well-known public AMIs (Amazon Linux, Ubuntu, Debian, Windows): static data that DescribeImages lists, as the instance type catalogue is.
//!
//! These AMIs are mocked: their ids are ec2d's own and the same in every region (AWS's ids
//! differ per region and change with every build; LocalStack's page uses one id everywhere,
//! and so does ec2d, including the ids that page names). No record is stored for them. In
//! `docker` mode one launches only once a Docker image is tagged
//! `localstack-ec2/<name>:<its id>` ([`PublicAmi::docker_tag`]); `mock` mode launches them as
//! they are. Only the builds that AWS no longer recommends carry a deprecation time (in the
//! past), so the catalogue never deprecates itself as time passes.

use super::ami_tag::AmiTag;
use super::ids::ImageId;
use super::image::docker_repository_name;

/// Amazon's account (Amazon Linux), alias `amazon`.
pub const AMAZON_OWNER: &str = "137112412989";
/// Amazon's Windows account, alias `amazon` too.
pub const AMAZON_WINDOWS_OWNER: &str = "801119661308";
/// Canonical's account (Ubuntu); it has no owner alias.
pub const CANONICAL_OWNER: &str = "099720109477";
/// Debian's account; no owner alias.
pub const DEBIAN_OWNER: &str = "136693071363";

/// One public AMI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicAmi {
    /// `imageId`.
    pub id: &'static str,
    /// `name`, following its publisher's pattern.
    pub name: &'static str,
    /// `description`.
    pub description: &'static str,
    /// `imageOwnerId`.
    pub owner_id: &'static str,
    /// `imageOwnerAlias` (`amazon`), when the owner has one.
    pub owner_alias: Option<&'static str>,
    /// `x86_64` or `arm64`.
    pub architecture: &'static str,
    /// `creationDate`, as EC2 writes it.
    pub creation_date: &'static str,
    /// `deprecationTime`, set only on builds that are deprecated.
    pub deprecation_time: Option<&'static str>,
    /// `platform` (`windows`), absent for Linux.
    pub platform: Option<&'static str>,
    /// `platformDetails`.
    pub platform_details: &'static str,
    /// `usageOperation`.
    pub usage_operation: &'static str,
    /// `rootDeviceName`, the one block device mapping's device.
    pub root_device_name: &'static str,
    /// The root volume's snapshot (mocked: ec2d keeps no snapshots yet).
    pub snapshot_id: &'static str,
    /// The root volume's size in GiB.
    pub volume_size: u32,
    /// The root volume's type (`gp2`, `gp3`).
    pub volume_type: &'static str,
    /// `bootMode`, when the publisher sets one.
    pub boot_mode: Option<&'static str>,
    /// `imdsSupport` (`v2.0`), when the publisher sets it.
    pub imds_support: Option<&'static str>,
}

impl PublicAmi {
    /// Whether the AMI is deprecated at `now` (an RFC 3339 time as EC2 writes it, so the
    /// strings compare as the times do).
    pub fn is_deprecated(&self, now: &str) -> bool {
        self.deprecation_time.is_some_and(|t| t <= now)
    }

    /// The Docker tag that backs this AMI: `localstack-ec2/<name made Docker-safe>:<id>`.
    pub fn docker_tag(&self) -> AmiTag {
        AmiTag::new(
            docker_repository_name(self.name),
            ImageId::parse(self.id).expect("catalogue ids are well-formed"),
        )
    }
}

/// The Linux defaults every row below shares.
const LINUX: PublicAmi = PublicAmi {
    id: "",
    name: "",
    description: "",
    owner_id: AMAZON_OWNER,
    owner_alias: Some("amazon"),
    architecture: "x86_64",
    creation_date: "",
    deprecation_time: None,
    platform: None,
    platform_details: "Linux/UNIX",
    usage_operation: "RunInstances",
    root_device_name: "/dev/xvda",
    snapshot_id: "",
    volume_size: 8,
    volume_type: "gp3",
    boot_mode: None,
    imds_support: None,
};

const AL2023: PublicAmi = PublicAmi {
    boot_mode: Some("uefi-preferred"),
    imds_support: Some("v2.0"),
    ..LINUX
};

const AL2: PublicAmi = PublicAmi {
    volume_type: "gp2",
    ..LINUX
};

const UBUNTU: PublicAmi = PublicAmi {
    owner_id: CANONICAL_OWNER,
    owner_alias: None,
    root_device_name: "/dev/sda1",
    volume_type: "gp2",
    ..LINUX
};

const DEBIAN: PublicAmi = PublicAmi {
    owner_id: DEBIAN_OWNER,
    owner_alias: None,
    volume_type: "gp2",
    ..LINUX
};

/// Every public AMI, oldest build of a family first.
pub static PUBLIC_AMIS: &[PublicAmi] = &[
    PublicAmi {
        id: "ami-04bb900bd6b90688e",
        name: "al2023-ami-2023.8.20260612.0-kernel-6.1-x86_64",
        description: "Amazon Linux 2023 AMI 2023.8.20260612.0 x86_64 HVM kernel-6.1",
        creation_date: "2026-06-13T00:12:45.000Z",
        deprecation_time: Some("2026-09-11T00:12:00.000Z"),
        snapshot_id: "snap-0fd63c20184299900",
        ..AL2023
    },
    PublicAmi {
        id: "ami-04e2d9f26611c0709",
        name: "al2023-ami-2023.9.20261020.0-kernel-6.1-x86_64",
        description: "Amazon Linux 2023 AMI 2023.9.20261020.0 x86_64 HVM kernel-6.1",
        creation_date: "2026-10-21T19:40:02.000Z",
        snapshot_id: "snap-020933b8132a6d704",
        ..AL2023
    },
    // LocalStack's documented Amazon Linux 2023 id.
    PublicAmi {
        id: "ami-024f768332f0",
        name: "al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64",
        description: "Amazon Linux 2023 AMI 2023.9.20261110.0 x86_64 HVM kernel-6.1",
        creation_date: "2026-11-11T21:04:11.000Z",
        snapshot_id: "snap-0a48d37abcea9bcfd",
        ..AL2023
    },
    PublicAmi {
        id: "ami-0ee25f51fa8ae8bb1",
        name: "al2023-ami-2023.9.20261110.0-kernel-6.1-arm64",
        description: "Amazon Linux 2023 AMI 2023.9.20261110.0 arm64 HVM kernel-6.1",
        architecture: "arm64",
        creation_date: "2026-11-11T21:04:13.000Z",
        snapshot_id: "snap-043f7fa389401051b",
        boot_mode: Some("uefi"),
        ..AL2023
    },
    PublicAmi {
        id: "ami-0beb066562eed4a35",
        name: "amzn2-ami-kernel-5.10-hvm-2.0.20260612.0-x86_64-gp2",
        description: "Amazon Linux 2 Kernel 5.10 AMI 2.0.20260612.0 x86_64 HVM gp2",
        creation_date: "2026-06-13T01:27:52.000Z",
        snapshot_id: "snap-03e2fc44975e83d36",
        ..AL2
    },
    PublicAmi {
        id: "ami-0031346e9bb88acdf",
        name: "amzn2-ami-kernel-5.10-hvm-2.0.20260612.0-arm64-gp2",
        description: "Amazon Linux 2 Kernel 5.10 AMI 2.0.20260612.0 arm64 HVM gp2",
        architecture: "arm64",
        creation_date: "2026-06-13T01:27:55.000Z",
        snapshot_id: "snap-0c4edffc04c8dd05e",
        boot_mode: Some("uefi"),
        ..AL2
    },
    // LocalStack's documented Ubuntu 20.04 id.
    PublicAmi {
        id: "ami-ff0fea8310f3",
        name: "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-20250508",
        description: "Canonical, Ubuntu, 20.04 LTS, amd64 focal image build on 2025-05-08",
        creation_date: "2025-05-08T14:32:20.000Z",
        snapshot_id: "snap-0aa57e9c4ec9b711f",
        ..UBUNTU
    },
    PublicAmi {
        id: "ami-0682b7173cc01ad89",
        name: "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-arm64-server-20250508",
        description: "Canonical, Ubuntu, 20.04 LTS, arm64 focal image build on 2025-05-08",
        architecture: "arm64",
        creation_date: "2025-05-08T14:32:24.000Z",
        snapshot_id: "snap-0d8a91a4d3ea620d9",
        boot_mode: Some("uefi"),
        ..UBUNTU
    },
    // LocalStack's documented Ubuntu 22.04 id (the one its examples launch).
    PublicAmi {
        id: "ami-df5de72bdb3b",
        name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20261107",
        description: "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image build on 2026-11-07",
        creation_date: "2026-11-07T09:15:41.000Z",
        snapshot_id: "snap-0e6501b1e1e398cc8",
        boot_mode: Some("uefi-preferred"),
        ..UBUNTU
    },
    PublicAmi {
        id: "ami-02e8239fea26810e7",
        name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20261107",
        description: "Canonical, Ubuntu, 22.04 LTS, arm64 jammy image build on 2026-11-07",
        architecture: "arm64",
        creation_date: "2026-11-07T09:15:47.000Z",
        snapshot_id: "snap-0029272e6a773668f",
        boot_mode: Some("uefi"),
        ..UBUNTU
    },
    PublicAmi {
        id: "ami-00abfc5e36249c28c",
        name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261105",
        description: "Canonical, Ubuntu, 24.04, amd64 noble image",
        creation_date: "2026-11-05T06:02:10.000Z",
        snapshot_id: "snap-01f40b73b8aeda4df",
        volume_type: "gp3",
        boot_mode: Some("uefi-preferred"),
        ..UBUNTU
    },
    PublicAmi {
        id: "ami-00e110a1456bea528",
        name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20261105",
        description: "Canonical, Ubuntu, 24.04, arm64 noble image",
        architecture: "arm64",
        creation_date: "2026-11-05T06:02:15.000Z",
        snapshot_id: "snap-0c62abca894aae884",
        volume_type: "gp3",
        boot_mode: Some("uefi"),
        ..UBUNTU
    },
    PublicAmi {
        id: "ami-0a8cfb1024d67f006",
        name: "debian-12-amd64-20261101-2283",
        description: "Debian 12 (20261101-2283)",
        creation_date: "2026-11-01T22:45:19.000Z",
        snapshot_id: "snap-082d148f02cefa0b5",
        ..DEBIAN
    },
    PublicAmi {
        id: "ami-0cd08ab0cf4e5afa6",
        name: "debian-12-arm64-20261101-2283",
        description: "Debian 12 (20261101-2283)",
        architecture: "arm64",
        creation_date: "2026-11-01T22:45:23.000Z",
        snapshot_id: "snap-06c3e8f91196d8d1a",
        boot_mode: Some("uefi"),
        ..DEBIAN
    },
    PublicAmi {
        id: "ami-09551167c0aa323b6",
        name: "Windows_Server-2022-English-Full-Base-2026.11.12",
        description: "Microsoft Windows Server 2022 Full Locale English AMI provided by Amazon",
        owner_id: AMAZON_WINDOWS_OWNER,
        creation_date: "2026-11-12T19:05:33.000Z",
        platform: Some("windows"),
        platform_details: "Windows",
        usage_operation: "RunInstances:0002",
        root_device_name: "/dev/sda1",
        snapshot_id: "snap-09d040bdd5eeb4a72",
        volume_size: 30,
        volume_type: "gp2",
        ..LINUX
    },
];

/// The public AMI with this id, if the catalogue has one.
pub fn find(id: &str) -> Option<&'static PublicAmi> {
    PUBLIC_AMIS.iter().find(|ami| ami.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn rows_are_well_formed_and_unique() {
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        let mut snapshots = HashSet::new();
        for ami in PUBLIC_AMIS {
            assert!(ImageId::parse(ami.id).is_ok(), "{}", ami.id);
            assert!(ids.insert(ami.id), "{} twice", ami.id);
            assert!(names.insert(ami.name), "{} twice", ami.name);
            assert!(snapshots.insert(ami.snapshot_id), "{}", ami.snapshot_id);
            assert!(ami.snapshot_id.starts_with("snap-"));
            assert!(!ami.description.is_empty());
            assert!(matches!(ami.architecture, "x86_64" | "arm64"));
            let parsed = time::OffsetDateTime::parse(
                ami.creation_date,
                &time::format_description::well_known::Rfc3339,
            );
            assert!(parsed.is_ok(), "{}", ami.creation_date);
            // Every Docker-safe name is a valid tag, and round-trips through the parser.
            let tag = ami.docker_tag();
            assert_eq!(AmiTag::parse(&tag.to_string()), Some(tag));
        }
    }

    #[test]
    fn the_ids_localstack_documents_are_there() {
        assert!(find("ami-df5de72bdb3b")
            .unwrap()
            .name
            .contains("jammy-22.04-amd64"));
        assert!(find("ami-024f768332f0")
            .unwrap()
            .name
            .starts_with("al2023-ami-"));
        assert!(find("ami-ff0fea8310f3")
            .unwrap()
            .name
            .contains("focal-20.04-amd64"));
        assert_eq!(find("ami-12345678"), None);
    }

    #[test]
    fn deprecation_compares_times() {
        let old = find("ami-04bb900bd6b90688e").unwrap();
        assert!(old.is_deprecated("2026-12-01T00:00:00.000Z"));
        assert!(!old.is_deprecated("2026-07-01T00:00:00.000Z"));
        assert!(!find("ami-024f768332f0")
            .unwrap()
            .is_deprecated("2099-01-01T00:00:00.000Z"));
        assert_eq!(
            find("ami-024f768332f0").unwrap().docker_tag().to_string(),
            "localstack-ec2/al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64:ami-024f768332f0"
        );
    }
}
