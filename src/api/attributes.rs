//! What ModifyVpcAttribute and ModifySubnetAttribute share: exactly one attribute per call, and `true`/`false` values.

use super::error::ApiError;
use super::query::QueryParams;

/// The one parameter of `parameters` the request sets, by index, with its value. None is
/// `MissingParameter` (naming `names`), more than one `InvalidParameterCombination`: EC2
/// modifies one attribute at a time.
pub fn exactly_one<'p>(
    params: &'p QueryParams,
    parameters: &[&str],
    names: &str,
) -> Result<(usize, &'p str), ApiError> {
    let given: Vec<(usize, &str)> = parameters
        .iter()
        .enumerate()
        .filter_map(|(i, p)| params.get(p).map(|v| (i, v)))
        .collect();
    match given.as_slice() {
        [one] => Ok(*one),
        [] => Err(ApiError::missing_parameter(names)),
        _ => Err(ApiError::invalid_combination(
            "Only one attribute can be modified at a time",
        )),
    }
}

/// A boolean attribute's value, `true` or `false` in any case.
pub fn bool_value(value: &str, parameter: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid_value(format!(
            "Value ({value}) for parameter {parameter} is invalid. Expected: 'true' or 'false'."
        ))),
    }
}
