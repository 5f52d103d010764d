//! `TerminateInstances`: asks for desired=terminated with a deletion timestamp; answers →shutting-down.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::ApiState;

use super::state_change::{self, Change, Op, Request};

/// Parses `InstanceId.N` and `DryRun`.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    state_change::parse(params)
}

/// Validates all ids, then records the termination for each ("if one fails, none are terminated").
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Vec<Change>, ApiError> {
    state_change::handle(state, region, Op::Terminate, req)
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
    fn parse_requires_ids() {
        let e = parse(&QueryParams::from_query("DryRun=false")).unwrap_err();
        assert_eq!(
            e.message,
            "The request must contain the parameter InstanceId"
        );
        assert!(parse(&QueryParams::from_query("InstanceId.1=i-00000001")).is_ok());
    }
}
