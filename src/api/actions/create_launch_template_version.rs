//! `CreateLaunchTemplateVersion`: adds a version to a template, its data laid over a source version's when one is named; a ClientToken seen before on the template answers its version.

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::launch_templates::{self, idempotent_mismatch, TemplateRef};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{now, LaunchTemplate, LaunchTemplateData, LaunchTemplateVersion};

use super::create_launch_template::no_data;

/// A validated CreateLaunchTemplateVersion request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `LaunchTemplateId` or `LaunchTemplateName`.
    pub template: TemplateRef,
    /// `SourceVersion`: the version whose data the new one starts from.
    pub source_version: Option<String>,
    /// `VersionDescription`.
    pub description: Option<String>,
    /// `LaunchTemplateData`: laid over the source version's, or the whole data without one.
    pub data: LaunchTemplateData,
    /// `ClientToken`.
    pub client_token: Option<String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// What was created: the template after the write and the new (or earlier) version.
#[derive(Debug, Clone)]
pub struct Created {
    /// The template.
    pub template: LaunchTemplate,
    /// The version.
    pub version: LaunchTemplateVersion,
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let template =
        launch_templates::required_template_ref(params, "create a version of the template")?;
    let data = launch_templates::parse_data(params)?;
    let source_version = params
        .get("SourceVersion")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    if data.is_empty() && source_version.is_none() {
        return Err(no_data());
    }
    Ok(Request {
        template,
        source_version,
        description: launch_templates::version_description(params)?,
        data,
        client_token: launch_templates::client_token(params)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// The version an earlier call with this token made on the template, if any;
/// `IdempotentParameterMismatch` when that call asked for other data.
fn earlier<'t>(
    template: &'t LaunchTemplate,
    req: &Request,
) -> Result<Option<&'t LaunchTemplateVersion>, ApiError> {
    let Some(token) = &req.client_token else {
        return Ok(None);
    };
    let Some(version) = template
        .spec
        .versions
        .iter()
        .find(|v| v.client_token.as_ref() == Some(token))
    else {
        return Ok(None);
    };
    if version.version_description != req.description
        || (req.source_version.is_none() && version.data != req.data)
    {
        return Err(idempotent_mismatch());
    }
    Ok(Some(version))
}

/// Checks the template and the source version, then adds the version in one
/// compare-and-swap of the template, which also hands out its number.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Created, ApiError> {
    let template = launch_templates::existing(state, region, &req.template)?;
    if let Some(source) = &req.source_version {
        launch_templates::version_of(&template, source)?;
    }
    if let Some(version) = earlier(&template, &req)? {
        kind::check_dry_run(req.dry_run)?;
        let version = version.clone();
        return Ok(Created { template, version });
    }
    kind::check_dry_run(req.dry_run)?;
    let mut made: Option<u64> = None;
    let (_, after) =
        state
            .store
            .launch_templates()
            .update_spec(&template.metadata.name, |current| {
                made = None;
                // Retried with the same token while the first call's write landed.
                if let Some(version) = earlier(current, &req)? {
                    made = Some(version.version_number);
                    return Ok(false);
                }
                let base = match &req.source_version {
                    Some(source) => launch_templates::version_of(current, source)?.data.clone(),
                    None => LaunchTemplateData::default(),
                };
                let version = current.spec.add_version(
                    req.description.clone(),
                    req.client_token.clone(),
                    base.overlaid_with(&req.data),
                    now(),
                );
                made = Some(version.version_number);
                Ok::<bool, ApiError>(true)
            })?;
    let number = made.expect("the change ran");
    let version = after
        .spec
        .versions
        .iter()
        .find(|v| v.version_number == number)
        .cloned()
        .expect("the version just made or found");
    tracing::info!(launch_template_id = %after.metadata.name, version = number, "launch template version created");
    Ok(Created {
        template: after,
        version,
    })
}

/// `launchTemplateVersion`.
pub fn render(created: &Created) -> String {
    let mut w = XmlWriter::new();
    w.el("launchTemplateVersion", |w| {
        launch_templates::render_version(w, &created.template, &created.version)
    });
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
    fn a_source_version_makes_data_optional() {
        let q = |s: &str| parse(&QueryParams::from_query(s));
        let req = q("LaunchTemplateName=web&SourceVersion=1").unwrap();
        assert!(req.data.is_empty());
        assert_eq!(req.source_version.as_deref(), Some("1"));
        assert_eq!(
            q("LaunchTemplateName=web").unwrap_err().code,
            "MissingParameter"
        );
        assert_eq!(
            q("LaunchTemplateData.ImageId=ami-1").unwrap_err().code,
            "MissingParameter"
        );
        assert_eq!(
            q("LaunchTemplateId=lt-1&LaunchTemplateData.ImageId=ami-1")
                .unwrap_err()
                .code,
            "InvalidLaunchTemplateId.Malformed"
        );
    }
}
