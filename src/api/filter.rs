//! EC2 `Filter.N.Name` / `Filter.N.Value.M`: parsing, name checks and `*`/`?` wildcard matching (names ANDed, values ORed).

use super::error::ApiError;
use super::query::QueryParams;

/// One `Filter.N`: a name and the values any of which may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// E.g. `instance-state-name`, `tag:Name`.
    pub name: String,
    /// The accepted values; `*` and `?` are wildcards, `\` escapes them.
    pub values: Vec<String>,
}

impl Filter {
    /// Whether any filter value matches any of the resource's values for this filter.
    /// A resource without a value for the attribute never matches, as in EC2.
    pub fn matches<S: AsRef<str>>(&self, candidates: &[S]) -> bool {
        self.values.iter().any(|pattern| {
            candidates
                .iter()
                .any(|c| wildcard_match(pattern, c.as_ref()))
        })
    }
}

/// Parses every `Filter.N`; a filter without a name is `MissingParameter`. A filter with no
/// values matches nothing (the OR of no alternatives).
pub fn parse_filters(params: &QueryParams) -> Result<Vec<Filter>, ApiError> {
    params
        .structs("Filter")
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let name = f
                .get("Name")
                .ok_or_else(|| ApiError::missing_parameter(&format!("Filter.{}.Name", i + 1)))?;
            Ok(Filter {
                name: name.to_string(),
                values: f.list("Value").into_iter().map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Rejects the first filter whose name `known` does not accept, as EC2 does
/// (`InvalidParameterValue: The filter 'x' is invalid`). `tag:<key>` is always known.
pub fn check_names(filters: &[Filter], known: impl Fn(&str) -> bool) -> Result<(), ApiError> {
    match filters
        .iter()
        .find(|f| !f.name.starts_with("tag:") && !known(&f.name))
    {
        Some(bad) => Err(ApiError::invalid_filter(&bad.name)),
        None => Ok(()),
    }
}

/// Whether every filter matches (names ANDed), given the resource's values per filter name.
pub fn matches_all(filters: &[Filter], values_of: impl Fn(&str) -> Vec<String>) -> bool {
    filters.iter().all(|f| f.matches(&values_of(&f.name)))
}

/// Whether a filter value has no wildcard or escape: it matches exactly itself.
pub fn is_plain(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '\\'])
}

/// EC2 filter wildcards: `*` matches any run of characters (also none), `?` exactly one,
/// and `\` makes the next character literal. Matching is case-sensitive.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    // Most patterns are plain values: compared as they are, with nothing allocated.
    if is_plain(pattern) {
        return pattern == text;
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Any,
        One,
        Lit(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '*' => Tok::Any,
            '?' => Tok::One,
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            c => Tok::Lit(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Classic greedy matcher with backtracking to the last `*`: linear in practice, no recursion.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                t += 1;
                p += 1;
            }
            Some(Tok::Lit(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|tok| *tok == Tok::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("web-*", "web-1"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("w?b", "web"));
        assert!(!wildcard_match("w?b", "wb"));
        assert!(wildcard_match("*a*b*", "xxaxxbxx"));
        assert!(!wildcard_match("*a*b", "xxaxxbxxc"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("Exact", "exact"), "case-sensitive");
        assert!(wildcard_match("a\\*b", "a*b"));
        assert!(!wildcard_match("a\\*b", "axxb"));
        assert!(wildcard_match("ü?", "üß"));
    }

    #[test]
    fn names_and_values() {
        let q = QueryParams::from_query(
            "Filter.1.Name=instance-state-name&Filter.1.Value.1=running&Filter.1.Value.2=stopped&Filter.2.Name=tag:Name&Filter.2.Value.1=web*",
        );
        let filters = parse_filters(&q).unwrap();
        let values = |name: &str| match name {
            "instance-state-name" => vec!["stopped".to_string()],
            "tag:Name" => vec!["web-1".to_string()],
            _ => vec![],
        };
        assert!(matches_all(&filters, values));
        let values = |name: &str| match name {
            "instance-state-name" => vec!["stopped".to_string()],
            _ => vec![],
        };
        assert!(!matches_all(&filters, values), "names are ANDed");
    }

    #[test]
    fn unknown_names_are_rejected_with_aws_wording() {
        let filters = vec![Filter {
            name: "flavour".into(),
            values: vec!["x".into()],
        }];
        let e = check_names(&filters, |n| n == "instance-id").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(e.message, "The filter 'flavour' is invalid");
        let tag = vec![Filter {
            name: "tag:anything".into(),
            values: vec![],
        }];
        assert!(check_names(&tag, |_| false).is_ok());
    }

    #[test]
    fn missing_filter_name() {
        let q = QueryParams::from_query("Filter.1.Value.1=x");
        let e = parse_filters(&q).unwrap_err();
        assert_eq!(
            e.message,
            "The request must contain the parameter Filter.1.Name"
        );
    }

    #[test]
    fn no_values_matches_nothing() {
        let f = Filter {
            name: "instance-id".into(),
            values: vec![],
        };
        assert!(!f.matches(&["i-1"]));
    }
}
