//! The key pair kind: stored key pairs, named by name or by id.

use std::collections::BTreeMap;
use std::fmt;

use crate::api::error::ApiError;
use crate::api::key_pairs;
use crate::api::kind::{IdRules, Kind, Paging};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::{KeyPair, KeyPairId};
use crate::model::{KeyPairSpec, KeyPairStatus};
use crate::store::{SpecStore, Specs};

/// Key pairs.
pub struct KeyPairKind;

/// How DescribeKeyPairs names a key pair: `KeyName.N` or `KeyPairId.N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// By name.
    Name(String),
    /// By id.
    Id(KeyPairId),
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Id(id) => f.write_str(id.as_str()),
        }
    }
}

impl Kind for KeyPairKind {
    type Item = KeyPair;
    type Ref = KeyRef;
    type Context = ();
    type Cursor = ();

    const IDS: IdRules = IdRules {
        noun: "key pair",
        prefix: KeyPairId::PREFIX,
        malformed: "InvalidKeyPair.Malformed",
        not_found: "InvalidKeyPair.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some(key_pairs::TAG_RESOURCE_TYPE);
    /// The filter names EC2 documents for key pairs (plus `tag:<key>`).
    const FILTERS: &'static [&'static str] = &[
        "key-pair-id",
        "key-name",
        "fingerprint",
        "key-type",
        "tag-key",
    ];
    /// DescribeKeyPairs takes no page size.
    const PAGING: Option<Paging> = None;
    const SET: &'static str = "keySet";

    fn id(item: &KeyPair) -> &str {
        &item.metadata.name
    }

    /// Names, then ids; a malformed id is `InvalidParameterValue`, as EC2 answers it here.
    fn refs(params: &QueryParams) -> Result<Vec<KeyRef>, ApiError> {
        let names = params
            .list("KeyName")
            .into_iter()
            .map(|n| Ok(KeyRef::Name(n.to_string())));
        let ids = params.list("KeyPairId").into_iter().map(|raw| {
            KeyPairId::parse(raw)
                .map(KeyRef::Id)
                .map_err(|e| ApiError::invalid_value(e.to_string()))
        });
        names.chain(ids).collect()
    }

    fn find(
        state: &ApiState,
        region: &str,
        reference: &KeyRef,
    ) -> Result<Option<KeyPair>, ApiError> {
        match reference {
            KeyRef::Name(name) => key_pairs::find_by_name(&state.store, region, name),
            KeyRef::Id(id) => key_pairs::find_by_id(&state.store, region, id),
        }
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<KeyPair>, ApiError> {
        key_pairs::region_key_pairs(&state.store, region)
    }

    /// The first name or id that does not exist, as EC2 reports it.
    fn not_found(_region: &str, missing: &[KeyRef]) -> ApiError {
        key_pairs::not_found(&missing[0].to_string())
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &KeyPair) -> Option<&BTreeMap<String, String>> {
        Some(&item.spec.tags)
    }

    fn values(name: &str, key_pair: &KeyPair, _context: &()) -> Vec<String> {
        let one = |s: &str| vec![s.to_string()];
        match name {
            "key-pair-id" => one(&key_pair.metadata.name),
            "key-name" => one(&key_pair.spec.key_name),
            "fingerprint" => one(&key_pair.spec.fingerprint),
            "key-type" => one(key_pair.spec.key_type.name()),
            _ => Vec::new(),
        }
    }

    /// By name, then id.
    fn sort(items: &mut [KeyPair]) {
        items.sort_by(|a, b| {
            (&a.spec.key_name, &a.metadata.name).cmp(&(&b.spec.key_name, &b.metadata.name))
        });
    }

    fn cursor(item: &KeyPair) -> String {
        item.metadata.name.clone()
    }

    fn parse_cursor(_text: &str) -> Option<()> {
        None
    }

    fn after(_item: &KeyPair, _cursor: &()) -> bool {
        true
    }

    fn render(w: &mut XmlWriter, item: &KeyPair) {
        key_pairs::render_item(w, item, false);
    }
}
impl Tagged for KeyPairKind {
    type Spec = KeyPairSpec;
    type Status = KeyPairStatus;

    fn collection(store: &SpecStore) -> Specs<'_, KeyPairSpec, KeyPairStatus> {
        store.key_pairs()
    }

    fn spec_tags(spec: &KeyPairSpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut KeyPairSpec) -> &mut Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        Ok(KeyPairId::parse(id)?.to_string())
    }

    fn tag_not_found(_state: &ApiState, _region: &str, id: &str) -> ApiError {
        key_pairs::not_found(id)
    }
}
