//! `ModifyInstanceAttribute`: changes one attribute of one instance (shutdown behaviour, termination and stop protection, type).

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::{InstanceId, InstanceState, ShutdownBehavior};

use crate::api::kinds::instance_type::known_type;
use crate::api::{instances, kind, render};

/// One attribute change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `InstanceInitiatedShutdownBehavior`.
    ShutdownBehavior(ShutdownBehavior),
    /// `DisableApiTermination`.
    DisableApiTermination(bool),
    /// `DisableApiStop`.
    DisableApiStop(bool),
    /// `InstanceType`: only while the instance is stopped, as in EC2. ec2d records it (it
    /// shows in DescribeInstances); a container has no size to change.
    InstanceType(String),
    /// An attribute EC2 defines that ec2d cannot change ([`NOT_MODIFIABLE`]): refused with
    /// `UnsupportedOperation`, after `DryRun` has been answered as EC2 would.
    Unsupported(&'static str),
}

/// A validated ModifyInstanceAttribute request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `InstanceId`.
    pub instance_id: InstanceId,
    /// The one change asked for.
    pub change: Change,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Attributes EC2 defines that ec2d cannot change: the groups (an instance's ports are
/// published when its container is created), user data (the container was made with it),
/// and what a container does not have.
const NOT_MODIFIABLE: &[&str] = &[
    "groupSet",
    "userData",
    "kernel",
    "ramdisk",
    "sourceDestCheck",
    "ebsOptimized",
    "enaSupport",
    "sriovNetSupport",
    "blockDeviceMapping",
];

/// The structured form's parameter for each attribute (`--instance-type Value=…` sends
/// `InstanceType.Value`), and the attribute name of the `Attribute`/`Value` form.
const FORMS: &[(&str, &str)] = &[
    (
        "InstanceInitiatedShutdownBehavior",
        "instanceInitiatedShutdownBehavior",
    ),
    ("DisableApiTermination", "disableApiTermination"),
    ("DisableApiStop", "disableApiStop"),
    ("InstanceType", "instanceType"),
    ("UserData", "userData"),
    ("SourceDestCheck", "sourceDestCheck"),
    ("EbsOptimized", "ebsOptimized"),
    ("EnaSupport", "enaSupport"),
    ("SriovNetSupport", "sriovNetSupport"),
    ("Kernel", "kernel"),
    ("Ramdisk", "ramdisk"),
];

fn boolean(attribute: &str, raw: &str) -> Result<bool, ApiError> {
    match raw.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid_value(format!(
            "Value ({raw}) for parameter {attribute} is invalid. Expected: 'true' or 'false'."
        ))),
    }
}

/// Finds the one attribute given, in either form; more than one is refused, as EC2 does.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let instance_id = InstanceId::parse(params.require("InstanceId")?)?;
    let mut given: Vec<(&str, String)> = Vec::new();
    if let Some(attribute) = params.get("Attribute").filter(|a| !a.is_empty()) {
        let value = params.get("Value").unwrap_or_default().to_string();
        given.push((attribute, value));
    }
    for (param, attribute) in FORMS {
        if let Some(value) = params.get(&format!("{param}.Value")) {
            given.push((attribute, value.to_string()));
        }
    }
    if !params.list("GroupId").is_empty() {
        given.push(("groupSet", String::new()));
    }
    if params
        .pairs()
        .iter()
        .any(|(k, _)| k.starts_with("BlockDeviceMapping."))
    {
        given.push(("blockDeviceMapping", String::new()));
    }
    let (attribute, value) = match given.as_slice() {
        [] => return Err(ApiError::missing_parameter("Attribute")),
        [one] => one.clone(),
        _ => {
            return Err(ApiError::invalid_combination(
                "Only one attribute can be modified at a time",
            ))
        }
    };
    let change = match attribute {
        "instanceInitiatedShutdownBehavior" => Change::ShutdownBehavior(match value.as_str() {
            "stop" => ShutdownBehavior::Stop,
            "terminate" => ShutdownBehavior::Terminate,
            other => {
                return Err(ApiError::invalid_value(format!(
                    "Value ({other}) for parameter instanceInitiatedShutdownBehavior is invalid. Expected 'stop' or 'terminate'."
                )))
            }
        }),
        "disableApiTermination" => {
            Change::DisableApiTermination(boolean("disableApiTermination", &value)?)
        }
        "disableApiStop" => Change::DisableApiStop(boolean("disableApiStop", &value)?),
        "instanceType" => {
            known_type(&value)?;
            Change::InstanceType(value)
        }
        other if NOT_MODIFIABLE.contains(&other) => Change::Unsupported(
            NOT_MODIFIABLE
                .iter()
                .find(|a| **a == other)
                .expect("just checked"),
        ),
        other => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Unknown attribute."
            )))
        }
    };
    Ok(Request {
        instance_id,
        change,
        dry_run: kind::dry_run(params)?,
    })
}

