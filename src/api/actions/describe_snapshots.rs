//! `DescribeSnapshots`: the snapshot kind's Describe (`SnapshotId.N`, filters, `MaxResults`/`NextToken`), narrowed by `Owner.N` and `RestorableBy.N`.

use crate::api::error::ApiError;
use crate::api::kind::{render_page, Describe};
use crate::api::kinds::SnapshotKind;
use crate::api::paging::MAX_PAGE;
use crate::api::query::QueryParams;
use crate::api::snapshots::restorable_by;
use crate::api::state::ApiState;
use crate::model::{Snapshot, ACCOUNT_ID};

/// `Owner.N` as botocore sends `OwnerIds`; `OwnerId.N` is accepted too.
fn owners(params: &QueryParams) -> Vec<&str> {
    let mut all = params.list("Owner");
    all.extend(params.list("OwnerId"));
    all
}

/// `RestorableBy.N` as botocore sends `RestorableByUserIds`; `RestorableByUserId.N` too.
fn restorable_users(params: &QueryParams) -> Vec<&str> {
    let mut all = params.list("RestorableBy");
    all.extend(params.list("RestorableByUserId"));
    all
}

/// Whether the owners named select the snapshot (any of them; none selects all). Every
/// snapshot ec2d holds is the account's: `self` and the account id select it; `amazon` (an
/// owner alias) and other accounts do not.
fn owned_by(owners: &[&str]) -> bool {
    owners.is_empty() || owners.iter().any(|o| *o == "self" || *o == ACCOUNT_ID)
}

/// Whether the accounts named may all create volumes from it (any of them; none selects all):
/// `self` is the account, `all` asks for public snapshots.
fn restorable(snapshot: &Snapshot, users: &[&str]) -> bool {
    users.is_empty()
        || users.iter().any(|user| match *user {
            "self" => restorable_by(snapshot, ACCOUNT_ID),
            "all" => snapshot
                .spec
                .create_volume_permissions
                .iter()
                .any(|p| p == "all"),
            account => restorable_by(snapshot, account),
        })
}

/// The dispatch entry. A `MaxResults` over 1000 returns 1000, as EC2's reference says.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let mut request = Describe::<SnapshotKind>::parse(params)?;
    let max = usize::try_from(MAX_PAGE).unwrap_or(usize::MAX);
    request.max_results = request.max_results.map(|n| n.min(max));
    let owners = owners(params);
    let users = restorable_users(params);
    let page = request.select_where(state, region, |s| {
        owned_by(&owners) && restorable(s, &users)
    })?;
    Ok(render_page::<SnapshotKind>(&page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::new_snapshot;

    #[test]
    fn owners_and_restorable_users() {
        assert!(owned_by(&[]));
        assert!(owned_by(&["self"]));
        assert!(owned_by(&["amazon", ACCOUNT_ID]));
        assert!(!owned_by(&["amazon"]));
        assert!(!owned_by(&["123456789012"]));

        let spec = crate::model::fixtures::snapshot_spec("vol-12345678", 1);
        let mut s = new_snapshot("snap-12345678", "us-east-1", spec, crate::model::now());
        assert!(restorable(&s, &[]));
        assert!(restorable(&s, &["self"]));
        assert!(restorable(&s, &[ACCOUNT_ID]));
        assert!(!restorable(&s, &["123456789012"]));
        assert!(!restorable(&s, &["all"]));
        s.spec.create_volume_permissions = vec!["123456789012".into()];
        assert!(restorable(&s, &["123456789012"]));
        assert!(!restorable(&s, &["210987654321"]));
        s.spec.create_volume_permissions = vec!["all".into()];
        assert!(restorable(&s, &["210987654321"]));
        assert!(restorable(&s, &["all"]));
    }

    #[test]
    fn page_sizes() {
        let parse = |q: &str| Describe::<SnapshotKind>::parse(&QueryParams::from_query(q));
        assert_eq!(parse("MaxResults=5").ok().unwrap().max_results, Some(5));
        assert_eq!(
            parse("MaxResults=4").err().unwrap().message,
            "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."
        );
        assert_eq!(
            parse("SnapshotId.1=snapshot-1").err().unwrap().code,
            "InvalidSnapshotID.Malformed"
        );
        assert_eq!(
            parse("NextToken=bm90LWFuLWlk").err().unwrap().code,
            "InvalidNextToken"
        );
    }
}
