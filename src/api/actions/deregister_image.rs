//! `DeregisterImage`: hides an own AMI at once and asks the reconciler to remove its Docker tag (the image goes with its last tag, once no container uses it) and then its record.

use crate::api::error::ApiError;
use crate::api::images::{self, Ami};
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::model::{
    now, Image, ImageId, ImageSource, ImageSpec, ImageStatus, Object, ObjectMeta, API_VERSION,
    DISCOVERED_NAMESPACE, IMAGE_KIND,
};
use crate::store::StoreError;

/// A validated DeregisterImage request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `ImageId`.
    pub image_id: ImageId,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates the request. `DeleteAssociatedSnapshots` must be a boolean and is
/// otherwise moot: ec2d's AMIs have no snapshots.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let image_id = ImageId::parse(params.require("ImageId")?)?;
    params.bool("DeleteAssociatedSnapshots")?;
    Ok(Request {
        image_id,
        dry_run: kind::dry_run(params)?,
    })
}

/// Writes the deregistration as desired state. A CreateImage or CopyImage record is marked
/// deregistered (its name is free again at once); an AMI discovered from a Docker tag gets a
/// record of its id marked so (ec2d then removes the tag, as `docker rmi` of that tag would).
/// A public AMI belongs to another account: `AuthFailure`, as EC2 answers for an AMI you do
/// not own.
pub fn handle(state: &ApiState, region: &str, req: &Request) -> Result<(), ApiError> {
    let id = &req.image_id;
    let not_found = || ApiError::images_not_found(&[id.to_string()]);
    let image = match images::find_ami(state, region, id)? {
        None => return Err(not_found()),
        Some(Ami::Public { .. }) => return Err(images::not_authorized(id.as_str())),
        Some(Ami::Own(image)) => image,
    };
    kind::check_dry_run(req.dry_run)?;
    let done = match image.spec.source {
        ImageSource::Commit { .. } | ImageSource::Copy { .. } => {
            state.store.deregister_image(id.as_str(), region)?
        }
        ImageSource::Docker => {
            let record: Image = Object {
                api_version: API_VERSION.to_string(),
                kind: IMAGE_KIND.to_string(),
                metadata: ObjectMeta::new(id.as_str(), DISCOVERED_NAMESPACE, now()),
                spec: ImageSpec {
                    deregistered: true,
                    ..image.spec.clone()
                },
                status: ImageStatus::default(),
            };
            match state.store.deregister_discovered_image(&record) {
                Ok(()) => true,
                // Deregistered by a request that came in between.
                Err(StoreError::AlreadyExists { .. }) => false,
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !done {
        return Err(not_found());
    }
    tracing::info!(image_id = %id, reference = %image.spec.reference, "image deregistration requested");
    Ok(())
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, &parse(params)?)?;
    Ok(render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_the_id_and_flags() {
        let q = |s: &str| parse(&QueryParams::from_query(s));
        assert_eq!(
            q("ImageId=ami-12345678").unwrap().image_id.as_str(),
            "ami-12345678"
        );
        assert_eq!(
            q("").unwrap_err().message,
            "The request must contain the parameter ImageId"
        );
        assert_eq!(
            q("ImageId=img-1").unwrap_err().code,
            "InvalidAMIID.Malformed"
        );
        assert_eq!(
            q("ImageId=ami-12345678&DeleteAssociatedSnapshots=maybe")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
    }
}
