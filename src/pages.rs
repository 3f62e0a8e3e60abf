//! The one pager of every paginated AWS call (ListAccounts and the OU listings, ListUsers, ListAccessKeys,
//! ListVirtualMFADevices, LookupEvents): `Pager::next` reads a listing's pages one after another, asking
//! for the next page with the token of the last, until a page says it is the last. It ends with an error
//! when a call fails, when the service is stuck (it says there is more but gives no new token, which would
//! otherwise loop forever or silently drop the rest), or after `max_pages` pages (the config key), so that
//! a service that never stops paginating still ends and says so.
//!
//! The pager is a small state beside the caller's loop, not a stream that owns the call: a listing waiting
//! on its call then holds that call alone, which matters with thousands of listings in flight.

use std::future::Future;

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
    Ask,
    Stuck,
    Limit,
    End,
}

/// Where a listing is: the token of its next page and how many pages it has read.
pub struct Pager {
    max_pages: usize,
    read: usize,
    token: Option<String>,
    state: State,
}

impl Pager {
    pub fn new(max_pages: usize) -> Pager {
        Pager {
            max_pages,
            read: 0,
            token: None,
            state: State::Ask,
        }
    }

    /// The next page, read by `fetch(token)` (`None`: the first page), or the error that ends the listing;
    /// `None` once it has ended. A page is returned before an error that its token reveals (stuck, or the
    /// page limit).
    pub async fn next<P, Fut>(
        &mut self,
        fetch: impl FnOnce(Option<String>) -> Fut,
    ) -> Option<Result<P, PageError>>
    where
        Fut: Future<Output = Result<Fetched<P>, Failure>>,
    {
        match std::mem::replace(&mut self.state, State::End) {
            State::End => None,
            State::Stuck => Some(Err(PageError::Stuck)),
            State::Limit => Some(Err(PageError::Limit(self.max_pages))),
            State::Ask => {
                let sent = self.token.take();
                let (page, more, next) = match fetch(sent.clone()).await {
                    Ok(fetched) => fetched,
                    Err(f) => return Some(Err(PageError::Failed(f))),
                };
                self.read += 1;
                self.state = match next_page(more, next.as_deref(), sent.as_deref()) {
                    Next::Done => State::End,
                    Next::Stuck => State::Stuck,
                    Next::Page(_) if self.read >= self.max_pages => State::Limit,
                    Next::Page(t) => {
                        self.token = Some(t);
                        State::Ask
                    }
                };
                Some(Ok(page))
            }
        }
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

    /// Every page (or error) of a listing with `max_pages`, read by `fetch`.
    fn collect<P, Fut>(
        max_pages: usize,
        mut fetch: impl FnMut(Option<String>) -> Fut,
    ) -> Vec<Result<P, PageError>>
    where
        Fut: Future<Output = Result<Fetched<P>, Failure>>,
    {
        futures::executor::block_on(async {
            let mut pager = Pager::new(max_pages);
            let mut out = Vec::new();
            while let Some(page) = pager.next(&mut fetch).await {
                out.push(page);
            }
            out
        })
    }

    #[test]
    fn a_listing_reads_every_page_then_stops_at_its_limit_or_when_stuck() {
        // Three pages, then the end.
        let asked = std::cell::RefCell::new(Vec::new());
        let got = collect(10, |t: Option<String>| {
            asked.borrow_mut().push(t.clone());
            let n: usize = t.as_deref().map_or(0, |t| t.parse().unwrap());
            async move { Ok((n, n < 2, Some((n + 1).to_string()))) }
        });
        assert_eq!(got, [Ok(0), Ok(1), Ok(2)]);
        assert_eq!(
            *asked.borrow(),
            [None, Some("1".to_string()), Some("2".to_string())]
        );
        // Endless: the limit's page is read, then the error.
        let got = collect(2, |t: Option<String>| async move {
            let n: usize = t.as_deref().map_or(0, |t| t.parse().unwrap());
            Ok((n, true, Some((n + 1).to_string())))
        });
        assert_eq!(got, [Ok(0), Ok(1), Err(PageError::Limit(2))]);
        // The same token again: stuck, after the page's items.
        let got = collect(9, |_t| async { Ok(((), true, Some("x".to_string()))) });
        assert_eq!(got, [Ok(()), Ok(()), Err(PageError::Stuck)]);
        // A failure ends it.
        let got = collect(9, |_t| async {
            Err::<Fetched<()>, _>(Failure::new("AccessDenied", "no"))
        });
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
