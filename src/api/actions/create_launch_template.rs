//! `CreateLaunchTemplate`: validates the name, the data and the template's own tags, then stores the template with its version 1 (the default); a ClientToken seen before answers its template.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::launch_templates::{self, check_name, idempotent_mismatch};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{kind, tags};
use crate::model::launch_template::new_launch_template;
use crate::model::{LaunchTemplate, LaunchTemplateData, VersionRef};
use crate::store::{StoreError, CLIENT_TOKEN_KIND};

/// A validated CreateLaunchTemplate request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `LaunchTemplateName`.
    pub name: String,
    /// `VersionDescription` of version 1.
    pub description: Option<String>,
    /// `LaunchTemplateData` of version 1.
    pub data: LaunchTemplateData,
    /// Tags of `TagSpecification`s with `ResourceType=launch-template`.
    pub tags: BTreeMap<String, String>,
    /// `ClientToken`.
    pub client_token: Option<String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// `MissingParameter` for a template without data, in EC2's words.
pub fn no_data() -> ApiError {
    ApiError::client(
        "MissingParameter",
        "No launch template data was provided. Launch template data is required to create a launch template.",
    )
}

/// The template's own tags: every `TagSpecification` must be `launch-template` (EC2's message
/// for another type, as real EC2 answered in aws-cloudformation/cloudformation-coverage-roadmap#979).
fn template_tags(params: &QueryParams) -> Result<BTreeMap<String, String>, ApiError> {
    for spec in params.structs("TagSpecification") {
        if spec
            .get("ResourceType")
            .is_some_and(|t| !t.is_empty() && t != launch_templates::TAG_RESOURCE_TYPE)
        {
            return Err(ApiError::invalid_value(
                "The value for the ResourceType member of the TagSpecification request parameter must be \u{2018}launch-template\u{2019}. Verify the ResourceType and try again.",
            ));
        }
    }
    tags::tag_specifications(params, &[launch_templates::TAG_RESOURCE_TYPE])
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let name = params.require("LaunchTemplateName")?;
    check_name(name)?;
    let data = launch_templates::parse_data(params)?;
    if data.is_empty() {
        return Err(no_data());
    }
    Ok(Request {
        name: name.to_string(),
        description: launch_templates::version_description(params)?,
        data,
        tags: template_tags(params)?,
        client_token: launch_templates::client_token(params)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// The template an earlier call with this `ClientToken` created in the region, while it
/// exists; `IdempotentParameterMismatch` when that call asked for another name or data.
fn earlier(
    state: &ApiState,
    region: &str,
    token: &str,
    req: &Request,
) -> Result<Option<LaunchTemplate>, ApiError> {
    let Some(id) = state
        .store
        .launch_template_for_client_token(region, token)?
    else {
        return Ok(None);
    };
    let Some(template) = state.store.launch_templates().get(&id)? else {
        return Ok(None);
    };
    let first = template.spec.version(VersionRef::Number(1));
    if template.spec.launch_template_name != req.name || first.is_some_and(|v| v.data != req.data) {
        return Err(idempotent_mismatch());
    }
    kind::check_dry_run(req.dry_run)?;
    Ok(Some(template))
}

/// Checks the name is free in the region, then stores the template. The store claims the
/// name (and the token) in the same transaction as the write, so neither is ever taken twice.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<LaunchTemplate, ApiError> {
    if let Some(token) = &req.client_token {
        if let Some(template) = earlier(state, region, token, &req)? {
            return Ok(template);
        }
    }
    if launch_templates::region_templates(state, region)?
        .iter()
        .any(|t| t.spec.launch_template_name == req.name)
    {
        return Err(launch_templates::name_taken());
    }
    kind::check_dry_run(req.dry_run)?;
    let template = new_launch_template(
        region,
        &req.name,
        &launch_templates::created_by(),
        (req.description.clone(), req.data.clone()),
        req.tags.clone(),
        req.client_token.clone(),
    );
    match state.store.create_launch_template(&template) {
        Ok(()) => {}
        // A concurrent call with the same token won: answer with its template.
        Err(StoreError::NameTaken { kind, name, .. }) if kind == CLIENT_TOKEN_KIND => {
            return earlier(state, region, &name, &req)?.ok_or_else(|| {
                ApiError::internal(format!("the template of ClientToken {name} vanished"))
            });
        }
        Err(StoreError::NameTaken { .. }) => return Err(launch_templates::name_taken()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(launch_template_id = %template.metadata.name, name = %req.name, %region, "launch template created");
    Ok(template)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn parses_name_data_tags_and_token() {
        let req = parse_str(
            "LaunchTemplateName=web&LaunchTemplateData.ImageId=ami-1&VersionDescription=v1\
             &TagSpecification.1.ResourceType=launch-template&TagSpecification.1.Tag.1.Key=team\
             &TagSpecification.1.Tag.1.Value=a&ClientToken=tok",
        )
        .unwrap();
        assert_eq!(req.name, "web");
        assert_eq!(req.data.text("ImageId"), Some("ami-1"));
        assert_eq!(req.description.as_deref(), Some("v1"));
        assert_eq!(req.tags["team"], "a");
        assert_eq!(req.client_token.as_deref(), Some("tok"));
    }

    #[test]
    fn errors() {
        let err = |q: &str| parse_str(q).unwrap_err();
        assert_eq!(
            err("LaunchTemplateData.ImageId=ami-1").message,
            "The request must contain the parameter LaunchTemplateName"
        );
        assert_eq!(err("LaunchTemplateName=web").message, no_data().message);
        assert_eq!(
            err("LaunchTemplateName=w&LaunchTemplateData.ImageId=ami-1").code,
            "InvalidLaunchTemplateName.MalformedException"
        );
        let e = err("LaunchTemplateName=web&LaunchTemplateData.ImageId=ami-1&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=k");
        assert_eq!(e.code, "InvalidParameterValue");
        assert!(
            e.message
                .contains("must be \u{2018}launch-template\u{2019}"),
            "{}",
            e.message
        );
        let long = "d".repeat(256);
        assert_eq!(
            err(&format!(
                "LaunchTemplateName=web&LaunchTemplateData.ImageId=ami-1&VersionDescription={long}"
            ))
            .code,
            "InvalidParameterValue"
        );
        let long = "t".repeat(129);
        assert_eq!(
            err(&format!(
                "LaunchTemplateName=web&LaunchTemplateData.ImageId=ami-1&ClientToken={long}"
            ))
            .code,
            "InvalidParameterValue"
        );
    }
}
