//! `QueryParams`: typed access to the ordered `Name=value` pairs of an EC2 Query request (lists `X.N`, structures `X.N.Sub`).

use std::collections::BTreeMap;

use super::error::ApiError;

/// The decoded parameters of one request, in the order the client sent them.
///
/// EC2 Query lists are always flattened (`InstanceId.1=…&InstanceId.2=…`) and structures use
/// dots (`Filter.1.Name=…&Filter.1.Value.1=…`), so every accessor works on key prefixes. When a
/// key repeats, the first occurrence wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

/// `Prefix.N` → `N` when `N` is a decimal index; anything else is not a list member.
fn list_index(key: &str, prefix: &str) -> Option<(u64, String)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('.')?;
    let (index, tail) = match rest.split_once('.') {
        Some((index, tail)) => (index, tail.to_string()),
        None => (rest, String::new()),
    };
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    index.parse().ok().map(|n| (n, tail))
}

impl QueryParams {
    /// Wraps already-decoded pairs.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// Decodes a query string with axum's decoder (the same one the router uses), for tests.
    #[cfg(test)]
    pub(crate) fn from_query(query: &str) -> Self {
        let uri: axum::http::Uri = format!("/?{query}")
            .parse()
            .expect("test query is a valid URI");
        let axum::extract::Query(pairs) =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri).expect("decodable");
        Self::new(pairs)
    }

    /// The raw pairs, in request order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Whether there are no parameters at all.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or `MissingParameter`.
    pub fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::missing_parameter(name))
    }

    /// A boolean (`true`/`false`, any case); anything else is `InvalidParameterValue`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        if raw.eq_ignore_ascii_case("true") {
            Ok(Some(true))
        } else if raw.eq_ignore_ascii_case("false") {
            Ok(Some(false))
        } else {
            Err(ApiError::invalid_value(format!(
                "Value ({raw}) for parameter {name} is invalid. Expected 'true' or 'false'."
            )))
        }
    }

    /// A decimal integer; anything else (including overflow) is `InvalidParameterValue`.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        raw.trim().parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid_value(format!(
                "Value ({raw}) for parameter {name} is invalid. Expected an integer."
            ))
        })
    }

    /// The members of the flattened list `prefix` (`prefix.1`, `prefix.2`, …) ordered by index;
    /// gaps are allowed and a repeated index keeps its first value.
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        let mut members: BTreeMap<u64, &str> = BTreeMap::new();
        for (key, value) in &self.pairs {
            if let Some((n, tail)) = list_index(key, prefix) {
                if tail.is_empty() {
                    members.entry(n).or_insert(value.as_str());
                }
            }
        }
        members.into_values().collect()
    }

    /// The members of the list of structures `prefix` (`prefix.N.Member=…`), each as its own
    /// `QueryParams` keyed by the member path, ordered by `N`.
    pub fn structs(&self, prefix: &str) -> Vec<QueryParams> {
        let mut members: BTreeMap<u64, Vec<(String, String)>> = BTreeMap::new();
        for (key, value) in &self.pairs {
            if let Some((n, tail)) = list_index(key, prefix) {
                if !tail.is_empty() {
                    members.entry(n).or_default().push((tail, value.clone()));
                }
            }
        }
        members.into_values().map(QueryParams::new).collect()
    }

    /// The members of the nested structure `prefix` (`prefix.Member=…`), keyed by member path.
    pub fn sub(&self, prefix: &str) -> QueryParams {
        let pairs = self
            .pairs
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
                Some((rest.to_string(), v.clone()))
            })
            .collect();
        QueryParams::new(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from smithy-lang/smithy smithy-aws-protocol-tests/model/ec2Query/input-lists.smithy.

    #[test]
    fn smithy_ec2_lists() {
        let q = QueryParams::from_query(
            "Action=QueryLists&Version=2020-01-08&ListArg.1=foo&ListArg.2=bar&ListArg.3=baz&ComplexListArg.1.Hi=hello&ComplexListArg.2.Hi=hola",
        );
        assert_eq!(q.list("ListArg"), vec!["foo", "bar", "baz"]);
        let complex = q.structs("ComplexListArg");
        let his: Vec<_> = complex.iter().map(|s| s.get("Hi").unwrap()).collect();
        assert_eq!(his, vec!["hello", "hola"]);
        assert_eq!(q.get("Action"), Some("QueryLists"));
    }

    #[test]
    fn smithy_ec2_empty_query_lists() {
        let q = QueryParams::from_query("Action=QueryLists&Version=2020-01-08");
        assert!(q.list("ListArg").is_empty());
        assert!(q.structs("ComplexListArg").is_empty());
    }

    #[test]
    fn smithy_ec2_list_arg_with_xml_name_member_and_renamed_list() {
        let q = QueryParams::from_query(
            "Action=QueryLists&Version=2020-01-08&ListArgWithXmlNameMember.1=A&ListArgWithXmlNameMember.2=B",
        );
        assert_eq!(q.list("ListArgWithXmlNameMember"), vec!["A", "B"]);
        let q = QueryParams::from_query("Action=QueryLists&Version=2020-01-08&Hi.1=A&Hi.2=B");
        assert_eq!(q.list("Hi"), vec!["A", "B"]);
    }

    #[test]
    fn smithy_ec2_nested_struct_with_list() {
        let q = QueryParams::from_query(
            "Action=QueryLists&Version=2020-01-08&NestedWithList.ListArg.member.1=A&NestedWithList.ListArg.member.2=B",
        );
        assert_eq!(
            q.sub("NestedWithList").list("ListArg.member"),
            vec!["A", "B"]
        );
    }

    #[test]
    fn smithy_ec2_nested_structures_and_scalars() {
        let q = QueryParams::from_query(
            "Action=NestedStructures&Version=2020-01-08&Nested.StringArg=foo&Nested.OtherArg=true&Nested.RecursiveArg.StringArg=baz&Bam=10&Qux=dmFsdWU%3D",
        );
        let nested = q.sub("Nested");
        assert_eq!(nested.get("StringArg"), Some("foo"));
        assert_eq!(nested.bool("OtherArg").unwrap(), Some(true));
        assert_eq!(nested.sub("RecursiveArg").get("StringArg"), Some("baz"));
        assert_eq!(q.int("Bam").unwrap(), Some(10));
        assert_eq!(q.get("Qux"), Some("dmFsdWU="), "percent-decoding");
    }

    #[test]
    fn lists_order_by_index_numerically_with_gaps() {
        let q = QueryParams::from_query(
            "InstanceId.10=c&InstanceId.2=b&InstanceId.1=a&InstanceId.x=no&InstanceIdX.1=no",
        );
        assert_eq!(q.list("InstanceId"), vec!["a", "b", "c"]);
    }

    #[test]
    fn repeated_index_keeps_first() {
        let q = QueryParams::from_query("InstanceId.1=a&InstanceId.1=b");
        assert_eq!(q.list("InstanceId"), vec!["a"]);
        assert_eq!(QueryParams::from_query("A=1&A=2").get("A"), Some("1"));
    }

    #[test]
    fn filters_nest_values() {
        let q = QueryParams::from_query(
            "Filter.2.Name=tag%3AName&Filter.2.Value.1=web&Filter.1.Name=instance-state-name&Filter.1.Value.2=stopped&Filter.1.Value.1=running",
        );
        let filters = q.structs("Filter");
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0].get("Name"), Some("instance-state-name"));
        assert_eq!(filters[0].list("Value"), vec!["running", "stopped"]);
        assert_eq!(filters[1].get("Name"), Some("tag:Name"));
        assert_eq!(filters[1].list("Value"), vec!["web"]);
    }

    #[test]
    fn tag_specifications_nest_twice() {
        let q = QueryParams::from_query(
            "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=web&TagSpecification.1.Tag.2.Key=env&TagSpecification.1.Tag.2.Value=a%20b",
        );
        let specs = q.structs("TagSpecification");
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].get("ResourceType"), Some("instance"));
        let tags: Vec<_> = specs[0]
            .structs("Tag")
            .iter()
            .map(|t| {
                (
                    t.get("Key").unwrap().to_string(),
                    t.get("Value").unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            tags,
            vec![("Name".into(), "web".into()), ("env".into(), "a b".into())]
        );
    }

    #[test]
    fn require_and_typed_getters_report_aws_errors() {
        let q = QueryParams::from_query(
            "DryRun=maybe&MinCount=x&MaxCount=99999999999999999999&Ok=TRUE",
        );
        let e = q.require("ImageId").unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        assert_eq!(e.message, "The request must contain the parameter ImageId");
        assert_eq!(q.bool("DryRun").unwrap_err().code, "InvalidParameterValue");
        assert_eq!(q.int("MinCount").unwrap_err().code, "InvalidParameterValue");
        assert_eq!(q.int("MaxCount").unwrap_err().code, "InvalidParameterValue");
        assert_eq!(q.bool("Ok").unwrap(), Some(true));
        assert_eq!(q.bool("Absent").unwrap(), None);
        assert_eq!(q.int("Absent").unwrap(), None);
    }
}
