//! `DeleteLaunchTemplateVersions`: removes versions of a template, each reported deleted or not (the default version and versions that do not exist are not).

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::launch_templates::{self, TemplateRef, MAX_DELETE_VERSIONS};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::LaunchTemplate;

/// A validated DeleteLaunchTemplateVersions request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `LaunchTemplateId` or `LaunchTemplateName`.
    pub template: TemplateRef,
    /// `LaunchTemplateVersion.N`, each once, in request order.
    pub versions: Vec<u64>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Why a version was not deleted: `ResponseError`'s code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// One of EC2's `LaunchTemplateErrorCode`s.
    pub code: &'static str,
    /// The message.
    pub message: &'static str,
}

/// A version that does not exist (any more).
const NO_SUCH_VERSION: Refusal = Refusal {
    code: "launchTemplateVersionDoesNotExist",
    message: "The specified launch template version does not exist.",
};

/// The default version: EC2 refuses to delete it ("you must first assign a different version
/// as the default"); its error codes have no dedicated one, so it is `unexpectedError`.
const DEFAULT_VERSION: Refusal = Refusal {
    code: "unexpectedError",
    message: "The default version of a launch template cannot be deleted. Set another version as the default first, or delete the launch template.",
};

/// What happened to each version asked for, in request order.
#[derive(Debug, Clone)]
pub struct Response {
    /// The template (as it was before).
    pub template: LaunchTemplate,
    /// Each version number with `None` when it was deleted, else why not.
    pub outcomes: Vec<(u64, Option<Refusal>)>,
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let template = launch_templates::required_template_ref(params, "delete its versions")?;
    let raw = params.list("LaunchTemplateVersion");
    if raw.is_empty() {
        return Err(ApiError::missing_parameter("LaunchTemplateVersion"));
    }
    if raw.len() > MAX_DELETE_VERSIONS {
        return Err(ApiError::invalid_value(format!(
            "You can specify up to {MAX_DELETE_VERSIONS} launch template version numbers in a single request."
        )));
    }
    let mut versions = Vec::with_capacity(raw.len());
    for text in raw {
        let number = match crate::model::VersionRef::parse(text) {
            Some(crate::model::VersionRef::Number(n)) => n,
            _ => {
                return Err(ApiError::invalid_value(format!(
                    "Value ({text}) for parameter LaunchTemplateVersion is invalid. Expected a version number."
                )))
            }
        };
        if !versions.contains(&number) {
            versions.push(number);
        }
    }
    Ok(Request {
        template,
        versions,
        dry_run: kind::dry_run(params)?,
    })
}

/// Deletes in one compare-and-swap of the template every version that exists and is not
/// its default (checked against the record written, so a concurrent ModifyLaunchTemplate
/// can never leave the default deleted).
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    let template = launch_templates::existing(state, region, &req.template)?;
    kind::check_dry_run(req.dry_run)?;
    let mut outcomes = Vec::new();
    let (before, _) =
        state
            .store
            .launch_templates()
            .update_spec(&template.metadata.name, |current| {
                outcomes = req
                    .versions
                    .iter()
                    .map(|&n| {
                        let refusal = if n == current.spec.default_version_number {
                            Some(DEFAULT_VERSION)
                        } else if current.spec.versions.iter().any(|v| v.version_number == n) {
                            None
                        } else {
                            Some(NO_SUCH_VERSION)
                        };
                        (n, refusal)
                    })
                    .collect();
                let doomed: Vec<u64> = outcomes
                    .iter()
                    .filter(|(_, refusal)| refusal.is_none())
                    .map(|(n, _)| *n)
                    .collect();
                current
                    .spec
                    .versions
                    .retain(|v| !doomed.contains(&v.version_number));
                Ok::<bool, ApiError>(!doomed.is_empty())
            })?;
    tracing::info!(launch_template_id = %before.metadata.name, deleted = outcomes.iter().filter(|(_, r)| r.is_none()).count(), "launch template versions deleted");
    Ok(Response {
        template: before,
        outcomes,
    })
}

/// `successfullyDeletedLaunchTemplateVersionSet` and `unsuccessfullyDeletedLaunchTemplateVersionSet`.
pub fn render(resp: &Response) -> String {
    let id = &resp.template.metadata.name;
    let name = &resp.template.spec.launch_template_name;
    let mut w = XmlWriter::new();
    w.set(
        "successfullyDeletedLaunchTemplateVersionSet",
        resp.outcomes.iter().filter(|(_, r)| r.is_none()),
        |w, (number, _)| {
            w.field("launchTemplateId", id);
            w.field("launchTemplateName", name);
            w.field("versionNumber", number);
        },
    );
    w.set(
        "unsuccessfullyDeletedLaunchTemplateVersionSet",
        resp.outcomes
            .iter()
            .filter_map(|(n, r)| r.as_ref().map(|r| (n, r))),
        |w, (number, refusal)| {
            w.field("launchTemplateId", id);
            w.field("launchTemplateName", name);
            w.field("versionNumber", number);
            w.el("responseError", |w| {
                w.field("code", refusal.code);
                w.field("message", refusal.message);
            });
        },
    );
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbers_one_to_two_hundred() {
        let q = |s: &str| parse(&QueryParams::from_query(s));
        let req = q("LaunchTemplateName=web&LaunchTemplateVersion.1=3&LaunchTemplateVersion.2=2&LaunchTemplateVersion.3=3").unwrap();
        assert_eq!(req.versions, vec![3, 2]);
        assert_eq!(
            q("LaunchTemplateName=web").unwrap_err().code,
            "MissingParameter"
        );
        assert_eq!(
            q("LaunchTemplateName=web&LaunchTemplateVersion.1=$Latest")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        let many: String = (1..=201)
            .map(|n| format!("&LaunchTemplateVersion.{n}={n}"))
            .collect();
        assert_eq!(
            q(&format!("LaunchTemplateName=web{many}"))
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
    }
}
