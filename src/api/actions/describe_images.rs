//! `DescribeImages`: the image kind's Describe (CreateImage records of the region plus the Docker AMI catalog), narrowed by `Owner.N`.

use crate::api::error::ApiError;
use crate::api::kind::{render_page, Describe};
use crate::api::kinds::ImageKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::ACCOUNT_ID;

/// Whether `Owner.N` selects ec2d's AMIs: `self` or the account id; `amazon`, `aws-marketplace`
/// and other accounts own nothing here.
fn owned_by_any(owners: &[&str]) -> bool {
    owners.is_empty() || owners.iter().any(|o| *o == "self" || *o == ACCOUNT_ID)
}

/// The dispatch entry. `ExecutableBy.N` is ignored: every AMI is launchable by the one
/// account ec2d has.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let mut page = Describe::<ImageKind>::parse(params)?.select(state, region)?;
    if !owned_by_any(&params.list("Owner")) {
        page.items.clear();
    }
    Ok(render_page::<ImageKind>(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ids_owners_filters() {
        let req = Describe::<ImageKind>::parse(&QueryParams::from_query(
            "ImageId.1=ami-1&ImageId.2=ami-1&Owner.1=self&ExecutableBy.1=all&Filter.1.Name=name&Filter.1.Value.1=web*",
        ))
        .ok()
        .unwrap();
        assert_eq!(req.refs.len(), 1);
        assert_eq!(req.filters.len(), 1);
        let e = Describe::<ImageKind>::parse(&QueryParams::from_query("ImageId.1=image-1"))
            .err()
            .unwrap();
        assert_eq!(e.code, "InvalidAMIID.Malformed");
        let e = Describe::<ImageKind>::parse(&QueryParams::from_query("Filter.1.Name=colour"))
            .err()
            .unwrap();
        assert_eq!(e.message, "The filter 'colour' is invalid");
    }

    #[test]
    fn owners() {
        assert!(owned_by_any(&[]));
        assert!(owned_by_any(&["self"]));
        assert!(owned_by_any(&["amazon", ACCOUNT_ID]));
        assert!(!owned_by_any(&["amazon"]));
        assert!(!owned_by_any(&["123456789012"]));
    }
}
