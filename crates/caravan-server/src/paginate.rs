//! Pagination and filtering of list queries, shared by every list endpoint: resume at
//! `next_token`, apply the filter to the full document, stop after `per_page` items and hand
//! back the token of the first item left out (NOMAD-BEHAVIOR 8.4). Tokens are keys of an
//! ordered index, so a walk over all pages always moves forward and ends, whatever is added or
//! removed between pages.

use std::cmp::Ordering;

use caravan_filter::{Filter, Schema};
use caravan_proto::v1::QueryOptions;

use crate::error::ServerError;

/// The parsed paging options of one query.
pub struct Pager {
    filter: Option<Filter>,
    /// Which objects of the documents are maps, so unknown struct fields are errors.
    schema: &'static dyn Schema,
    per_page: usize,
    next_token: String,
    reverse: bool,
    /// Tokens compare as plain strings, never as `<CreateIndex>.<ID>` (lists whose tokens
    /// merely look numeric, such as `<namespace>.<job id>` with a numeric namespace).
    plain_tokens: bool,
}

pub struct Page<T> {
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_token: String,
}

impl Pager {
    pub fn new(q: &QueryOptions, schema: &'static dyn Schema) -> Result<Pager, ServerError> {
        let filter = if q.filter.trim().is_empty() {
            None
        } else {
            Some(Filter::parse(&q.filter)?)
        };
        Ok(Pager {
            filter,
            schema,
            per_page: q.per_page as usize,
            next_token: q.next_token.clone(),
            reverse: q.reverse,
            plain_tokens: false,
        })
    }

    /// Compares tokens as plain strings (see [`Pager::plain_tokens`]).
    pub fn with_plain_tokens(mut self) -> Pager {
        self.plain_tokens = true;
        self
    }

    pub fn reverse(&self) -> bool {
        self.reverse
    }

    /// Pages through `items` (already in token order, descending when `reverse`). `token` gives
    /// an item's token, `json` its full document for the filter, `render` the output.
    pub fn page<I, T, O>(
        &self,
        items: I,
        token: impl Fn(&T) -> String,
        json: impl Fn(&T) -> &str,
        mut render: impl FnMut(&T) -> Result<O, ServerError>,
    ) -> Result<Page<O>, ServerError>
    where
        I: Iterator<Item = T>,
    {
        let mut out = Vec::new();
        let mut started = self.next_token.is_empty();
        for item in items {
            let tok = token(&item);
            if !started {
                let order = if self.plain_tokens {
                    tok.as_str().cmp(self.next_token.as_str())
                } else {
                    compare_tokens(&tok, &self.next_token)
                };
                let before = if self.reverse {
                    order == Ordering::Greater
                } else {
                    order == Ordering::Less
                };
                if before {
                    continue;
                }
                started = true;
            }
            if let Some(filter) = &self.filter {
                let doc: serde_json::Value = serde_json::from_str(json(&item))
                    .map_err(|e| ServerError::Internal(format!("stored document: {e}")))?;
                if !filter.matches_in(&doc, self.schema)? {
                    continue;
                }
            }
            if self.per_page > 0 && out.len() == self.per_page {
                return Ok(Page {
                    items: out,
                    next_token: tok,
                });
            }
            out.push(render(&item)?);
        }
        Ok(Page {
            items: out,
            next_token: String::new(),
        })
    }
}

