//! `StartInstances`: asks for desired=running again; answers stopped→pending.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::ApiState;

use super::state_change::{self, Change, Op, Request};

/// Parses `InstanceId.N` and `DryRun` (`AdditionalInfo` is ignored).
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    state_change::parse(params)
}

/// Validates all ids, then records the start wish for each.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Vec<Change>, ApiError> {
    state_change::handle(state, region, Op::Start, req)
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(state_change::render(&handle(
        state,
        region,
        parse(params)?,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ids() {
        let req = parse(&QueryParams::from_query(
            "InstanceId.2=i-00000002&InstanceId.1=i-00000001&DryRun=true",
        ))
        .unwrap();
        let ids: Vec<_> = req.ids.iter().map(|i| i.as_str()).collect();
        assert_eq!(ids, vec!["i-00000001", "i-00000002"]);
        assert!(req.dry_run);
        let e = parse(&QueryParams::from_query("InstanceId.1=nope")).unwrap_err();
        assert_eq!(e.code, "InvalidInstanceID.Malformed");
    }
}
