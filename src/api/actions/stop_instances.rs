//! `StopInstances`: asks for desired=stopped (a paused container); answers running→stopping.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::ApiState;

use super::state_change::{self, Change, Op, Request};

/// Parses `InstanceId.N`, `DryRun`, and checks `Force`/`Hibernate` are booleans (both accepted
/// and ignored: ec2d's stop is a pause, there is nothing to force or hibernate).
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    params.bool("Force")?;
    params.bool("Hibernate")?;
    state_change::parse(params)
}

/// Validates all ids, then records the stop wish for each.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Vec<Change>, ApiError> {
    state_change::handle(state, region, Op::Stop, req)
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
    fn parse_accepts_force_and_rejects_garbage() {
        let req = parse(&QueryParams::from_query(
            "InstanceId.1=i-00000001&Force=true",
        ))
        .unwrap();
        assert_eq!(req.ids.len(), 1);
        let e = parse(&QueryParams::from_query(
            "InstanceId.1=i-00000001&Force=sure",
        ))
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        let e = parse(&QueryParams::from_query("Force=true")).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
    }
}
