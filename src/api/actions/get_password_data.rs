//! `GetPasswordData`: an instance's encrypted Windows administrator password, which a Linux container never has (empty, as EC2 answers for Linux instances).

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{instances, kind};
use crate::model::{format_timestamp, InstanceId};

/// The dispatch entry: `instanceId`, `timestamp` (the launch: nothing has been generated
/// since) and an empty `passwordData`, so `password_data_available` waiters keep waiting
/// as they do for a Linux instance on EC2.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let instance_id = InstanceId::parse(params.require("InstanceId")?)?;
    let dry_run = kind::dry_run(params)?;
    let instance = instances::load_instances(state, region, std::slice::from_ref(&instance_id))?
        .pop()
        .expect("load_instances returns one instance per id");
    kind::check_dry_run(dry_run)?;
    let mut w = XmlWriter::new();
    w.field("instanceId", &instance.metadata.name);
    w.field(
        "timestamp",
        format_timestamp(instance.metadata.creation_timestamp),
    );
    w.field("passwordData", "");
    Ok(w.finish())
}
