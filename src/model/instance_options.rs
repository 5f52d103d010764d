//! The launch options an instance records and echoes as EC2 does (metadata, credits, monitoring, CPU, DNS names, …).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::instance_types::InstanceTypeInfo;

/// An `enabled`/`disabled` switch, as EC2 spells most of these options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    /// `enabled`.
    Enabled,
    /// `disabled`.
    Disabled,
}

impl Switch {
    /// EC2's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }

    /// Reads EC2's word.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "enabled" => Some(Self::Enabled),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// `HttpTokens`: whether IMDSv2 session tokens are required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HttpTokens {
    /// IMDSv1 and v2 both answer (EC2's default for AMIs that do not ask for v2).
    #[default]
    Optional,
    /// Only IMDSv2.
    Required,
}

impl HttpTokens {
    /// EC2's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    /// Reads EC2's word.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }
}

/// The lowest and highest `HttpPutResponseHopLimit` EC2 accepts.
pub const HOP_LIMIT_RANGE: std::ops::RangeInclusive<u8> = 1..=64;

/// `InstanceMetadataOptions`: how the instance metadata service (`crate::imds`) answers this
/// instance; it reads them at each request, so a change applies at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOptions {
    /// `HttpTokens`.
    pub http_tokens: HttpTokens,
    /// `HttpPutResponseHopLimit` (1–64).
    pub hop_limit: u8,
    /// `HttpEndpoint`.
    pub http_endpoint: Switch,
    /// `HttpProtocolIpv6`.
    pub http_protocol_ipv6: Switch,
    /// `InstanceMetadataTags`: whether tags are readable from the metadata service.
    pub instance_metadata_tags: Switch,
}

impl Default for MetadataOptions {
    /// EC2's launch defaults.
    fn default() -> Self {
        Self {
            http_tokens: HttpTokens::Optional,
            hop_limit: 1,
            http_endpoint: Switch::Enabled,
            http_protocol_ipv6: Switch::Disabled,
            instance_metadata_tags: Switch::Disabled,
        }
    }
}

/// `CpuCredits` of a burstable instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CpuCredits {
    /// Baseline plus earned credits.
    Standard,
    /// May burst beyond its credits.
    Unlimited,
}

impl CpuCredits {
    /// EC2's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Unlimited => "unlimited",
        }
    }

    /// Reads EC2's word.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "standard" => Some(Self::Standard),
            "unlimited" => Some(Self::Unlimited),
            _ => None,
        }
    }

    /// EC2's default for a type: T2 launches `standard`, the later burstable families
    /// (T3, T3a, T4g) `unlimited`; other types have no credit option.
    pub fn default_for(info: &InstanceTypeInfo) -> Option<Self> {
        if !info.family.burstable {
            return None;
        }
        Some(if info.name.starts_with("t2.") {
            Self::Standard
        } else {
            Self::Unlimited
        })
    }
}

/// `HostnameType` of `PrivateDnsNameOptions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostnameType {
    /// `ip-10-0-0-1.ec2.internal`.
    #[default]
    IpName,
    /// `i-0123456789abcdef0.ec2.internal`.
    ResourceName,
}

impl HostnameType {
    /// EC2's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IpName => "ip-name",
            Self::ResourceName => "resource-name",
        }
    }

    /// Reads EC2's word.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ip-name" => Some(Self::IpName),
            "resource-name" => Some(Self::ResourceName),
            _ => None,
        }
    }
}

/// `PrivateDnsNameOptions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateDnsNameOptions {
    /// `HostnameType`.
    pub hostname_type: HostnameType,
    /// `EnableResourceNameDnsARecord`.
    pub a_record: bool,
    /// `EnableResourceNameDnsAAAARecord`.
    pub aaaa_record: bool,
}

/// `CpuOptions` asked for at launch; absent, the type's defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuOptions {
    /// `CoreCount`.
    pub core_count: u32,
    /// `ThreadsPerCore`.
    pub threads_per_core: u32,
}

impl CpuOptions {
    /// The type's default cores and threads.
    pub fn default_for(info: &InstanceTypeInfo) -> Self {
        Self {
            core_count: info.cores,
            threads_per_core: info.threads_per_core(),
        }
    }
}

/// Everything an instance records about its launch options beyond what the container needs.
/// Stored in the spec (the user asked for it), written only by the API; absent fields of an
/// older record read as EC2's launch defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceOptions {
    /// `MetadataOptions`.
    pub metadata: MetadataOptions,
    /// `CreditSpecification.CpuCredits`; set for burstable types (the family default when
    /// the launch named none), kept when the instance is resized, as EC2 does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_credits: Option<CpuCredits>,
    /// Detailed monitoring (`Monitoring.Enabled`, MonitorInstances).
    pub monitoring: bool,
    /// `HibernationOptions.Configured`.
    pub hibernation: bool,
    /// `EnclaveOptions.Enabled`.
    pub enclave: bool,
    /// `MaintenanceOptions.AutoRecovery`: `default` (enabled) unless `disabled`.
    pub auto_recovery_disabled: bool,
    /// `PrivateDnsNameOptions`.
    pub private_dns: PrivateDnsNameOptions,
    /// `CpuOptions` when the launch chose them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuOptions>,
    /// `SourceDestCheck` of the instance (and its primary interface).
    pub source_dest_check: bool,
    /// `EbsOptimized`.
    pub ebs_optimized: bool,
}

impl Default for InstanceOptions {
    /// EC2's launch defaults (no credit option: that depends on the type).
    fn default() -> Self {
        Self {
            metadata: MetadataOptions::default(),
            cpu_credits: None,
            monitoring: false,
            hibernation: false,
            enclave: false,
            auto_recovery_disabled: false,
            private_dns: PrivateDnsNameOptions::default(),
            cpu: None,
            source_dest_check: true,
            ebs_optimized: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::instance_types::find;

    #[test]
    fn an_old_record_reads_as_the_launch_defaults() {
        let options: InstanceOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(options, InstanceOptions::default());
        assert!(options.source_dest_check);
        assert_eq!(options.metadata.hop_limit, 1);
        let partial: InstanceOptions =
            serde_json::from_str(r#"{"metadata":{"httpTokens":"required","hopLimit":2,"httpEndpoint":"enabled","httpProtocolIpv6":"disabled","instanceMetadataTags":"enabled"}}"#)
                .unwrap();
        assert_eq!(partial.metadata.http_tokens, HttpTokens::Required);
        assert!(partial.source_dest_check);
    }

    #[test]
    fn credit_defaults_follow_the_family() {
        let credits = |t: &str| CpuCredits::default_for(find(t).unwrap());
        assert_eq!(credits("t2.micro"), Some(CpuCredits::Standard));
        assert_eq!(credits("t3.micro"), Some(CpuCredits::Unlimited));
        assert_eq!(credits("t3a.small"), Some(CpuCredits::Unlimited));
        assert_eq!(credits("t4g.nano"), Some(CpuCredits::Unlimited));
        assert_eq!(credits("m5.large"), None);
    }

    #[test]
    fn cpu_defaults_come_from_the_type() {
        let cpu = CpuOptions::default_for(find("t3.micro").unwrap());
        assert_eq!((cpu.core_count, cpu.threads_per_core), (1, 2));
        let cpu = CpuOptions::default_for(find("m6g.large").unwrap());
        assert_eq!((cpu.core_count, cpu.threads_per_core), (2, 1));
    }
}
