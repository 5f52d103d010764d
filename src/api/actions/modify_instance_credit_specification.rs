//! `ModifyInstanceCreditSpecification`: sets the CPU credit option of burstable instances, each succeeding or failing on its own.

use crate::api::error::ApiError;
use crate::api::instance_options::cpu_credits;
use crate::api::kinds::credit_specification::check_has_credits;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{instances, kind};
use crate::model::{CpuCredits, InstanceId, InstanceState};

/// One `InstanceCreditSpecification.N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `InstanceId` as sent (checked per entry: a bad one fails only its entry).
    pub instance_id: String,
    /// `CpuCredits`.
    pub credits: CpuCredits,
}

/// A validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The entries, in request order.
    pub entries: Vec<Entry>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Reads the entries; a missing or unknown `CpuCredits` fails the whole call.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let mut entries = Vec::new();
    for entry in params.structs("InstanceCreditSpecification") {
        let instance_id = entry.require("InstanceId")?.to_string();
        let credits = cpu_credits(&entry, "CpuCredits")?
            .ok_or_else(|| ApiError::missing_parameter("CpuCredits"))?;
        entries.push(Entry {
            instance_id,
            credits,
        });
    }
    if entries.is_empty() {
        return Err(ApiError::missing_parameter("InstanceCreditSpecification"));
    }
    Ok(Request {
        entries,
        dry_run: kind::dry_run(params)?,
    })
}

/// Why one entry failed: EC2's `UnsuccessfulInstanceCreditSpecificationItemError`.
type Failure = (String, &'static str, String);

/// Applies one entry; `Err` is that entry's failure.
fn apply(state: &ApiState, region: &str, entry: &Entry) -> Result<(), ApiError> {
    let id = InstanceId::parse(&entry.instance_id)?;
    let instance = instances::load_instances(state, region, std::slice::from_ref(&id))?
        .pop()
        .expect("one instance per id");
    check_has_credits(&instance)?;
    state
        .store
        .instances()
        .update_spec_same_generation::<ApiError>(id.as_str(), |obj| {
            if instances::shown_state(obj) == InstanceState::Terminated {
                return Err(ApiError::client(
                    "IncorrectInstanceState",
                    format!(
                        "The instance '{}' is not in a state from which it can be modified.",
                        obj.metadata.name
                    ),
                ));
            }
            let before = obj.spec.options.cpu_credits;
            obj.spec.options.cpu_credits = Some(entry.credits);
            Ok(before != obj.spec.options.cpu_credits)
        })?;
    Ok(())
}

/// Applies every entry after `DryRun`; failures of one entry are reported, not raised.
pub fn handle(
    state: &ApiState,
    region: &str,
    req: &Request,
) -> Result<(Vec<String>, Vec<Failure>), ApiError> {
    kind::check_dry_run(req.dry_run)?;
    let mut succeeded = Vec::new();
    let mut failed = Vec::new();
    for entry in &req.entries {
        match apply(state, region, entry) {
            Ok(()) => {
                tracing::info!(instance_id = %entry.instance_id, credits = entry.credits.as_str(), "credit option modified");
                succeeded.push(entry.instance_id.clone());
            }
            Err(e) if e.is_server_error() => return Err(e),
            Err(e) => failed.push((entry.instance_id.clone(), entry_code(&e), e.message)),
        }
    }
    Ok((succeeded, failed))
}

/// The entry error codes EC2 documents; anything else is reported as the instance's state.
fn entry_code(error: &ApiError) -> &'static str {
    match error.code.as_ref() {
        "InvalidInstanceID.Malformed" => "InvalidInstanceID.Malformed",
        "InvalidInstanceID.NotFound" => "InvalidInstanceID.NotFound",
        "InstanceCreditSpecification.NotSupported" => "InstanceCreditSpecification.NotSupported",
        _ => "IncorrectInstanceState",
    }
}

/// `successfulInstanceCreditSpecificationSet` and `unsuccessfulInstanceCreditSpecificationSet`.
pub fn render(succeeded: &[String], failed: &[Failure]) -> String {
    let mut w = XmlWriter::new();
    w.set(
        "successfulInstanceCreditSpecificationSet",
        succeeded,
        |w, id| w.field("instanceId", id),
    );
    w.set(
        "unsuccessfulInstanceCreditSpecificationSet",
        failed,
        |w, (id, code, message)| {
            w.field("instanceId", id);
            w.el("error", |w| {
                w.field("code", code);
                w.field("message", message);
            });
        },
    );
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let req = parse(params)?;
    let (succeeded, failed) = handle(state, region, &req)?;
    Ok(render(&succeeded, &failed))
}
