//! `DescribeLaunchTemplateVersions`: versions of one template (all, named ones, or a number range), or the latest and/or default version of every template of the region; filtered and paged.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::launch_templates::{self, TemplateRef};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{kind, paging};
use crate::model::{format_timestamp, LaunchTemplate, LaunchTemplateVersion, VersionRef};

/// The filter names EC2 documents for DescribeLaunchTemplateVersions.
pub const FILTERS: &[&str] = &[
    "create-time",
    "ebs-optimized",
    "http-endpoint",
    "http-protocol-ipv4",
    "host-resource-group-arn",
    "http-tokens",
    "iam-instance-profile",
    "image-id",
    "instance-type",
    "is-default-version",
    "kernel-id",
    "license-configuration-arn",
    "network-card-index",
    "ram-disk-id",
];

/// EC2's answer (`MissingParameter` or `InvalidParameterValue`) when versions are asked of
/// no template without `$Latest`/`$Default` alone; its words, CLI option names and quotes included.
const ACCOUNT_WIDE: &str = "To describe the launch template data for all your launch templates, for \u{2018}--versions\u{2019} specify \u{2018}$Latest\u{2019}, \u{2018}$Default\u{2019}, or both, and omit \u{2018}--launch-template-id\u{2019}, \u{2018}--launch-template-name\u{2019}, and version numbers. To describe the launch template data for a specific launch template, specify \u{2018}--launch-template-id\u{2019} or \u{2018}--launch-template-name\u{2019}, and for \u{2018}--versions\u{2019} specify one or more of the following values: \u{2018}$Latest\u{2019}, \u{2018}$Default\u{2019}, or one or more version numbers.";

/// A validated DescribeLaunchTemplateVersions request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `LaunchTemplateId` or `LaunchTemplateName`; `None` asks of every template of the region.
    pub template: Option<TemplateRef>,
    /// `LaunchTemplateVersion.N`: `$Latest`, `$Default` or numbers (only the first two without a template).
    pub versions: Vec<String>,
    /// `MinVersion`.
    pub min_version: Option<u64>,
    /// `MaxVersion`.
    pub max_version: Option<u64>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `MaxResults`, 1 to 200.
    pub max_results: Option<usize>,
    /// `NextToken`, decoded: the template id and version number the previous page ended on.
    pub after: Option<(String, u64)>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// `MinVersion`/`MaxVersion`: a version number.
fn bound(params: &QueryParams, name: &str) -> Result<Option<u64>, ApiError> {
    match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(raw) => match VersionRef::parse(raw) {
            Some(VersionRef::Number(n)) => Ok(Some(n)),
            _ => Err(ApiError::invalid_value(format!(
                "Value ({raw}) for parameter {name} is invalid. Expected a version number."
            ))),
        },
    }
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let template = launch_templates::template_ref(params, "describe its versions")?;
    let versions: Vec<String> = params
        .list("LaunchTemplateVersion")
        .into_iter()
        .map(str::to_string)
        .collect();
    if template.is_none() {
        if versions.is_empty() {
            return Err(ApiError::client("MissingParameter", ACCOUNT_WIDE));
        }
        if versions.iter().any(|v| {
            !matches!(
                VersionRef::parse(v),
                Some(VersionRef::Latest | VersionRef::Default)
            )
        }) {
            return Err(ApiError::invalid_value(ACCOUNT_WIDE));
        }
    }
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    let after = match paging::next_pair(params)? {
        None => None,
        Some((id, number)) => Some((id, number.parse().map_err(|_| paging::invalid_token())?)),
    };
    Ok(Request {
        template,
        versions,
        min_version: bound(params, "MinVersion")?,
        max_version: bound(params, "MaxVersion")?,
        filters,
        max_results: paging::max_results_in(params, None, paging::SizeWording::Between, 1..=200)?,
        after,
        dry_run: kind::dry_run(params)?,
    })
}

/// One version with its template, as listed.
type Item = (LaunchTemplate, LaunchTemplateVersion);

