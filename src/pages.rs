//! The one pager of every paginated AWS call (ListAccounts and the OU listings, ListUsers, ListAccessKeys,
//! ListVirtualMFADevices, LookupEvents): a listing is a stream of its pages, asking for the next page with
//! the token of the last, until a page says it is the last. It ends with an error when a call fails, when
//! the service is stuck (it says there is more but gives no new token, which would otherwise loop forever
//! or silently drop the rest), or after `max_pages` pages (the config key), so that a service that never
//! stops paginating still ends and says so.

use std::future::Future;

use futures::Stream;

use crate::retry::Failure;

/// Why a listing ended before its last page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// A call failed (after its retries).
    Failed(Failure),
    /// More was announced, but the token is missing or the same as the one just sent.
    Stuck,
    /// `max_pages` pages were read and the listing still went on.
    Limit(usize),
}

impl PageError {
    /// The failure to report for `listing` (e.g. `ListAccessKeys for user bob`).
    pub fn into_failure(self, listing: &str) -> Failure {
        match self {
            PageError::Failed(f) => f,
            PageError::Stuck => Failure::new(
                "MalformedResponse",
                format!("{listing} said there was more but returned no new token (IsTruncated/NextToken); the rest was not read"),
            ),
            PageError::Limit(max_pages) => Failure::new(
                "PageLimit",
                format!("{listing} did not end after {max_pages} pages (max_pages); the rest was not read"),
            ),
        }
    }
}

/// What a page says about the next one.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Page(String),
    Done,
    Stuck,
}

/// `more`: the page says it is not the last (IAM's `IsTruncated`; for token-only APIs, whether a token
/// came back). `token`: the token it returned. `sent`: the token that asked for it.
fn next_page(more: bool, token: Option<&str>, sent: Option<&str>) -> Next {
    match (more, token) {
        (false, _) => Next::Done,
        (true, Some(t)) if !t.is_empty() && Some(t) != sent => Next::Page(t.to_string()),
        (true, _) => Next::Stuck,
    }
}

/// One page as `fetch` returns it: its content, whether more pages follow, and the token for the next.
pub type Fetched<P> = (P, bool, Option<String>);

enum State {
    Ask(Option<String>),
    Fail(PageError),
    End,
}

/// Every page of one listing, in order. `fetch(token)` reads the page of `token` (`None`: the first). A
/// page is yielded before an error that its token reveals (stuck, or the page limit).
pub fn pages<P, F, Fut>(max_pages: usize, fetch: F) -> impl Stream<Item = Result<P, PageError>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Fetched<P>, Failure>>,
{
    futures::stream::unfold(
        (State::Ask(None), 0usize, fetch),
        move |(state, read, mut fetch)| async move {
            let token = match state {
                State::End => return None,
                State::Fail(e) => return Some((Err(e), (State::End, read, fetch))),
                State::Ask(token) => token,
            };
            match fetch(token.clone()).await {
                Err(f) => Some((Err(PageError::Failed(f)), (State::End, read, fetch))),
                Ok((page, more, next)) => {
                    let read = read + 1;
                    let state = match next_page(more, next.as_deref(), token.as_deref()) {
                        Next::Done => State::End,
                        Next::Stuck => State::Fail(PageError::Stuck),
                        Next::Page(_) if read >= max_pages => {
                            State::Fail(PageError::Limit(max_pages))
                        }
                        Next::Page(t) => State::Ask(Some(t)),
                    };
                    Some((Ok(page), (state, read, fetch)))
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

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

    fn collect<P>(s: impl Stream<Item = Result<P, PageError>>) -> Vec<Result<P, PageError>> {
        futures::executor::block_on(s.collect())
    }

    #[test]
    fn a_listing_reads_every_page_then_stops_at_its_limit_or_when_stuck() {
        // Three pages, then the end.
        let asked = std::cell::RefCell::new(Vec::new());
        let got = collect(pages(10, |t: Option<String>| {
            asked.borrow_mut().push(t.clone());
            let n: usize = t.as_deref().map_or(0, |t| t.parse().unwrap());
            async move { Ok((n, n < 2, Some((n + 1).to_string()))) }
        }));
        assert_eq!(got, [Ok(0), Ok(1), Ok(2)]);
        assert_eq!(
            *asked.borrow(),
            [None, Some("1".to_string()), Some("2".to_string())]
        );
        // Endless: the limit's page is read, then the error.
        let got = collect(pages(2, |t: Option<String>| async move {
            let n: usize = t.as_deref().map_or(0, |t| t.parse().unwrap());
            Ok((n, true, Some((n + 1).to_string())))
        }));
        assert_eq!(got, [Ok(0), Ok(1), Err(PageError::Limit(2))]);
        // The same token again: stuck, after the page's items.
        let got = collect(pages(9, |_t| async {
            Ok(((), true, Some("x".to_string())))
        }));
        assert_eq!(got, [Ok(()), Ok(()), Err(PageError::Stuck)]);
        // A failure ends it.
        let got = collect(pages(9, |_t| async {
            Err::<Fetched<()>, _>(Failure::new("AccessDenied", "no"))
        }));
        assert_eq!(
            got,
            [Err(PageError::Failed(Failure::new("AccessDenied", "no")))]
        );
        assert_eq!(
            PageError::Limit(5).into_failure("ListUsers").to_string(),
            "PageLimit: ListUsers did not end after 5 pages (max_pages); the rest was not read"
        );
    }
}
