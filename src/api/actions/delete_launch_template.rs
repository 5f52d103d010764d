//! `DeleteLaunchTemplate`: removes a template and all its versions, and frees its name.

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::launch_templates::{self, TemplateRef};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::LaunchTemplate;

use super::modify_launch_template::render;

/// A validated DeleteLaunchTemplate request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `LaunchTemplateId` or `LaunchTemplateName`.
    pub template: TemplateRef,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    Ok(Request {
        template: launch_templates::required_template_ref(params, "delete the template")?,
        dry_run: kind::dry_run(params)?,
    })
}

/// Deletes the template; returns it as it was. A concurrent delete that won is `NotFound`.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<LaunchTemplate, ApiError> {
    let template = launch_templates::existing(state, region, &req.template)?;
    kind::check_dry_run(req.dry_run)?;
    let deleted = state
        .store
        .delete_launch_template(&template.metadata.name)?
        .ok_or_else(|| req.template.not_found())?;
    tracing::info!(launch_template_id = %deleted.metadata.name, name = %deleted.spec.launch_template_name, "launch template deleted");
    Ok(deleted)
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}