/// A version's values for each filter name (empty: the filter cannot match it).
fn filter_values(name: &str, (template, version): &Item) -> Vec<String> {
    let data = &version.data;
    let at = |path: &str| {
        data.values_at(path)
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    match name {
        "create-time" => vec![format_timestamp(version.create_time)],
        "ebs-optimized" => at("EbsOptimized"),
        "http-endpoint" => at("MetadataOptions.HttpEndpoint"),
        // EC2 documents it as "whether the IPv4 endpoint for the instance metadata service
        // is enabled", but launch template data has no such member (only `HttpProtocolIpv6`,
        // default disabled): the IPv4 endpoint is the service itself, on whenever
        // `HttpEndpoint` is (its default, `enabled`), off when it is `disabled`.
        "http-protocol-ipv4" => {
            let off = data
                .values_at("MetadataOptions.HttpEndpoint")
                .contains(&"disabled");
            vec![if off { "disabled" } else { "enabled" }.to_string()]
        }
        "host-resource-group-arn" => at("Placement.HostResourceGroupArn"),
        "http-tokens" => at("MetadataOptions.HttpTokens"),
        "iam-instance-profile" => {
            let mut values: Vec<String> = at("IamInstanceProfile.Arn");
            values.extend(at("IamInstanceProfile.Name"));
            values
        }
        "image-id" => at("ImageId"),
        "instance-type" => at("InstanceType"),
        "is-default-version" => {
            vec![(version.version_number == template.spec.default_version_number).to_string()]
        }
        "kernel-id" => at("KernelId"),
        "license-configuration-arn" => at("LicenseSpecification.LicenseConfigurationArn"),
        "network-card-index" => at("NetworkInterface.NetworkCardIndex"),
        "ram-disk-id" => at("RamDiskId"),
        _ => Vec::new(),
    }
}

/// The versions one template's request names, each once, or `VersionNotFound` for the first
/// that names none.
fn named_versions(template: &LaunchTemplate, req: &Request) -> Result<Vec<Item>, ApiError> {
    let mut picked: Vec<LaunchTemplateVersion> = Vec::new();
    if req.versions.is_empty() {
        picked = template.spec.versions.clone();
    } else {
        for text in &req.versions {
            let version = launch_templates::version_of(template, text)?;
            if !picked
                .iter()
                .any(|v| v.version_number == version.version_number)
            {
                picked.push(version.clone());
            }
        }
    }
    Ok(picked
        .into_iter()
        .filter(|v| req.min_version.is_none_or(|min| v.version_number >= min))
        .filter(|v| req.max_version.is_none_or(|max| v.version_number <= max))
        .map(|v| (template.clone(), v))
        .collect())
}

/// Lists what the request names (the template must exist, every version named too), answers
/// `DryRun`, then filters and pages by template id and version number.
pub fn handle(
    state: &ApiState,
    region: &str,
    req: Request,
) -> Result<(Vec<Item>, Option<String>), ApiError> {
    let mut items: Vec<Item> = match &req.template {
        Some(reference) => {
            let template = launch_templates::existing(state, region, reference)?;
            named_versions(&template, &req)?
        }
        None => {
            let mut all = Vec::new();
            for template in launch_templates::region_templates(state, region)? {
                all.extend(named_versions(&template, &req)?);
            }
            all
        }
    };
    kind::check_dry_run(req.dry_run)?;
    items.retain(|item| filter::matches_all(&req.filters, |name| filter_values(name, item)));
    if let Some((id, number)) = &req.after {
        items
            .retain(|(t, v)| (t.metadata.name.as_str(), v.version_number) > (id.as_str(), *number));
    }
    items.sort_by(|(a, va), (b, vb)| {
        (&a.metadata.name, va.version_number).cmp(&(&b.metadata.name, vb.version_number))
    });
    let next_token = paging::cut(&mut items, req.max_results, |(t, v)| {
        paging::pair_cursor(&t.metadata.name, &v.version_number.to_string())
    });
    Ok((items, next_token))
}

/// `launchTemplateVersionSet` and `nextToken`.
pub fn render(items: &[Item], next_token: Option<&str>) -> String {
    let mut w = XmlWriter::new();
    w.set(
        "launchTemplateVersionSet",
        items,
        |w, (template, version)| launch_templates::render_version(w, template, version),
    );
    w.opt_field("nextToken", next_token);
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let (items, next_token) = handle(state, region, parse(params)?)?;
    Ok(render(&items, next_token.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn account_wide_requests_take_latest_and_default_only() {
        let e = parse_str("").unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        assert_eq!(e.message, ACCOUNT_WIDE);
        let e = parse_str("LaunchTemplateVersion.1=1").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(e.message, ACCOUNT_WIDE);
        let req =
            parse_str("LaunchTemplateVersion.1=$Latest&LaunchTemplateVersion.2=$Default").unwrap();
        assert_eq!(req.versions, vec!["$Latest", "$Default"]);
        assert!(ACCOUNT_WIDE.starts_with("To describe the launch template data for all your launch templates, for \u{2018}--versions\u{2019}"));
    }

    #[test]
    fn bounds_filters_and_pages() {
        let req =
            parse_str("LaunchTemplateName=web&MinVersion=2&MaxVersion=3&MaxResults=1").unwrap();
        assert_eq!(
            (req.min_version, req.max_version, req.max_results),
            (Some(2), Some(3), Some(1))
        );
        let code = |q: &str| parse_str(q).unwrap_err().code;
        assert_eq!(
            code("LaunchTemplateName=web&MinVersion=two"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("LaunchTemplateName=web&MaxResults=0"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("LaunchTemplateName=web&MaxResults=201"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("LaunchTemplateName=web&Filter.1.Name=flavour&Filter.1.Value.1=x"),
            "InvalidParameterValue"
        );
        let token = paging::token(&paging::pair_cursor("lt-0123456789abcdef0", "x"));
        assert_eq!(
            code(&format!("LaunchTemplateName=web&NextToken={token}")),
            "InvalidNextToken"
        );
        let token = paging::token(&paging::pair_cursor("lt-0123456789abcdef0", "2"));
        assert_eq!(
            parse_str(&format!("LaunchTemplateName=web&NextToken={token}"))
                .unwrap()
                .after,
            Some(("lt-0123456789abcdef0".to_string(), 2))
        );
    }
}
