//! The CloudTrail part of one account: for each configured region (in parallel, each with its own 2 req/s
//! LookupEvents bucket) and each configured event name (in turn), LookupEvents with that one EventName
//! attribute (the API takes one attribute per call), the run's time window, 50 events a page (the API's
//! maximum), every page, sending the same parameters again with each NextToken. Each event becomes one
//! `EventRow`. IAM and STS events are recorded in us-east-1, the default region.

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_types::DateTime as SmithyTime;

use crate::pages::{PageError, Pager};
use crate::record::{EventRow, Record};
use crate::retry::{is_denied, Failure};
use crate::session::{utc, CloudTrailApi, Part, Session};
use crate::sink::Sink;

const EVENTS_PAGE: i32 = 50;

/// The event source of IAM's own events.
const IAM_SOURCE: &str = "iam.amazonaws.com";

/// Run every lookup of one account, the regions side by side.
pub async fn lookup(session: &Session, sink: &Sink) {
    futures::future::join_all(
        session
            .cloudtrail()
            .map(|(region, api)| lookup_region(session, sink, region, api)),
    )
    .await;
}

async fn lookup_region(session: &Session, sink: &Sink, region: &str, api: CloudTrailApi<'_>) {
    let s = session.settings();
    let start = SmithyTime::from_secs(s.start.timestamp());
    let end = SmithyTime::from_secs(s.end.timestamp());
    let action = format!("cloudtrail:LookupEvents {region}");
    let malformed = |message: String| {
        session.fail(
            Part::CloudTrail,
            &action,
            &Failure::new("MalformedResponse", message),
        )
    };
    'names: for name in &s.keys.event_names {
        let attribute = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::EventName)
            .attribute_value(name)
            .build()
            .expect("key and value are set");
        let (action, attribute) = (action.as_str(), &attribute);
        // The same parameters with every NextToken, as the API requires.
        let mut pager = Pager::new(s.keys.max_pages);
        let fetch = |token: Option<String>| async move {
            api.call(action, |c, o| {
                c.lookup_events()
                    .lookup_attributes(attribute.clone())
                    .start_time(start)
                    .end_time(end)
                    .max_results(EVENTS_PAGE)
                    .set_next_token(token.clone())
                    .customize()
                    .config_override(o)
                    .send()
            })
            .await
            .map(|p| {
                let next = p.next_token().map(str::to_string);
                (p, next.is_some(), next)
            })
        };
        while let Some(page) = pager.next(fetch).await {
            let page = match page {
                Ok(p) => p,
                // The other event names would be denied too; do not spend calls on them.
                Err(PageError::Failed(f)) if is_denied(&f) => break 'names,
                // Recorded by the call.
                Err(PageError::Failed(_)) => continue 'names,
                Err(e) => {
                    let failure = e.into_failure(&format!("LookupEvents for {name}"));
                    session.fail(Part::CloudTrail, action, &failure);
                    continue 'names;
                }
            };
            for event in page.events() {
                // Every field of Event is optional in the SDK's model: an event without an id or a name is
                // a garbled answer, reported as such rather than written as an empty row.
                if event.event_id().is_none_or(str::is_empty)
                    || event.event_name().is_none_or(str::is_empty)
                {
                    malformed(format!(
                        "LookupEvents for {name} returned an event without an EventId or EventName"
                    ));
                    continue;
                }
                // LookupEvents by name also returns other services' CreateUser/DeleteUser (Identity
                // Center, ElastiCache, MemoryDB, MQ, Transfer, WorkMail): not IAM user churn.
                let source = event.event_source().unwrap_or("");
                if source != IAM_SOURCE && !s.keys.all_event_sources {
                    sink.count_other_source();
                    continue;
                }
                let row = event_row(session, region, event);
                if !sink.send(Record::Event(row)).await {
                    return;
                }
            }
        }
    }
}

/// The fields of one event, with the source IP (and the access key, when the summary lacks it) taken from
/// the event's JSON record.
fn event_row(session: &Session, region: &str, e: &aws_sdk_cloudtrail::types::Event) -> EventRow {
    let detail: Option<serde_json::Value> = e
        .cloud_trail_event()
        .and_then(|json| serde_json::from_str(json).ok());
    if e.cloud_trail_event().is_some() && detail.is_none() {
        // The row is still written; the accounts report says which field could not be read.
        session.problem(
            &format!("cloudtrail:LookupEvents {region}"),
            &Failure::new(
                "MalformedEvent",
                format!(
                    "the CloudTrailEvent JSON of event {} does not parse; its source_ip_address is empty",
                    e.event_id().unwrap_or("")
                ),
            ),
        );
    }
    let from_json = |path: &[&str]| -> String {
        let mut v = detail.as_ref();
        for p in path {
            v = v.and_then(|x| x.get(*p));
        }
        v.and_then(|x| x.as_str()).unwrap_or("").to_string()
    };
    let access_key_id = e
        .access_key_id()
        .map(str::to_string)
        .unwrap_or_else(|| from_json(&["userIdentity", "accessKeyId"]));
    EventRow {
        event_time: e.event_time().and_then(utc),
        event_name: e.event_name().unwrap_or("").to_string(),
        username: e.username().unwrap_or("N/A").to_string(),
        account_id: session.account().id.clone(),
        account_name: session.account().name.clone(),
        resources: e
            .resources()
            .iter()
            .filter_map(|r| r.resource_name())
            .collect::<Vec<_>>()
            .join(","),
        region: region.to_string(),
        event_id: e.event_id().unwrap_or("").to_string(),
        access_key_id,
        source_ip_address: from_json(&["sourceIPAddress"]),
        event_source: e.event_source().unwrap_or("").to_string(),
    }
}
