//! The CloudTrail part of one account: for each configured region (in parallel, each with its own 2 req/s
//! LookupEvents bucket) and each configured event name (in turn), LookupEvents with that one EventName
//! attribute (the API takes one attribute per call), the run's time window, 50 events a page (the API's
//! maximum), every page, sending the same parameters again with each NextToken. Each event becomes one
//! `EventRow`. IAM and STS events are recorded in us-east-1, the default region.
//!
//! CreateAccessKey and DeleteAccessKey go first, in every region at once: their CloudTrail bodies (who
//! called, for which user, which key, from where) fill the account's key ledger, published for the IAM
//! part, which says who created each key of the inventory. The other names follow.

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_types::DateTime as SmithyTime;

use crate::config::iam_home_region;
use crate::ledger::{KeyEvent, KeyLedger, CREATE, DELETE};
use crate::pages::{PageError, Pager};
use crate::record::{Actor, EventRow, Record, ROOT_USER};
use crate::retry::{is_denied, Failure};
use crate::session::{utc, CloudTrailApi, Part, Session};
use crate::sink::Sink;

const EVENTS_PAGE: i32 = 50;

/// The event source of IAM's own events.
const IAM_SOURCE: &str = "iam.amazonaws.com";

/// Run every lookup of one account, the regions side by side. In the IAM home region (where IAM's events
/// are recorded) CreateAccessKey and DeleteAccessKey go first, then the key ledger is published for the
/// IAM part; the other regions do not wait for it, nor it for them (a hung region cannot hold the users'
/// rows).
pub async fn lookup(session: &Session, sink: &Sink) {
    let s = session.settings();
    let home = iam_home_region(session.partition());
    let (keys, rest): (Vec<&String>, Vec<&String>) = s
        .keys
        .event_names
        .iter()
        .partition(|n| *n == CREATE || *n == DELETE);
    let all: Vec<&String> = s.keys.event_names.iter().collect();
    if !session.cloudtrail().any(|(region, _)| region == home) {
        // The IAM home region is not among --regions: who created the keys is unknown.
        sink.publish_ledger(KeyLedger::unread(s.start, s.end));
    }
    let regions = session.cloudtrail().map(|(region, api)| {
        let (keys, rest, all) = (&keys, &rest, &all);
        async move {
            if region != home {
                lookup_region(session, sink, region, api, all).await;
                return;
            }
            let (mut ledger, refused) = lookup_region(session, sink, region, api, keys).await;
            for name in [CREATE, DELETE] {
                if !keys.iter().any(|k| *k == name) {
                    ledger.mark_incomplete(name);
                }
            }
            sink.publish_ledger(ledger);
            if !refused && !rest.is_empty() {
                lookup_region(session, sink, region, api, rest).await;
            }
        }
    });
    futures::future::join_all(regions).await;
}

/// The lookups of `names` in one region. Returns the key events read (and whether every one of them
/// was), and whether LookupEvents was refused (then the region's other names are not asked).
async fn lookup_region(
    session: &Session,
    sink: &Sink,
    region: &str,
    api: CloudTrailApi<'_>,
    names: &[&String],
) -> (KeyLedger, bool) {
    let s = session.settings();
    let mut ledger = KeyLedger::new(s.start, s.end);
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
    let mut refused = false;
    'names: for name in names.iter().copied() {
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
                Err(PageError::Failed(f)) if is_denied(&f) => {
                    refused = true;
                    for n in names {
                        ledger.mark_incomplete(n);
                    }
                    break 'names;
                }
                // Recorded by the call.
                Err(PageError::Failed(_)) => {
                    ledger.mark_incomplete(name);
                    continue 'names;
                }
                Err(e) => {
                    let failure = e.into_failure(&format!("LookupEvents for {name}"));
                    session.fail(Part::CloudTrail, action, &failure);
                    ledger.mark_incomplete(name);
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
                let (row, detail) = event_row(session, region, event);
                if name == CREATE || name == DELETE {
                    match key_event(name, event, detail.as_ref()) {
                        Some(k) => ledger.add(name, k),
                        // A failed call (errorCode) made no key; an event naming no key cannot be
                        // joined, and the ledger says so.
                        None if detail
                            .as_ref()
                            .is_some_and(|d| d.get("errorCode").is_some()) => {}
                        None => ledger.mark_incomplete(name),
                    }
                }
                if !sink.send(Record::Event(row)).await {
                    return (ledger, refused);
                }
            }
        }
    }
    (ledger, refused)
}