/// Checks the instance and the change's precondition, then writes it. None of these asks
/// anything of the reconciler, so the generation stays and the state a client sees with it.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    let instance =
        instances::load_instances(state, region, std::slice::from_ref(&req.instance_id))?
            .pop()
            .expect("load_instances returns one instance per id");
    let check = |shown: InstanceState| match &req.change {
        Change::InstanceType(_) if shown != InstanceState::Stopped => Err(ApiError::client(
            "IncorrectInstanceState",
            format!(
                "The instance '{}' is not in the 'stopped' state.",
                req.instance_id
            ),
        )),
        _ if shown == InstanceState::Terminated => Err(ApiError::client(
            "IncorrectInstanceState",
            format!(
                "The instance '{}' is not in a state from which it can be modified.",
                req.instance_id
            ),
        )),
        _ => Ok(()),
    };
    check(instances::shown_state(&instance))?;
    kind::check_dry_run(req.dry_run)?;
    if let Change::Unsupported(attribute) = req.change {
        return Err(ApiError::client(
            "UnsupportedOperation",
            format!("ec2d cannot modify the attribute '{attribute}' of an instance"),
        ));
    }
    state
        .store
        .instances()
        .update_spec_same_generation::<ApiError>(req.instance_id.as_str(), |obj| {
            check(instances::shown_state(obj))?;
            let spec = &mut obj.spec;
            let before = spec.clone();
            match &req.change {
                Change::ShutdownBehavior(b) => spec.shutdown_behavior = *b,
                Change::DisableApiTermination(on) => spec.disable_api_termination = *on,
                Change::DisableApiStop(on) => spec.disable_api_stop = *on,
                Change::InstanceType(t) => spec.instance_type = t.clone(),
                Change::Unsupported(_) => {}
            }
            Ok(*spec != before)
        })?;
    tracing::info!(instance_id = %req.instance_id, change = ?req.change, "instance attribute modified");
    Ok(())
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, parse(params)?)?;
    Ok(render::render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn both_forms_parse_to_one_change() {
        let id = "InstanceId=i-00000001";
        let change = |q: &str| parse_str(&format!("{id}&{q}")).unwrap().change;
        assert_eq!(
            change("InstanceInitiatedShutdownBehavior.Value=terminate"),
            Change::ShutdownBehavior(ShutdownBehavior::Terminate)
        );
        assert_eq!(
            change("Attribute=instanceInitiatedShutdownBehavior&Value=stop"),
            Change::ShutdownBehavior(ShutdownBehavior::Stop)
        );
        assert_eq!(
            change("DisableApiTermination.Value=true"),
            Change::DisableApiTermination(true)
        );
        assert_eq!(
            change("Attribute=disableApiStop&Value=False"),
            Change::DisableApiStop(false)
        );
        assert_eq!(
            change("InstanceType.Value=t3.large"),
            Change::InstanceType("t3.large".into())
        );
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let code = |q: &str| parse_str(q).unwrap_err().code;
        assert_eq!(
            code("Attribute=instanceType&Value=t3.large"),
            "MissingParameter"
        );
        assert_eq!(code("InstanceId=i-00000001"), "MissingParameter");
        assert_eq!(
            code("InstanceId=i-00000001&InstanceType.Value=t3.large&DisableApiStop.Value=true"),
            "InvalidParameterCombination"
        );
        assert_eq!(
            code("InstanceId=i-00000001&DisableApiTermination.Value=maybe"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("InstanceId=i-00000001&InstanceInitiatedShutdownBehavior.Value=explode"),
            "InvalidParameterValue"
        );
        let change = |q: &str| parse(&QueryParams::from_query(q)).unwrap().change;
        assert_eq!(
            change("InstanceId=i-00000001&GroupId.1=sg-0123456789abcdef0"),
            Change::Unsupported("groupSet")
        );
        assert_eq!(
            change("InstanceId=i-00000001&UserData.Value=ZWNobw=="),
            Change::Unsupported("userData")
        );
        assert_eq!(
            code("InstanceId=i-00000001&Attribute=colour&Value=red"),
            "InvalidParameterValue"
        );
    }
}
