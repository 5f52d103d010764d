//! `RunInstances`: validates the launch, resolves the AMI from the store and writes MaxCount desired-running instances in one reservation.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
use crate::api::ApiState;
use crate::config::VmManager;
use crate::model::{
    now, DesiredState, ImageId, ImageState, Instance, InstanceId, InstanceSpec, InstanceStatus,
    Object, ObjectMeta, ReservationId, ShutdownBehavior, ACCOUNT_ID, API_VERSION, INSTANCE_KIND,
    VM_MANAGER_TAG,
};

use super::describe_availability_zones::zone_names;
use super::render::render_instance;
use super::shared;

/// The most instances one call may launch.
pub const MAX_COUNT_LIMIT: i64 = 1000;

/// The instance type used when the request names none (EC2's historical default).
pub const DEFAULT_INSTANCE_TYPE: &str = "m1.small";

/// A validated RunInstances request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The AMI to launch.
    pub image_id: ImageId,
    /// How many instances to launch (MaxCount; ec2d always has the capacity).
    pub count: u32,
    /// `InstanceType`.
    pub instance_type: String,
    /// Tags of `TagSpecification`s with `ResourceType=instance`.
    pub tags: BTreeMap<String, String>,
    /// `InstanceInitiatedShutdownBehavior`.
    pub shutdown_behavior: ShutdownBehavior,
    /// `Placement.AvailabilityZone`, checked against the region in `handle`.
    pub availability_zone: Option<String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// What was launched.
#[derive(Debug, Clone)]
pub struct Response {
    /// The reservation shared by all instances.
    pub reservation_id: ReservationId,
    /// The instances, in launch-index order.
    pub instances: Vec<Instance>,
}

fn count(params: &QueryParams, name: &str, xml_name: &str) -> Result<i64, ApiError> {
    let n = params
        .int(name)?
        .ok_or_else(|| ApiError::missing_parameter(name))?;
    if n < 1 {
        return Err(ApiError::invalid_value(format!(
            "Value ({n}) for parameter {xml_name} is invalid. Expected a positive integer."
        )));
    }
    Ok(n)
}

/// Instance types look like `t3.micro`; the family and size are not checked against a catalogue.
fn valid_instance_type(s: &str) -> bool {
    let Some((family, size)) = s.split_once('.') else {
        return false;
    };
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    s.len() <= 64 && ok(family) && ok(size)
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let image_id = ImageId::parse(params.require("ImageId")?)?;
    let min = count(params, "MinCount", "minCount")?;
    let max = count(params, "MaxCount", "maxCount")?;
    if min > max {
        return Err(ApiError::invalid_value(format!(
            "Value ({min}) for parameter minCount is invalid. Expected a value less than or equal to maxCount ({max})."
        )));
    }
    if max > MAX_COUNT_LIMIT {
        return Err(ApiError::invalid_value(format!(
            "Value ({max}) for parameter maxCount is invalid. Expected a value less than or equal to {MAX_COUNT_LIMIT}."
        )));
    }
    let instance_type = params.get("InstanceType").unwrap_or(DEFAULT_INSTANCE_TYPE);
    if !valid_instance_type(instance_type) {
        return Err(ApiError::invalid_value(format!(
            "Invalid value '{instance_type}' for InstanceType."
        )));
    }
    let shutdown_behavior = match params.get("InstanceInitiatedShutdownBehavior") {
        None | Some("stop") => ShutdownBehavior::Stop,
        Some("terminate") => ShutdownBehavior::Terminate,
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter instanceInitiatedShutdownBehavior is invalid. Expected 'stop' or 'terminate'."
            )))
        }
    };
    // `ClientToken` is accepted and ignored: idempotency needs the token stored on the
    // instance spec, which the model does not have yet.
    Ok(Request {
        image_id,
        count: u32::try_from(max).expect("bounded by MAX_COUNT_LIMIT"),
        instance_type: instance_type.to_string(),
        tags: shared::tag_specifications(params, "instance")?,
        shutdown_behavior,
        availability_zone: params
            .get("Placement.AvailabilityZone")
            .filter(|z| !z.is_empty())
            .map(str::to_string),
        dry_run: shared::dry_run(params)?,
    })
}

/// Resolves the container image of the AMI from the store only: in Docker mode the AMI must be
/// known and available; in mock mode any well-formed id launches.
fn image_ref(state: &ApiState, region: &str, id: &ImageId) -> Result<String, ApiError> {
    let image = shared::find_image(state, region, id)?;
    match state.vm_manager {
        VmManager::Docker => match image {
            Some(image) if image.display_state() == ImageState::Available => {
                Ok(image.spec.reference)
            }
            _ => Err(ApiError::images_not_found(&[id.to_string()])),
        },
        VmManager::Mock => Ok(image
            .map(|i| i.spec.reference)
            .unwrap_or_else(|| id.to_string())),
    }
}

