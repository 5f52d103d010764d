//! `ModifyLaunchTemplate`: sets which version of a template is its default.

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::launch_templates::{self, TemplateRef};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{LaunchTemplate, VersionRef};

/// A validated ModifyLaunchTemplate request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `LaunchTemplateId` or `LaunchTemplateName`.
    pub template: TemplateRef,
    /// `SetDefaultVersion`, as given; `None` changes nothing.
    pub default_version: Option<String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// `InvalidLaunchTemplateId.VersionNotFound` as ModifyLaunchTemplate words it.
fn default_not_found(version: &str) -> ApiError {
    ApiError::client(
        "InvalidLaunchTemplateId.VersionNotFound",
        format!(
            "The launch template version {version} is not found for the specified launch template."
        ),
    )
}

/// Parses and validates everything that needs no store (`ClientToken` is checked and, as
/// the change is idempotent itself, needs nothing more).
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let template = launch_templates::required_template_ref(params, "modify the template")?;
    launch_templates::client_token(params)?;
    Ok(Request {
        template,
        default_version: params
            .get("SetDefaultVersion")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        dry_run: kind::dry_run(params)?,
    })
}

/// The version number `text` names in `template`, if it exists.
fn resolve(template: &LaunchTemplate, text: &str) -> Result<u64, ApiError> {
    VersionRef::parse(text)
        .and_then(|r| template.spec.version(r))
        .map(|v| v.version_number)
        .ok_or_else(|| default_not_found(text))
}

/// Checks the version exists, then makes it the default (in a compare-and-swap that checks
/// again, so a version deleted meanwhile is never made the default).
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<LaunchTemplate, ApiError> {
    let template = launch_templates::existing(state, region, &req.template)?;
    if let Some(text) = &req.default_version {
        resolve(&template, text)?;
    }
    kind::check_dry_run(req.dry_run)?;
    let Some(text) = &req.default_version else {
        return Ok(template);
    };
    let (_, after) =
        state
            .store
            .launch_templates()
            .update_spec(&template.metadata.name, |current| {
                let number = resolve(current, text)?;
                if current.spec.default_version_number == number {
                    return Ok::<bool, ApiError>(false);
                }
                current.spec.default_version_number = number;
                Ok(true)
            })?;
    tracing::info!(launch_template_id = %after.metadata.name, default_version = after.spec.default_version_number, "launch template default version set");
    Ok(after)
}

/// `launchTemplate`.
pub fn render(template: &LaunchTemplate) -> String {
    let mut w = XmlWriter::new();
    w.el("launchTemplate", |w| {
        launch_templates::render_template(w, template)
    });
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}
