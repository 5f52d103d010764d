//! What the Modify*Attribute actions share: exactly one attribute per call and `true`/`false` values (VPCs, subnets), and the grantees of AMIs' launch and snapshots' create-volume permissions.

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

/// Who an AMI's `launchPermission` or a snapshot's `createVolumePermission` names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grantee {
    /// The `all` group: everyone (the resource is public).
    All,
    /// One account.
    User(String),
}

impl Grantee {
    /// As a record keeps it in a list of grantees: `all`, or the account id.
    pub fn stored(&self) -> &str {
        match self {
            Self::All => "all",
            Self::User(id) => id,
        }
    }
}

/// EC2's `InvalidAMIAttributeItemValue` for a permission item it cannot take (its code for
/// snapshots' permissions too, as moto answers it).
fn bad_item(value: &str, item_type: &str) -> ApiError {
    ApiError::client(
        "InvalidAMIAttributeItemValue",
        format!("Invalid attribute item value \"{value}\" for {item_type} item type."),
    )
}

/// A permission's account: twelve digits.
pub fn permission_user(id: &str) -> Result<Grantee, ApiError> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Grantee::User(id.to_string()))
    } else {
        Err(bad_item(id, "userId"))
    }
}

/// A permission's group: only `all`.
pub fn permission_group(name: &str) -> Result<Grantee, ApiError> {
    if name == "all" {
        Ok(Grantee::All)
    } else {
        Err(bad_item(name, "group"))
    }
}