/// Checks the zone and the AMI, then writes all instances in one store call.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    let zones = zone_names(region);
    let availability_zone = match req.availability_zone {
        Some(zone) if zones.contains(&zone) => zone,
        Some(zone) => {
            return Err(ApiError::invalid_value(format!(
                "Invalid availability zone: [{zone}]"
            )))
        }
        None => zones[0].clone(),
    };
    let image_ref = image_ref(state, region, &req.image_id)?;
    shared::check_dry_run(req.dry_run)?;

    let mut tags = req.tags;
    if state.vm_manager == VmManager::Docker {
        tags.insert(VM_MANAGER_TAG.to_string(), "docker".to_string());
    }
    let reservation_id = ReservationId::generate();
    // One timestamp for the whole reservation: it is launched by one call.
    let launched_at = now();
    let instances: Vec<Instance> = (0..req.count)
        .map(|index| {
            let id = InstanceId::generate();
            Object {
                api_version: API_VERSION.to_string(),
                kind: INSTANCE_KIND.to_string(),
                metadata: ObjectMeta::new(id.as_str(), region, launched_at),
                spec: InstanceSpec {
                    image_id: req.image_id.clone(),
                    image_ref: image_ref.clone(),
                    instance_type: req.instance_type.clone(),
                    desired: DesiredState::Running,
                    reservation_id: reservation_id.clone(),
                    ami_launch_index: index,
                    availability_zone: availability_zone.clone(),
                    shutdown_behavior: req.shutdown_behavior,
                    tags: tags.clone(),
                    key_name: None,
                    public_key: None,
                    user_data: None,
                    security_groups: Vec::new(),
                    ports: Vec::new(),
                    subnet_id: None,
                    vpc_id: None,
                    client_token: None,
                    user_transition_at: None,
                },
                status: InstanceStatus::default(),
            }
        })
        .collect();
    state.store.instances().create(&instances)?;
    tracing::info!(
        reservation_id = %reservation_id,
        count = instances.len(),
        image_id = %req.image_id,
        %region,
        "instances requested"
    );
    Ok(Response {
        reservation_id,
        instances,
    })
}

/// `reservationId`, `ownerId`, `groupSet`, `instancesSet`.
pub fn render(resp: &Response) -> String {
    let mut w = XmlWriter::new();
    w.field("reservationId", &resp.reservation_id);
    w.field("ownerId", ACCOUNT_ID);
    w.empty("groupSet");
    w.set("instancesSet", &resp.instances, |w, i| {
        render_instance(w, i)
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
    fn minimal_request_gets_defaults() {
        let req = parse_str("ImageId=ami-000001&MinCount=1&MaxCount=3").unwrap();
        assert_eq!(req.image_id.as_str(), "ami-000001");
        assert_eq!(req.count, 3);
        assert_eq!(req.instance_type, "m1.small");
        assert_eq!(req.shutdown_behavior, ShutdownBehavior::Stop);
        assert_eq!(req.availability_zone, None);
        assert!(!req.dry_run);
        assert!(req.tags.is_empty());
    }

    #[test]
    fn full_request() {
        let req = parse_str(
            "ImageId=ami-000001&MinCount=2&MaxCount=2&InstanceType=t3.micro&InstanceInitiatedShutdownBehavior=terminate\
             &Placement.AvailabilityZone=us-west-2b&DryRun=true&TagSpecification.1.ResourceType=instance\
             &TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=web&ClientToken=abc",
        )
        .unwrap();
        assert_eq!(req.count, 2);
        assert_eq!(req.instance_type, "t3.micro");
        assert_eq!(req.shutdown_behavior, ShutdownBehavior::Terminate);
        assert_eq!(req.availability_zone.as_deref(), Some("us-west-2b"));
        assert!(req.dry_run);
        assert_eq!(req.tags["Name"], "web");
    }

    #[test]
    fn errors() {
        let code = |q: &str| parse_str(q).unwrap_err().code.to_string();
        let msg = |q: &str| parse_str(q).unwrap_err().message;
        assert_eq!(
            msg("MinCount=1&MaxCount=1"),
            "The request must contain the parameter ImageId"
        );
        assert_eq!(
            code("ImageId=rocket&MinCount=1&MaxCount=1"),
            "InvalidAMIID.Malformed"
        );
        assert_eq!(
            msg("ImageId=rocket&MinCount=1&MaxCount=1"),
            "Invalid id: \"rocket\" (expecting \"ami-...\")"
        );
        assert_eq!(
            msg("ImageId=ami-1&MaxCount=1"),
            "The request must contain the parameter MinCount"
        );
        assert_eq!(
            msg("ImageId=ami-1&MinCount=1"),
            "The request must contain the parameter MaxCount"
        );
        assert_eq!(
            msg("ImageId=ami-1&MinCount=0&MaxCount=1"),
            "Value (0) for parameter minCount is invalid. Expected a positive integer."
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=3&MaxCount=2"),
            "InvalidParameterValue"
        );
        assert_eq!(
            msg("ImageId=ami-1&MinCount=1&MaxCount=1001"),
            "Value (1001) for parameter maxCount is invalid. Expected a value less than or equal to 1000."
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=x&MaxCount=1"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=1&MaxCount=1&InstanceInitiatedShutdownBehavior=explode"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=1&MaxCount=1&InstanceType=%3Cscript%3E"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=1&MaxCount=1&DryRun=perhaps"),
            "InvalidParameterValue"
        );
    }

    #[test]
    fn instance_types() {
        assert!(valid_instance_type("t3.micro"));
        assert!(valid_instance_type("m7i-flex.large"));
        assert!(!valid_instance_type("micro"));
        assert!(!valid_instance_type("T3.micro"));
        assert!(!valid_instance_type("t3."));
    }
}
