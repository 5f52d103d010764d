//! `GetConsoleOutput`: the instance's console output (its container's log, as the reconciler last copied it), base64, with the copy's time.

use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{instances, kind};
use crate::model::{format_timestamp, ConsoleOutput, Instance, InstanceId};

/// A validated GetConsoleOutput request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `InstanceId`.
    pub instance_id: InstanceId,
    /// `Latest`: accepted and validated. The copy is always the latest ec2d has (EC2's
    /// default answer is a snapshot from around the last state change; its `Latest` asks the
    /// serial console), and every request asks for a fresher one.
    pub latest: bool,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates the request.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    Ok(Request {
        instance_id: InstanceId::parse(params.require("InstanceId")?)?,
        latest: params.bool("Latest")?.unwrap_or(false),
        dry_run: kind::dry_run(params)?,
    })
}

/// Reads the instance in the caller's region and the console output kept for it, and nudges
/// the reconciler to copy the log again, so a client that polls sees new output soon. The
/// handler itself never asks the engine.
pub fn handle(
    state: &ApiState,
    region: &str,
    req: &Request,
) -> Result<(Arc<Instance>, Option<ConsoleOutput>), ApiError> {
    let instance =
        instances::load_instances(state, region, std::slice::from_ref(&req.instance_id))?
            .pop()
            .expect("load_instances returns one instance per id");
    kind::check_dry_run(req.dry_run)?;
    let console = state.store.console_output(&instance.metadata.name)?;
    // Only a container that exists and whose instance is not failing has a log worth reading
    // again; a failing instance waits out its backoff, whatever clients poll.
    if instance.status.container.is_some() && instance.status.last_error.is_none() {
        state.nudge.instance(&req.instance_id);
    }
    Ok((instance, console))
}

/// `instanceId`, `timestamp` and, when the instance printed anything, `output` (base64). EC2
/// leaves `output` out while there is none; the time is then the launch time, since the
/// (empty) output has not changed since.
pub fn render(instance: &Instance, console: Option<&ConsoleOutput>) -> String {
    let mut w = XmlWriter::new();
    w.field("instanceId", &instance.metadata.name);
    let updated = console.map_or(instance.metadata.creation_timestamp, |c| c.updated_at);
    w.field("timestamp", format_timestamp(updated));
    w.opt_field(
        "output",
        console.filter(|c| !c.is_empty()).map(|c| c.output.as_str()),
    );
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let req = parse(params)?;
    let (instance, console) = handle(state, region, &req)?;
    Ok(render(&instance, console.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    #[test]
    fn parse_errors() {
        let e = parse(&QueryParams::from_query("Latest=true")).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        let e = parse(&QueryParams::from_query("InstanceId=i-xyz")).unwrap_err();
        assert_eq!(e.code, "InvalidInstanceID.Malformed");
        let e = parse(&QueryParams::from_query(
            "InstanceId=i-00000001&Latest=maybe",
        ))
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        let req = parse(&QueryParams::from_query(
            "InstanceId=i-00000001&Latest=TRUE",
        ))
        .unwrap();
        assert!(req.latest && !req.dry_run);
    }

    #[test]
    fn output_is_left_out_until_there_is_some() {
        let instance = fixtures::instance();
        let launched = format_timestamp(instance.metadata.creation_timestamp);
        let none = render(&instance, None);
        assert_eq!(
            none,
            format!(
                "<instanceId>{}</instanceId><timestamp>{launched}</timestamp>",
                instance.metadata.name
            )
        );
        let at = crate::model::now();
        let empty = ConsoleOutput::new("c1", b"", at, None);
        assert!(!render(&instance, Some(&empty)).contains("<output>"));
        let copy = ConsoleOutput::new("c1", b"<hello & bye>\n", at, None);
        let xml = render(&instance, Some(&copy));
        assert!(xml.contains(&format!("<timestamp>{}</timestamp>", format_timestamp(at))));
        assert!(
            xml.ends_with("<output>PGhlbGxvICYgYnllPgo=</output>"),
            "{xml}"
        );
    }
}
