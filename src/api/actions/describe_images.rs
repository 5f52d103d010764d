//! `DescribeImages`: the image kind's Describe (the account's AMIs of the region and the public catalogue), narrowed by `Owner.N`, `ExecutableBy.N` and `IncludeDeprecated`.

use crate::api::error::ApiError;
use crate::api::images::Ami;
use crate::api::kind::{render_page, Describe};
use crate::api::kinds::ImageKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::{format_timestamp, now, ACCOUNT_ID};

/// Whether `Owner.N` selects the AMI (any of them; none given selects all): `self` the
/// account's own, `amazon` (and any other alias) the AMIs of owners with that alias, an
/// account id that account's.
fn owned_by(ami: &Ami, owners: &[&str]) -> bool {
    owners.is_empty()
        || owners.iter().any(|owner| match *owner {
            "self" => ami.is_own(),
            other => ami.owner_id() == other || ami.owner_alias() == Some(other),
        })
}

/// Whether `ExecutableBy.N` selects the AMI (any of them; none given selects all): `all`
/// the public AMIs, `self` (or the account's id) those the account owns or was given an
/// explicit launch permission for, another account id the account's AMIs shared with it.
fn executable_by(ami: &Ami, users: &[&str]) -> bool {
    users.is_empty()
        || users.iter().any(|user| match *user {
            "all" => ami.is_public(),
            "self" => ami.shared_with(ACCOUNT_ID),
            account => ami.shared_with(account),
        })
}

/// The dispatch entry. Deprecated AMIs (only the catalogue has them) are left out unless
/// `IncludeDeprecated` is true or the request names AMIs by id, as in EC2; `IncludeDisabled`
/// is accepted (ec2d disables no AMIs).
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let request = Describe::<ImageKind>::parse(params)?;
    let owners = params.list("Owner");
    let users = params.list("ExecutableBy");
    let include_deprecated =
        params.bool("IncludeDeprecated")?.unwrap_or(false) || !request.refs.is_empty();
    params.bool("IncludeDisabled")?;
    let now = format_timestamp(now());
    let page = request.select_where(state, region, |ami| {
        owned_by(ami, &owners)
            && executable_by(ami, &users)
            && (include_deprecated || !ami.is_deprecated(&now))
    })?;
    Ok(render_page::<ImageKind>(&page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, public_amis, InstanceId};

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
    fn owners_and_executable_users() {
        let mut image =
            fixtures::committed_image(&InstanceId::parse("i-00000001").unwrap(), "mine");
        let mine = Ami::Own(image.clone());
        let amazon = Ami::Public {
            ami: public_amis::find("ami-024f768332f0").unwrap(),
            backing: None,
        };
        let canonical = Ami::Public {
            ami: public_amis::find("ami-df5de72bdb3b").unwrap(),
            backing: None,
        };
        assert!(owned_by(&mine, &[]));
        assert!(owned_by(&mine, &["self"]));
        assert!(owned_by(&mine, &["amazon", ACCOUNT_ID]));
        assert!(!owned_by(&mine, &["amazon"]));
        assert!(owned_by(&amazon, &["amazon"]));
        assert!(!owned_by(&amazon, &["self"]));
        assert!(owned_by(&amazon, &["137112412989"]));
        assert!(!owned_by(&canonical, &["amazon"]));
        assert!(owned_by(&canonical, &["099720109477"]));

        assert!(executable_by(&mine, &["self"]));
        assert!(executable_by(&mine, &[ACCOUNT_ID]));
        assert!(!executable_by(&mine, &["all"]));
        assert!(!executable_by(&mine, &["123456789012"]));
        assert!(executable_by(&amazon, &["all"]));
        assert!(!executable_by(&amazon, &["self"]));
        image.spec.launch_permissions.public = true;
        image
            .spec
            .launch_permissions
            .user_ids
            .insert("123456789012".into());
        let shared = Ami::Own(image);
        assert!(executable_by(&shared, &["all"]));
        assert!(executable_by(&shared, &["123456789012"]));
    }
}
