//! The launch options RunInstances accepts and DescribeInstances echoes (metadata, credits, monitoring, CPU, hibernation, enclave, maintenance, DNS names).

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
use crate::model::instance_options::HOP_LIMIT_RANGE;
use crate::model::instance_types::{self, InstanceTypeInfo};
use crate::model::{
    CpuCredits, CpuOptions, HostnameType, HttpTokens, Instance, InstanceOptions, MetadataOptions,
    Switch,
};

/// `Value (x) for parameter Name is invalid. Expected: 'a', 'b'.` for an enumerated option.
fn not_one_of(name: &str, raw: &str, allowed: &[&str]) -> ApiError {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    ApiError::invalid_value(format!(
        "Value ({raw}) for parameter {name} is invalid. Expected: {}.",
        allowed.join(", ")
    ))
}

/// An enumerated option: `None` when absent, `InvalidParameterValue` when not one of EC2's words.
fn choice<T>(
    params: &QueryParams,
    name: &str,
    parse: fn(&str) -> Option<T>,
    allowed: &[&str],
) -> Result<Option<T>, ApiError> {
    match params.get(name) {
        None => Ok(None),
        Some(raw) => parse(raw)
            .map(Some)
            .ok_or_else(|| not_one_of(name, raw, allowed)),
    }
}

fn switch(params: &QueryParams, name: &str) -> Result<Option<Switch>, ApiError> {
    choice(params, name, Switch::parse, &["enabled", "disabled"])
}

/// `CpuCredits` as named by `name`: `standard` or `unlimited`.
pub fn cpu_credits(params: &QueryParams, name: &str) -> Result<Option<CpuCredits>, ApiError> {
    choice(params, name, CpuCredits::parse, &["standard", "unlimited"])
}

/// The metadata options under `prefix` (`MetadataOptions.` in RunInstances, none in
/// ModifyInstanceMetadataOptions) applied over `base`: what is not named stays. A hop limit of
/// -1 means "no preference" (ModifyInstanceMetadataOptions' documented value), so it stays too.
pub fn metadata_options(
    params: &QueryParams,
    prefix: &str,
    base: MetadataOptions,
) -> Result<MetadataOptions, ApiError> {
    let name = |field: &str| format!("{prefix}{field}");
    let mut options = base;
    if let Some(tokens) = choice(
        params,
        &name("HttpTokens"),
        HttpTokens::parse,
        &["optional", "required"],
    )? {
        options.http_tokens = tokens;
    }
    let hop_name = name("HttpPutResponseHopLimit");
    match params.int(&hop_name)? {
        None | Some(-1) => {}
        Some(limit) => {
            options.hop_limit = u8::try_from(limit)
                .ok()
                .filter(|l| HOP_LIMIT_RANGE.contains(l))
                .ok_or_else(|| {
                    ApiError::invalid_value(format!(
                        "Value ({limit}) for parameter {hop_name} is invalid. Expected a value between {} and {}.",
                        HOP_LIMIT_RANGE.start(),
                        HOP_LIMIT_RANGE.end()
                    ))
                })?;
        }
    }
    if let Some(endpoint) = switch(params, &name("HttpEndpoint"))? {
        options.http_endpoint = endpoint;
    }
    if let Some(ipv6) = switch(params, &name("HttpProtocolIpv6"))? {
        options.http_protocol_ipv6 = ipv6;
    }
    if let Some(tags) = switch(params, &name("InstanceMetadataTags"))? {
        options.instance_metadata_tags = tags;
    }
    Ok(options)
}

/// The metadata defaults of an AMI whose `imdsSupport` is `v2.0`, for what the launch left
/// unset: tokens required and a hop limit of 2 (EC2's documented defaults for such AMIs).
pub fn imds_v2_defaults(asked: MetadataAsked, options: &mut MetadataOptions) {
    if !asked.http_tokens {
        options.http_tokens = HttpTokens::Required;
    }
    if !asked.hop_limit {
        options.hop_limit = 2;
    }
}

