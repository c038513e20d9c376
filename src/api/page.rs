//! One envelope and one paging scheme for every listing in the API.
//!
//! A listing answers `{"items": [...], "next_cursor": "…"}` (some add counts beside them, such
//! as a delivery listing's `by_status`). To read the next page, pass `next_cursor` back as
//! `?cursor=…` with the same filters; it is `null` on the last page. A cursor is opaque: only
//! a value this listing gave is accepted. `?limit=` takes 1 to 500 (default 50). Listings
//! that are bounded by nature (an incident's reports, the configured heartbeats) answer in one
//! page whose `next_cursor` is `null`.

use super::error::ApiError;

/// Declares a listing's response type: `items` of one kind and `next_cursor`.
macro_rules! listing {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `?cursor=` for the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }

        impl $name {
            /// A page read with `limit`, keyed by `key` (the order the listing pages in).
            #[allow(dead_code)]
            pub fn paged(items: Vec<$item>, limit: i64, key: impl Fn(&$item) -> i64) -> Self {
                let next_cursor = $crate::api::page::next(&items, limit, key);
                Self { items, next_cursor }
            }

            /// A bounded listing: everything, in one page.
            #[allow(dead_code)]
            pub fn whole(items: Vec<$item>) -> Self {
                Self { items, next_cursor: None }
            }
        }
    };
}
pub(crate) use listing;

/// The cursor that fetches the page after `page`: the last key of a full page, none after the
/// last page.
pub fn next<T>(page: &[T], limit: i64, key: impl Fn(&T) -> i64) -> Option<String> {
    (page.len() as i64 == limit)
        .then(|| page.last().map(|t| key(t).to_string()))
        .flatten()
}

/// `?cursor=` as the key the store pages from.
pub fn cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::bad_request(
                    "bad_query",
                    format!(
                        "cursor={c}: not a cursor of this listing; pass the `next_cursor` of the \
                         page before, or leave it out for the first page"
                    ),
                )
            })
        })
        .transpose()
}

/// `?limit=`: 1 to 500, 50 when absent.
pub fn limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "bad_query",
            format!("limit={n}: give a number from 1 to 500"),
        )),
    }
}