/// The key, its owner and the caller of a CreateAccessKey or DeleteAccessKey event, from its CloudTrail
/// body (`responseElements.accessKey.accessKeyId` or `requestParameters.accessKeyId`, else the event's
/// AWS::IAM::AccessKey resource; `requestParameters.userName`, else the caller itself). `None` for a
/// failed call or an event naming no key.
fn key_event(
    name: &str,
    e: &aws_sdk_cloudtrail::types::Event,
    detail: Option<&serde_json::Value>,
) -> Option<KeyEvent> {
    let detail = detail?;
    if detail.get("errorCode").is_some_and(|c| !c.is_null()) {
        return None;
    }
    let text = |path: &[&str]| -> Option<String> {
        let mut v = Some(detail);
        for p in path {
            v = v.and_then(|x| x.get(*p));
        }
        v.and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let key = if name == CREATE {
        text(&["responseElements", "accessKey", "accessKeyId"])
    } else {
        text(&["requestParameters", "accessKeyId"])
    }
    .or_else(|| {
        e.resources()
            .iter()
            .find(|r| r.resource_type() == Some("AWS::IAM::AccessKey"))
            .and_then(|r| r.resource_name())
            .map(str::to_string)
    })?;
    let kind = text(&["userIdentity", "type"]).unwrap_or_default();
    let caller = text(&["userIdentity", "userName"]).unwrap_or_default();
    let owner = text(&["requestParameters", "userName"])
        .or_else(|| text(&["responseElements", "accessKey", "userName"]))
        .unwrap_or_else(|| {
            if kind == "Root" {
                ROOT_USER.to_string()
            } else {
                caller.clone()
            }
        });
    let user_name = if kind == "IAMUser" {
        caller
    } else {
        String::new()
    };
    Some(KeyEvent {
        access_key_id: key,
        owner,
        actor: Actor {
            arn: text(&["userIdentity", "arn"]).unwrap_or_default(),
            kind,
            user_name,
            ip: text(&["sourceIPAddress"]).unwrap_or_default(),
            user_agent: text(&["userAgent"]).unwrap_or_default(),
            event_id: e.event_id().unwrap_or("").to_string(),
            time: e.event_time().and_then(utc),
        },
    })
}

/// The fields of one event, with the source IP (and the access key, when the summary lacks it) taken from
/// the event's JSON record.
fn event_row(
    session: &Session,
    region: &str,
    e: &aws_sdk_cloudtrail::types::Event,
) -> (EventRow, Option<serde_json::Value>) {
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
    let row = EventRow {
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
    };
    (row, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudtrail::types::{Event, Resource};

    fn event(body: serde_json::Value, resource: Option<&str>) -> (Event, serde_json::Value) {
        let mut e = Event::builder()
            .event_id("ev-1")
            .event_time(SmithyTime::from_secs(1_780_000_000));
        if let Some(r) = resource {
            e = e.resources(
                Resource::builder()
                    .resource_type("AWS::IAM::AccessKey")
                    .resource_name(r)
                    .build(),
            );
        }
        (e.build(), body)
    }

    #[test]
    fn key_events_name_the_key_its_owner_and_the_caller() {
        // An admin's role creates a key for a service user.
        let (e, body) = event(
            serde_json::json!({
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/Admin/ann"},
                "sourceIPAddress": "203.0.113.5",
                "userAgent": "console.amazonaws.com",
                "requestParameters": {"userName": "svc"},
                "responseElements": {"accessKey": {"accessKeyId": "AKIA1", "userName": "svc"}},
            }),
            None,
        );
        let k = key_event(CREATE, &e, Some(&body)).unwrap();
        assert_eq!(
            (k.access_key_id.as_str(), k.owner.as_str()),
            ("AKIA1", "svc")
        );
        assert_eq!(k.actor.kind, "AssumedRole");
        assert_eq!(k.actor.user_name, "");
        assert_eq!(k.actor.ip, "203.0.113.5");
        assert_eq!(k.actor.event_id, "ev-1");
        // The root user's own key: no userName parameter.
        let (e, body) = event(
            serde_json::json!({
                "userIdentity": {"type": "Root", "arn": "arn:aws:iam::1:root"},
                "responseElements": {"accessKey": {"accessKeyId": "AKIAROOT"}},
            }),
            None,
        );
        assert_eq!(key_event(CREATE, &e, Some(&body)).unwrap().owner, ROOT_USER);
        // A deletion by a user of its own key, the key from the request (or the event's resource).
        let (e, body) = event(
            serde_json::json!({
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob", "userName": "bob"},
                "requestParameters": {},
            }),
            Some("AKIA2"),
        );
        let k = key_event(DELETE, &e, Some(&body)).unwrap();
        assert_eq!(
            (k.access_key_id.as_str(), k.owner.as_str()),
            ("AKIA2", "bob")
        );
        assert_eq!(k.actor.user_name, "bob");
        // A refused call made no key.
        let (e, body) = event(
            serde_json::json!({"errorCode": "AccessDenied", "userIdentity": {"type": "IAMUser"}}),
            Some("AKIA3"),
        );
        assert!(key_event(CREATE, &e, Some(&body)).is_none());
    }
}