/// Which metadata options a launch named itself (the AMI's defaults fill in the others).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetadataAsked {
    /// `MetadataOptions.HttpTokens` was given.
    pub http_tokens: bool,
    /// `MetadataOptions.HttpPutResponseHopLimit` was given.
    pub hop_limit: bool,
}

impl MetadataAsked {
    /// Reads which of them RunInstances' parameters name.
    pub fn of(params: &QueryParams) -> Self {
        Self {
            http_tokens: params.get("MetadataOptions.HttpTokens").is_some(),
            hop_limit: params
                .get("MetadataOptions.HttpPutResponseHopLimit")
                .is_some(),
        }
    }
}

/// `InstanceCreditSpecification.NotSupported`, EC2's answer to a credit option on a type
/// that earns no credits.
pub fn credits_not_supported(instance_type: &str) -> ApiError {
    ApiError::client(
        "InstanceCreditSpecification.NotSupported",
        format!("The {instance_type} instance type does not support T2 Unlimited."),
    )
}

/// The credit option an instance of `instance_type` launches with: the one asked for (only
/// burstable types take one), else the family's default.
pub fn launch_credits(
    info: &InstanceTypeInfo,
    asked: Option<CpuCredits>,
) -> Result<Option<CpuCredits>, ApiError> {
    match asked {
        Some(_) if !info.family.burstable => Err(credits_not_supported(info.name)),
        Some(credits) => Ok(Some(credits)),
        None => Ok(CpuCredits::default_for(info)),
    }
}

/// `CpuOptions.CoreCount` / `ThreadsPerCore`, each within what the type has.
fn cpu_options(
    params: &QueryParams,
    info: &InstanceTypeInfo,
) -> Result<Option<CpuOptions>, ApiError> {
    let cores = params.int("CpuOptions.CoreCount")?;
    let threads = params.int("CpuOptions.ThreadsPerCore")?;
    if cores.is_none() && threads.is_none() {
        return Ok(None);
    }
    let default = CpuOptions::default_for(info);
    let within = |value: Option<i64>, max: u32, fallback: u32| -> Option<u32> {
        match value {
            None => Some(fallback),
            Some(v) => u32::try_from(v).ok().filter(|v| (1..=max).contains(v)),
        }
    };
    match (
        within(cores, default.core_count, default.core_count),
        within(threads, default.threads_per_core, default.threads_per_core),
    ) {
        (Some(core_count), Some(threads_per_core)) => Ok(Some(CpuOptions {
            core_count,
            threads_per_core,
        })),
        _ => Err(ApiError::invalid_value(format!(
            "The CPU options are not valid for instance type {}: it has {} cores of {} threads each.",
            info.name, default.core_count, default.threads_per_core
        ))),
    }
}

/// Everything RunInstances says about the options of an instance of `instance_type`.
pub fn launch_options(
    params: &QueryParams,
    instance_type: &str,
) -> Result<InstanceOptions, ApiError> {
    let info = instance_types::find(instance_type).ok_or_else(|| {
        ApiError::invalid_value(format!("Invalid value '{instance_type}' for InstanceType."))
    })?;
    let defaults = InstanceOptions::default();
    let auto_recovery = choice(
        params,
        "MaintenanceOptions.AutoRecovery",
        |raw| match raw {
            "default" => Some(false),
            "disabled" => Some(true),
            _ => None,
        },
        &["default", "disabled"],
    )?;
    let hostname_type = choice(
        params,
        "PrivateDnsNameOptions.HostnameType",
        HostnameType::parse,
        &["ip-name", "resource-name"],
    )?;
    Ok(InstanceOptions {
        metadata: metadata_options(params, "MetadataOptions.", defaults.metadata)?,
        cpu_credits: launch_credits(info, cpu_credits(params, "CreditSpecification.CpuCredits")?)?,
        monitoring: params.bool("Monitoring.Enabled")?.unwrap_or(false),
        hibernation: params
            .bool("HibernationOptions.Configured")?
            .unwrap_or(false),
        enclave: params.bool("EnclaveOptions.Enabled")?.unwrap_or(false),
        auto_recovery_disabled: auto_recovery.unwrap_or(false),
        private_dns: crate::model::PrivateDnsNameOptions {
            hostname_type: hostname_type.unwrap_or_default(),
            a_record: params
                .bool("PrivateDnsNameOptions.EnableResourceNameDnsARecord")?
                .unwrap_or(false),
            aaaa_record: params
                .bool("PrivateDnsNameOptions.EnableResourceNameDnsAAAARecord")?
                .unwrap_or(false),
        },
        cpu: cpu_options(params, info)?,
        source_dest_check: defaults.source_dest_check,
        ebs_optimized: params.bool("EbsOptimized")?.unwrap_or(false),
    })
}

