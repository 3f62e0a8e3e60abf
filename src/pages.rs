//! Paging, the same way for every paginated AWS call (ListAccounts, ListUsers, ListAccessKeys,
//! LookupEvents): read the continuation token of a page and decide whether there is another page, the
//! listing is done, or the service is stuck (it says there is more but gives no new token, which would
//! otherwise loop forever or silently drop the rest).

use crate::retry::Failure;

/// The failure of a listing that ran out of pages: `max_pages` (the config key) bounds every listing, so
/// that a service that never stops paginating still ends, and says so in the accounts report.
pub fn page_limit(listing: &str, max_pages: usize) -> Failure {
    Failure::new(
        "PageLimit",
        format!("{listing} did not end after {max_pages} pages (max_pages); the rest was not read"),
    )
}

/// What a page says about the next one.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Ask again with this token.
    Page(String),
    /// That was the last page.
    Done,
    /// More was announced, but the token is missing or the same as the one just sent.
    Stuck,
}

/// `more`: the page says it is not the last (IAM's `IsTruncated`; for token-only APIs, whether a token
/// came back). `token`: the token it returned. `sent`: the token that asked for it.
pub fn next_page(more: bool, token: Option<&str>, sent: Option<&str>) -> Next {
    match (more, token) {
        (false, _) => Next::Done,
        (true, Some(t)) if !t.is_empty() && Some(t) != sent => Next::Page(t.to_string()),
        (true, _) => Next::Stuck,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decide_the_next_page() {
        assert_eq!(
            next_page(true, Some("b"), Some("a")),
            Next::Page("b".into())
        );
        assert_eq!(next_page(true, Some("a"), None), Next::Page("a".into()));
        assert_eq!(next_page(false, Some("b"), Some("a")), Next::Done);
        assert_eq!(next_page(true, None, Some("a")), Next::Stuck);
        assert_eq!(next_page(true, Some("a"), Some("a")), Next::Stuck);
        assert_eq!(next_page(true, Some(""), None), Next::Stuck);
    }
}
