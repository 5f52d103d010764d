//! `MaxResults`/`NextToken` as every paging Describe* call takes them: page sizes, opaque tokens and `InvalidNextToken`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::error::ApiError;
use super::query::QueryParams;

/// The smallest page most of EC2's Describe* calls accept (the launch template ones: 1).
pub const MIN_PAGE: i64 = 5;
/// The largest page most of EC2's Describe* calls accept (DescribeInstanceTypes: 100).
pub const MAX_PAGE: i64 = 1000;

/// How an action words a page size out of range: EC2's actions differ, and clients show the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeWording {
    /// `Expecting a value between 5 and 1000.`
    Between,
    /// `Expecting a value greater than 5.` / `… less than or equal to 1000.` (DescribeInstances).
    Bounds,
}

/// `MaxResults`, 5 to 1000. `conflict` is the `InvalidParameterCombination` message when the
/// request also names resources, which some actions refuse together with a page size.
pub fn max_results(
    params: &QueryParams,
    conflict: Option<&str>,
    wording: SizeWording,
) -> Result<Option<usize>, ApiError> {
    max_results_up_to(params, conflict, wording, MAX_PAGE)
}

/// `MaxResults`, 5 to `max`, as [`max_results`] for an action with a smaller largest page.
pub fn max_results_up_to(
    params: &QueryParams,
    conflict: Option<&str>,
    wording: SizeWording,
    max: i64,
) -> Result<Option<usize>, ApiError> {
    max_results_in(params, conflict, wording, MIN_PAGE..=max)
}

/// `MaxResults` within `range`, as [`max_results`] for an action with other page bounds.
pub fn max_results_in(
    params: &QueryParams,
    conflict: Option<&str>,
    wording: SizeWording,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<usize>, ApiError> {
    let (min, max) = (*range.start(), *range.end());
    let Some(n) = params.int("MaxResults")? else {
        return Ok(None);
    };
    if let Some(message) = conflict {
        return Err(ApiError::invalid_combination(message));
    }
    if !range.contains(&n) {
        let expecting = match wording {
            SizeWording::Between => format!("a value between {min} and {max}"),
            SizeWording::Bounds if n < min => format!("a value greater than {min}"),
            SizeWording::Bounds => format!("a value less than or equal to {max}"),
        };
        return Err(ApiError::invalid_value(format!(
            "Value ( {n} ) for parameter maxResults is invalid. Expecting {expecting}."
        )));
    }
    Ok(Some(
        usize::try_from(n).expect("every range starts at 1 or more"),
    ))
}

/// `InvalidNextToken`, for any token ec2d did not make.
pub fn invalid_token() -> ApiError {
    ApiError::client("InvalidNextToken", "The specified NextToken is not valid.")
}

/// An opaque token for a cursor: base64url, so it survives any query encoding.
pub fn token(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(cursor)
}

/// `NextToken`, decoded back to the cursor it was made from (`None` when absent or empty).
pub fn next_token(params: &QueryParams) -> Result<Option<String>, ApiError> {
    let Some(token) = params.get("NextToken").filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid_token())?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| invalid_token())
}

/// A cursor of two parts (a resource and a key within it), for listings ordered by both.
pub fn pair_cursor(first: &str, second: &str) -> String {
    format!("{first}\n{second}")
}

/// `NextToken` made from a [`pair_cursor`], decoded back to its two parts.
pub fn next_pair(params: &QueryParams) -> Result<Option<(String, String)>, ApiError> {
    match next_token(params)? {
        Some(text) => {
            let (first, second) = text.split_once('\n').ok_or_else(invalid_token)?;
            Ok(Some((first.to_string(), second.to_string())))
        }
        None => Ok(None),
    }
}

/// Cuts `items` (already in order and past the cursor) to a page; the next token is made from
/// the page's last item when more remain.
pub fn cut<T>(
    items: &mut Vec<T>,
    max: Option<usize>,
    cursor_of: impl Fn(&T) -> String,
) -> Option<String> {
    match max {
        Some(max) if items.len() > max => {
            items.truncate(max);
            items.last().map(|last| token(&cursor_of(last)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> QueryParams {
        QueryParams::from_query(s)
    }

    #[test]
    fn page_sizes_and_their_wording() {
        assert_eq!(
            max_results(&q(""), None, SizeWording::Between).unwrap(),
            None
        );
        assert_eq!(
            max_results(&q("MaxResults=5"), None, SizeWording::Between).unwrap(),
            Some(5)
        );
        assert_eq!(
            max_results(&q("MaxResults=4"), None, SizeWording::Between).unwrap_err().message,
            "Value ( 4 ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
        );
        assert_eq!(
            max_results(&q("MaxResults=4"), None, SizeWording::Bounds)
                .unwrap_err()
                .message,
            "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."
        );
        assert_eq!(
            max_results(&q("MaxResults=1001"), None, SizeWording::Bounds).unwrap_err().message,
            "Value ( 1001 ) for parameter maxResults is invalid. Expecting a value less than or equal to 1000."
        );
        assert_eq!(
            max_results(&q("MaxResults=5"), Some("no"), SizeWording::Between)
                .unwrap_err()
                .code,
            "InvalidParameterCombination"
        );
    }

    #[test]
    fn tokens_round_trip_and_junk_is_refused() {
        let t = token("sg-0abc");
        assert_eq!(
            next_token(&q(&format!("NextToken={t}")))
                .unwrap()
                .as_deref(),
            Some("sg-0abc")
        );
        assert_eq!(next_token(&q("NextToken=")).unwrap(), None);
        assert_eq!(
            next_token(&q("NextToken=%2A%2A")).unwrap_err().code,
            "InvalidNextToken"
        );
        let mut items = vec![1, 2, 3];
        let next = cut(&mut items, Some(2), |i| i.to_string());
        assert_eq!(items, vec![1, 2]);
        assert_eq!(next, Some(token("2")));
        assert_eq!(cut(&mut items, Some(2), |i| i.to_string()), None);
    }
}