/// `<state>`, `httpTokens`, … of `InstanceMetadataOptionsResponse`; `state` is `applied`
/// in DescribeInstances and `pending` in ModifyInstanceMetadataOptions' answer, as in EC2.
pub fn render_metadata_options(w: &mut XmlWriter, options: &MetadataOptions, state: &str) {
    w.field("state", state);
    w.field("httpTokens", options.http_tokens.as_str());
    w.field("httpPutResponseHopLimit", options.hop_limit);
    w.field("httpEndpoint", options.http_endpoint.as_str());
    w.field("httpProtocolIpv6", options.http_protocol_ipv6.as_str());
    w.field(
        "instanceMetadataTags",
        options.instance_metadata_tags.as_str(),
    );
}

/// `enabled` or `disabled`: the instance's `Monitoring.State`.
pub fn monitoring_state(instance: &Instance) -> &'static str {
    if instance.spec.options.monitoring {
        "enabled"
    } else {
        "disabled"
    }
}

/// The instance's CPU options: those chosen at launch, else its type's.
pub fn effective_cpu(instance: &Instance) -> Option<CpuOptions> {
    instance
        .spec
        .options
        .cpu
        .or_else(|| instance_types::find(&instance.spec.instance_type).map(CpuOptions::default_for))
}

/// The option blocks of a `RunningInstancesItemType` EC2 always includes and Terraform's
/// read dereferences: hibernation, CPU, capacity reservation, metadata, enclave, private DNS
/// name and maintenance options.
pub fn render_option_blocks(w: &mut XmlWriter, instance: &Instance) {
    let options = &instance.spec.options;
    w.el("hibernationOptions", |w| {
        w.field("configured", options.hibernation)
    });
    if let Some(cpu) = effective_cpu(instance) {
        w.el("cpuOptions", |w| {
            w.field("coreCount", cpu.core_count);
            w.field("threadsPerCore", cpu.threads_per_core);
        });
    }
    w.el("capacityReservationSpecification", |w| {
        w.field("capacityReservationPreference", "open")
    });
    w.el("metadataOptions", |w| {
        render_metadata_options(w, &options.metadata, "applied")
    });
    w.el("enclaveOptions", |w| w.field("enabled", options.enclave));
    w.el("privateDnsNameOptions", |w| {
        w.field("hostnameType", options.private_dns.hostname_type.as_str());
        w.field("enableResourceNameDnsARecord", options.private_dns.a_record);
        w.field(
            "enableResourceNameDnsAAAARecord",
            options.private_dns.aaaa_record,
        );
    });
    w.el("maintenanceOptions", |w| {
        w.field(
            "autoRecovery",
            if options.auto_recovery_disabled {
                "disabled"
            } else {
                "default"
            },
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(query: &str, instance_type: &str) -> Result<InstanceOptions, ApiError> {
        launch_options(&QueryParams::from_query(query), instance_type)
    }

    #[test]
    fn defaults_are_ec2s() {
        let options = launch("", "t3.micro").unwrap();
        assert_eq!(options.cpu_credits, Some(CpuCredits::Unlimited));
        assert_eq!(options.metadata, MetadataOptions::default());
        assert!(options.source_dest_check && !options.monitoring && !options.ebs_optimized);
        assert_eq!(
            launch("", "t2.micro").unwrap().cpu_credits,
            Some(CpuCredits::Standard)
        );
        assert_eq!(launch("", "m5.large").unwrap().cpu_credits, None);
    }

    #[test]
    fn every_option_is_read() {
        let options = launch(
            "MetadataOptions.HttpTokens=required&MetadataOptions.HttpPutResponseHopLimit=2\
             &MetadataOptions.HttpEndpoint=enabled&MetadataOptions.InstanceMetadataTags=enabled\
             &CreditSpecification.CpuCredits=standard&Monitoring.Enabled=true\
             &HibernationOptions.Configured=false&EnclaveOptions.Enabled=true\
             &MaintenanceOptions.AutoRecovery=disabled&PrivateDnsNameOptions.HostnameType=resource-name\
             &PrivateDnsNameOptions.EnableResourceNameDnsARecord=true&EbsOptimized=true\
             &CpuOptions.CoreCount=1&CpuOptions.ThreadsPerCore=1",
            "t3.micro",
        )
        .unwrap();
        assert_eq!(options.metadata.http_tokens, HttpTokens::Required);
        assert_eq!(options.metadata.hop_limit, 2);
        assert_eq!(options.metadata.instance_metadata_tags, Switch::Enabled);
        assert_eq!(options.cpu_credits, Some(CpuCredits::Standard));
        assert!(options.monitoring && options.enclave && options.auto_recovery_disabled);
        assert_eq!(
            options.private_dns.hostname_type,
            HostnameType::ResourceName
        );
        assert!(options.private_dns.a_record && !options.private_dns.aaaa_record);
        assert!(options.ebs_optimized);
        assert_eq!(
            options.cpu,
            Some(CpuOptions {
                core_count: 1,
                threads_per_core: 1
            })
        );
    }

    #[test]
    fn bad_values_are_refused_as_ec2_does() {
        let err = |q: &str, t: &str| launch(q, t).unwrap_err();
        let e = err("MetadataOptions.HttpTokens=sometimes", "t3.micro");
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(
            e.message,
            "Value (sometimes) for parameter MetadataOptions.HttpTokens is invalid. Expected: 'optional', 'required'."
        );
        for hops in ["0", "65", "-2", "x"] {
            let e = err(
                &format!("MetadataOptions.HttpPutResponseHopLimit={hops}"),
                "t3.micro",
            );
            assert_eq!(e.code, "InvalidParameterValue", "{hops}");
        }
        let e = err("CreditSpecification.CpuCredits=unlimited", "m5.large");
        assert_eq!(e.code, "InstanceCreditSpecification.NotSupported");
        assert_eq!(
            e.message,
            "The m5.large instance type does not support T2 Unlimited."
        );
        assert_eq!(
            err("CreditSpecification.CpuCredits=lots", "t3.micro").code,
            "InvalidParameterValue"
        );
        assert_eq!(
            err("CpuOptions.CoreCount=4", "t3.micro").code,
            "InvalidParameterValue"
        );
        assert_eq!(
            err("Monitoring.Enabled=maybe", "t3.micro").code,
            "InvalidParameterValue"
        );
        assert_eq!(
            err("MaintenanceOptions.AutoRecovery=sometimes", "t3.micro").code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn modify_keeps_what_is_not_named() {
        let base = MetadataOptions {
            http_tokens: HttpTokens::Required,
            hop_limit: 3,
            ..MetadataOptions::default()
        };
        let params = QueryParams::from_query("HttpPutResponseHopLimit=-1&HttpEndpoint=disabled");
        let options = metadata_options(&params, "", base).unwrap();
        assert_eq!(options.http_tokens, HttpTokens::Required);
        assert_eq!(options.hop_limit, 3);
        assert_eq!(options.http_endpoint, Switch::Disabled);
    }
}