/// Orders page tokens as Nomad does: `<CreateIndex>.<ID>` tokens by the index as a number, then
/// the ID; anything else as plain strings.
pub fn compare_tokens(a: &str, b: &str) -> Ordering {
    fn split(t: &str) -> Option<(u64, &str)> {
        let (num, rest) = t.split_once('.')?;
        Some((num.parse().ok()?, rest))
    }
    match (split(a), split(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// The token of an object listed in creation order.
pub fn create_index_token(create_index: u64, id: &str) -> String {
    format!("{create_index}.{id}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn create_index_tokens_compare_numerically() {
        use super::compare_tokens;
        use std::cmp::Ordering::*;
        assert_eq!(compare_tokens("9.b", "10.a"), Less);
        assert_eq!(compare_tokens("10.a", "10.b"), Less);
        assert_eq!(compare_tokens("abc", "abd"), Less);
    }

    use super::*;

    use caravan_filter::AllMaps;

    fn pager(per_page: u32, next: &str, filter: &str, reverse: bool) -> Pager {
        Pager::new(
            &QueryOptions {
                per_page,
                next_token: next.to_owned(),
                filter: filter.to_owned(),
                reverse,
                ..QueryOptions::default()
            },
            &AllMaps,
        )
        .unwrap()
    }

    fn docs(keys: &[&str]) -> Vec<(String, String)> {
        keys.iter()
            .map(|k| (k.to_string(), format!("{{\"ID\":\"{k}\"}}")))
            .collect()
    }

    fn run(p: &Pager, items: &[(String, String)]) -> (Vec<String>, String) {
        let page = p
            .page(items.iter(), |i| i.0.clone(), |i| &i.1, |i| Ok(i.0.clone()))
            .unwrap();
        (page.items, page.next_token)
    }

    #[test]
    fn walks_pages_and_ends() {
        let items = docs(&["a", "b", "c", "d", "e"]);
        let (p1, t1) = run(&pager(2, "", "", false), &items);
        assert_eq!((p1, t1.as_str()), (vec!["a".into(), "b".into()], "c"));
        let (p2, t2) = run(&pager(2, &t1, "", false), &items);
        assert_eq!((p2, t2.as_str()), (vec!["c".into(), "d".into()], "e"));
        let (p3, t3) = run(&pager(2, &t2, "", false), &items);
        assert_eq!((p3, t3.as_str()), (vec!["e".into()], ""));
    }

    #[test]
    fn plain_tokens_compare_as_strings() {
        // Keys sorted as strings; with numeric-looking tokens a numeric compare would skip.
        let items = docs(&["123.web", "45.api", "45.db"]);
        let p = pager(1, "45.api", "", false).with_plain_tokens();
        let (page, next) = run(&p, &items);
        assert_eq!((page, next.as_str()), (vec!["45.api".into()], "45.db"));
        let numeric = pager(1, "45.api", "", false);
        let (page, _) = run(&numeric, &items);
        assert_eq!(page, vec!["123.web".to_string()], "numeric order differs");
    }

    #[test]
    fn resumes_after_the_token_item_was_removed() {
        let items = docs(&["a", "b", "d", "e"]);
        let (page, _) = run(&pager(2, "c", "", false), &items);
        assert_eq!(page, vec!["d".to_string(), "e".to_string()]);
    }

    #[test]
    fn reverse_order() {
        let mut items = docs(&["a", "b", "c"]);
        items.reverse();
        let (p1, t1) = run(&pager(2, "", "", true), &items);
        assert_eq!((p1, t1.as_str()), (vec!["c".into(), "b".into()], "a"));
        let (p2, t2) = run(&pager(2, &t1, "", true), &items);
        assert_eq!((p2, t2.as_str()), (vec!["a".into()], ""));
    }

    #[test]
    fn filter_applies_before_counting() {
        let items = docs(&["a", "b", "c", "d"]);
        let (page, next) = run(&pager(1, "", "ID != \"a\"", false), &items);
        assert_eq!((page, next.as_str()), (vec!["b".into()], "c"));
    }

    #[test]
    fn bad_filter_is_a_bad_request() {
        let err = Pager::new(
            &QueryOptions {
                filter: "ID ==".to_owned(),
                ..QueryOptions::default()
            },
            &AllMaps,
        )
        .err()
        .unwrap();
        assert_eq!(err.code(), caravan_proto::ErrorCode::BadRequest);
        assert!(
            err.to_string()
                .starts_with("failed to create result paginator")
        );
    }
}
