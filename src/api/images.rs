//! AMI reads the actions share: an AMI as a region sees it (CreateImage records of the region over the Docker catalog).

use std::collections::BTreeMap;

use super::error::ApiError;
use super::state::ApiState;
use crate::model::{Image, ImageId, ImageSource};

/// Whether an AMI is visible from `region`: Docker-discovered AMIs everywhere, CreateImage
/// records only in the region that made them.
fn visible_in(image: &Image, region: &str) -> bool {
    matches!(image.spec.source, ImageSource::Docker) || image.metadata.namespace == region
}

/// Looks an AMI up as the client in `region` sees it.
pub fn find_image(state: &ApiState, region: &str, id: &ImageId) -> Result<Option<Image>, ApiError> {
    match state.store.find_image(id.as_str())? {
        Some(image) if visible_in(&image, region) => Ok(Some(image)),
        // A CreateImage record of another region may shadow a catalog entry with the same id.
        Some(_) => Ok(state.store.catalog().get(id.as_str())?),
        None => Ok(None),
    }
}

/// Every AMI visible from `region`: CreateImage records of the region plus the Docker catalog,
/// one per id, the CreateImage record winning.
pub fn region_images(state: &ApiState, region: &str) -> Result<Vec<Image>, ApiError> {
    let mut by_id: BTreeMap<String, Image> = BTreeMap::new();
    for image in state.store.catalog().list()?.objects {
        by_id.insert(image.metadata.name.clone(), image);
    }
    for image in state.store.images().list()?.objects {
        if image.metadata.namespace == region {
            by_id.insert(image.metadata.name.clone(), image);
        }
    }
    Ok(by_id.into_values().collect())
}
