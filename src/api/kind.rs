//! A resource kind as the API sees it, declared once (ids and their errors, filters, tags, order, rendering), and the one Describe* built on it.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Display;

use super::error::ApiError;
use super::filter::{self, Filter};
use super::paging::{self, SizeWording};
use super::query::QueryParams;
use super::state::ApiState;
use super::tags::tag_filter_values;
use super::xml::XmlWriter;

/// How EC2 names a kind's ids and words their errors.
#[derive(Debug, Clone, Copy)]
pub struct IdRules {
    /// The noun in messages: `instance` in `The instance ID 'i-…' does not exist`.
    pub noun: &'static str,
    /// What every id starts with: `i-`.
    pub prefix: &'static str,
    /// `InvalidInstanceID.Malformed`.
    pub malformed: &'static str,
    /// `InvalidInstanceID.NotFound`.
    pub not_found: &'static str,
}

impl IdRules {
    /// The `Malformed` error for `id`, worded as for every kind.
    pub fn malformed(&self, id: &str) -> ApiError {
        ApiError::client(
            self.malformed,
            format!("Invalid id: \"{id}\" (expecting \"{}...\")", self.prefix),
        )
    }

    /// The `NotFound` error for one or several ids, in EC2's singular and plural wording.
    pub fn not_found<S: Display>(&self, ids: &[S]) -> ApiError {
        let message = match ids {
            [one] => format!("The {} ID '{one}' does not exist", self.noun),
            many => format!(
                "The {} IDs '{}' do not exist",
                self.noun,
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        ApiError::client(self.not_found, message)
    }

    /// Checks `id` is the prefix and 1 to 32 ASCII alphanumerics (the shape of EC2's VPC,
    /// subnet and other network ids).
    pub fn check_alphanumeric(&self, id: &str) -> Result<String, ApiError> {
        let ok = id.strip_prefix(self.prefix).is_some_and(|r| {
            !r.is_empty() && r.len() <= 32 && r.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if ok {
            Ok(id.to_string())
        } else {
            Err(self.malformed(id))
        }
    }
}

/// How a kind's Describe pages: its page-size wording and whether it refuses a page size
/// together with ids (and with which message).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// The `InvalidParameterCombination` message for ids with `MaxResults`, when refused.
    pub ids_conflict: Option<&'static str>,
    /// How an out-of-range `MaxResults` is worded.
    pub wording: SizeWording,
}

/// A resource kind: everything the generic Describe*, the tag actions and the errors need.
/// Its spec and status types, schema and store collection are declared in `model` and `store`;
/// this is the API's half of the declaration.
pub trait Kind: Sized + 'static {
    /// What a Describe lists and renders.
    type Item;
    /// How a request names one (an id; a group also by name).
    type Ref: Clone + PartialEq + Display;
    /// What the filters of one request read besides the item (a group's peers' names).
    type Context;
    /// Where a page ends, decoded from `NextToken`.
    type Cursor;

    /// Id prefix, codes and the noun of the kind's messages.
    const IDS: IdRules;
    /// The `ResourceType` of its tags (DescribeTags' `resourceType`), when it takes tags.
    const TAG_TYPE: Option<&'static str>;
    /// The filter names its Describe accepts (`tag:<key>` always is).
    const FILTERS: &'static [&'static str];
    /// How its Describe pages; `None` when it takes no `MaxResults`/`NextToken`.
    const PAGING: Option<Paging>;
    /// The largest `MaxResults` its Describe takes (most take 5 to 1000).
    const MAX_PAGE: i64 = paging::MAX_PAGE;
    /// The smallest `MaxResults` its Describe takes.
    const MIN_PAGE: i64 = paging::MIN_PAGE;
    /// Whether a `MaxResults` above [`Kind::MAX_PAGE`] is cut to it rather than refused (EC2's
    /// DescribeVolumes: "if you specify a value larger than 500, only 500 items are returned").
    const CUT_PAGE: bool = false;
    /// Whether [`Kind::list`] hands out its items in the kind's order already (Describe then
    /// does not sort a listing again; it still sorts what it looked up by reference or tag).
    const LISTED_IN_ORDER: bool = false;
    /// The set element of its Describe answer (`vpcSet`).
    const SET: &'static str;

    /// The item's id (duplicates named twice, by id and by name, are shown once).
    fn id(item: &Self::Item) -> &str;
    /// The references a Describe names (`VpcId.N`), each checked; duplicates are dropped later.
    fn refs(params: &QueryParams) -> Result<Vec<Self::Ref>, ApiError>;
    /// One item of the region by reference; `None` when there is none.
    fn find(
        state: &ApiState,
        region: &str,
        reference: &Self::Ref,
    ) -> Result<Option<Self::Item>, ApiError>;
    /// Every item of the region, in the kind's order.
    fn list(state: &ApiState, region: &str) -> Result<Vec<Self::Item>, ApiError>;
    /// The items of the region tagged `tag` with one of `values` (exactly), from an index;
    /// `None` when the kind keeps none (Describe then filters [`Kind::list`]).
    fn list_tagged(
        state: &ApiState,
        region: &str,
        tag: &str,
        values: &[&str],
    ) -> Result<Option<Vec<Self::Item>>, ApiError> {
        let _ = (state, region, tag, values);
        Ok(None)
    }
    /// Whether a reference that names nothing names something the kind forgot on purpose
    /// (a deregistered AMI): Describe leaves it out of its answer instead of failing.
    fn forgotten(state: &ApiState, region: &str, reference: &Self::Ref) -> Result<bool, ApiError> {
        let _ = (state, region, reference);
        Ok(false)
    }
    /// The `NotFound` error for references that name nothing.
    fn not_found(region: &str, missing: &[Self::Ref]) -> ApiError {
        let _ = region;
        Self::IDS.not_found(missing)
    }

    /// What the filters of one request read besides the items.
    fn context(state: &ApiState, region: &str) -> Result<Self::Context, ApiError>;
    /// The context for these filters: a kind may leave out what none of them reads.
    fn context_for(
        state: &ApiState,
        region: &str,
        filters: &[Filter],
    ) -> Result<Self::Context, ApiError> {
        let _ = filters;
        Self::context(state, region)
    }
    /// The item's tags, when the kind takes tags (the `tag:`, `tag-key`, `tag-value` filters).
    fn tags(item: &Self::Item) -> Option<&BTreeMap<String, String>>;
    /// The item's values for one of [`Kind::FILTERS`] (empty: the filter cannot match).
    fn values(name: &str, item: &Self::Item, context: &Self::Context) -> Vec<String>;

    /// Puts items in the kind's order (what pages follow).
    fn sort(items: &mut [Self::Item]);
    /// The cursor of a page that ends at `item`, as text.
    fn cursor(item: &Self::Item) -> String;
    /// A cursor read back from text; `None` for anything [`Kind::cursor`] did not make.
    fn parse_cursor(text: &str) -> Option<Self::Cursor>;
    /// Whether `item` comes after the cursor in the kind's order.
    fn after(item: &Self::Item, cursor: &Self::Cursor) -> bool;

    /// One item of the set.
    fn render(w: &mut XmlWriter, item: &Self::Item);
}

/// The part of a kind's declaration for kinds ordered and paged by id (most of them).
macro_rules! ordered_by_id {
    ($item:ty) => {
        $crate::api::kind::ordered_by_id!($item, |text: &str| text.starts_with(Self::IDS.prefix));
    };
    ($item:ty, $is_id:expr) => {
        type Cursor = String;

        fn sort(items: &mut [$item]) {
            items.sort_by(|a, b| Self::id(a).cmp(Self::id(b)));
        }

        fn cursor(item: &$item) -> String {
            Self::id(item).to_string()
        }

        fn parse_cursor(text: &str) -> Option<String> {
            let is_id: fn(&str) -> bool = $is_id;
            is_id(text).then(|| text.to_string())
        }

        fn after(item: &$item, cursor: &String) -> bool {
            Self::id(item) > cursor.as_str()
        }
    };
}

pub(crate) use ordered_by_id;

/// A validated Describe* request of kind `K`: references, filters, page and `DryRun`.
pub struct Describe<K: Kind> {
    /// The references named, deduplicated in request order; empty means all.
    pub refs: Vec<K::Ref>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `MaxResults`.
    pub max_results: Option<usize>,
    /// `NextToken`, decoded.
    pub after: Option<K::Cursor>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// One page of a Describe.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in the kind's order.
    pub items: Vec<T>,
    /// The token of the next page, when there is one.
    pub next_token: Option<String>,
}

/// `DryRun`, defaulting to false.
pub fn dry_run(params: &QueryParams) -> Result<bool, ApiError> {
    Ok(params.bool("DryRun")?.unwrap_or(false))
}

/// Fails with `DryRunOperation` when the flag is set: call after validation, before any write.
pub fn check_dry_run(dry_run: bool) -> Result<(), ApiError> {
    if dry_run {
        Err(ApiError::dry_run())
    } else {
        Ok(())
    }
}

/// The item's values for any filter name the kind accepts, tag filters included.
pub fn filter_values<K: Kind>(name: &str, item: &K::Item, context: &K::Context) -> Vec<String> {
    if let Some(tags) = K::tags(item) {
        if let Some(values) = tag_filter_values(name, tags) {
            return values;
        }
    }
    K::values(name, item, context)
}

impl<K: Kind> Describe<K> {
    /// Parses references, filters (unknown names are `InvalidParameterValue`), the page and `DryRun`.
    pub fn parse(params: &QueryParams) -> Result<Self, ApiError> {
        let mut refs: Vec<K::Ref> = Vec::new();
        for reference in K::refs(params)? {
            if !refs.contains(&reference) {
                refs.push(reference);
            }
        }
        let filters = filter::parse_filters(params)?;
        // `tag:<key>` is always known (`check_names`); the rest is the kind's list.
        filter::check_names(&filters, |name| K::FILTERS.contains(&name))?;
        let (max_results, after) = match K::PAGING {
            None => (None, None),
            Some(paging) => {
                let conflict = paging.ids_conflict.filter(|_| !refs.is_empty());
                let top = if K::CUT_PAGE { i64::MAX } else { K::MAX_PAGE };
                let max =
                    paging::max_results_in(params, conflict, paging.wording, K::MIN_PAGE..=top)?
                        .map(|n| n.min(usize::try_from(K::MAX_PAGE).unwrap_or(usize::MAX)));
                let after = match paging::next_token(params)? {
                    None => None,
                    Some(text) => Some(K::parse_cursor(&text).ok_or_else(paging::invalid_token)?),
                };
                (max, after)
            }
        };
        Ok(Self {
            refs,
            filters,
            max_results,
            after,
            dry_run: dry_run(params)?,
        })
    }

