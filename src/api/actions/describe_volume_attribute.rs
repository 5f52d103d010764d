//! `DescribeVolumeAttribute`: `autoEnableIO` (recorded by ModifyVolumeAttribute) and `productCodes` (always empty).

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::volumes;
use crate::api::xml::XmlWriter;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = volumes::volume_id_param(params)?;
    let attribute = params.require("Attribute")?;
    if !matches!(attribute, "autoEnableIO" | "productCodes") {
        return Err(ApiError::invalid_value(format!(
            "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
        )));
    }
    let (shown, _) = volumes::load(state, region, &id)?;
    kind::check_dry_run(kind::dry_run(params)?)?;
    let mut w = XmlWriter::new();
    w.field("volumeId", &id);
    if attribute == "autoEnableIO" {
        w.el("autoEnableIO", |w| {
            w.field("value", shown.volume.spec.auto_enable_io)
        });
    } else {
        w.empty("productCodes");
    }
    Ok(w.finish())
}
