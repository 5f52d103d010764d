//! `DescribeKeyPairs`: the key pair kind's Describe (by name and id), with `IncludePublicKey`.

use crate::api::error::ApiError;
use crate::api::key_pairs;
use crate::api::kind::Describe;
use crate::api::kinds::KeyPairKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::KeyPair;

/// `keySet` (`publicKey` only when asked for).
pub fn render(key_pairs: &[KeyPair], include_public_key: bool) -> String {
    let mut w = XmlWriter::new();
    w.set("keySet", key_pairs, |w, k| {
        key_pairs::render_item(w, k, include_public_key)
    });
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let include_public_key = params.bool("IncludePublicKey")?.unwrap_or(false);
    let page = Describe::<KeyPairKind>::parse(params)?.select(state, region)?;
    Ok(render(&page.items, include_public_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Describe<KeyPairKind>, ApiError> {
        Describe::parse(&QueryParams::from_query(q))
    }

    #[test]
    fn parse_names_ids_filters() {
        let req = parse(
            "KeyName.1=a&KeyName.2=a&KeyName.3=b&KeyPairId.1=key-0123abcd&Filter.1.Name=key-type&Filter.1.Value.1=rsa&IncludePublicKey=true",
        )
        .ok()
        .unwrap();
        assert_eq!(req.refs.len(), 3, "a, b and the id");
        assert_eq!(req.filters.len(), 1);
        let e = parse("KeyPairId.1=kp-1").err().unwrap();
        assert_eq!(e.code, "InvalidParameterValue");
        let e = parse("Filter.1.Name=tag-value").err().unwrap();
        assert_eq!(e.message, "The filter 'tag-value' is invalid");
        let e = QueryParams::from_query("IncludePublicKey=yes")
            .bool("IncludePublicKey")
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }
}