    /// Reads what the request names (every reference must exist, else the kind's `NotFound`
    /// naming all that do not) or the whole region, answers `DryRun`, then filters, orders and pages.
    pub fn select(self, state: &ApiState, region: &str) -> Result<Page<K::Item>, ApiError> {
        self.select_where(state, region, |_| true)
    }

    /// Like [`Describe::select`], keeping only the items `keep` accepts before paging (an
    /// action's own parameter that narrows, such as `IncludeAllInstances`).
    pub fn select_where(
        self,
        state: &ApiState,
        region: &str,
        keep: impl Fn(&K::Item) -> bool,
    ) -> Result<Page<K::Item>, ApiError> {
        let mut in_order = false;
        let mut items = if self.refs.is_empty() {
            // A tag filter of plain values narrows from the kind's tag index, when it keeps one.
            let indexed = match self.filters.iter().find_map(plain_tag_filter) {
                Some((tag, values)) => K::list_tagged(state, region, tag, &values)?,
                None => None,
            };
            match indexed {
                Some(items) => items,
                None => {
                    in_order = K::LISTED_IN_ORDER;
                    K::list(state, region)?
                }
            }
        } else {
            let mut found: Vec<K::Item> = Vec::with_capacity(self.refs.len());
            let mut seen = HashSet::with_capacity(self.refs.len());
            let mut missing = Vec::new();
            for reference in &self.refs {
                match K::find(state, region, reference)? {
                    // Named twice (by id and by name): shown once.
                    Some(item) if !seen.insert(K::id(&item).to_string()) => {}
                    Some(item) => found.push(item),
                    None if K::forgotten(state, region, reference)? => {}
                    None => missing.push(reference.clone()),
                }
            }
            if !missing.is_empty() {
                return Err(K::not_found(region, &missing));
            }
            found
        };
        check_dry_run(self.dry_run)?;
        items.retain(&keep);
        if !self.filters.is_empty() {
            let context = K::context_for(state, region, &self.filters)?;
            items.retain(|item| {
                self.filters.iter().all(|f| {
                    match (f.name.strip_prefix("tag:"), K::tags(item)) {
                        // The filter IaC tools send most, read in place: no tag value is
                        // copied per item (10,000 copies were most of a filtered Describe).
                        (Some(key), Some(tags)) => tags.get(key).is_some_and(|v| f.matches(&[v])),
                        _ => f.matches(&filter_values::<K>(&f.name, item, &context)),
                    }
                })
            });
        }
        if let Some(after) = &self.after {
            items.retain(|item| K::after(item, after));
        }
        // Dropping items keeps the order of the rest.
        if !in_order {
            K::sort(&mut items);
        }
        let next_token = paging::cut(&mut items, self.max_results, K::cursor);
        Ok(Page { items, next_token })
    }
}

/// A `tag:<key>` filter whose values are all plain (no wildcard or escape): its key and values.
fn plain_tag_filter(filter: &Filter) -> Option<(&str, Vec<&str>)> {
    let tag = filter.name.strip_prefix("tag:")?;
    filter
        .values
        .iter()
        .all(|v| filter::is_plain(v))
        .then(|| (tag, filter.values.iter().map(String::as_str).collect()))
}

/// The whole of a plain Describe* action: parse, select, and render the kind's set and `nextToken`.
pub fn describe<K: Kind>(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    let page = Describe::<K>::parse(params)?.select(state, region)?;
    Ok(render_page::<K>(&page))
}

/// `<set>` of the page's items, then `nextToken` when there is one.
pub fn render_page<K: Kind>(page: &Page<K::Item>) -> String {
    let mut w = XmlWriter::new();
    w.set(K::SET, &page.items, |w, item| K::render(w, item));
    w.opt_field("nextToken", page.next_token.as_deref());
    w.finish()
}
