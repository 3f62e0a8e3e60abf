//! The simulator's HTTP side: a hyper server on 127.0.0.1 that answers Organizations and CloudTrail in
//! awsJson1_1 (`X-Amz-Target`) and STS and IAM in awsQuery (form body, XML answers), with AWS's error
//! shapes. The caller's account comes from the access key in the SigV4 `Authorization` header: keys handed
//! out by the simulated AssumeRole embed the account id, anything else is the management account.
//! Signatures are not verified.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Faults, SimOrg};

/// One call the simulator answered (or refused).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// When the request arrived (before the simulated latency), milliseconds since the simulator started.
    pub at_ms: f64,
    /// The caller's account (the management account for Organizations and STS).
    pub account: String,
    /// Signed with the caller's own credentials (the management identity), not a role the simulator's
    /// AssumeRole handed out: which identity's policy AWS would evaluate.
    pub by_caller: bool,
    /// `service:Action`, e.g. `iam:ListUsers`.
    pub action: String,
    /// Region of the request's signature.
    pub region: String,
    /// `ok`, or the error code answered (`Throttling`, `AccessDenied`, `InternalFailure`, `Reset`, ...).
    pub outcome: String,
    /// Calls being served at the moment this one arrived, itself included.
    pub in_flight: usize,
    /// What the call asked about: LookupEvents' attributes (`EventName=CreateUser`, `;`-joined), the
    /// RoleArn of AssumeRole, `TargetPrincipal TaskPolicyArn` of AssumeRoot, the UserName or AccessKeyId
    /// of IAM calls, the ParentId of the OU tree's.
    pub detail: String,
    /// Signed with a root session's credentials (sts:AssumeRoot): AWS authorizes it by the task policy.
    pub root_session: bool,
}

struct TokenBucket {
    tokens: f64,
    last: Instant,
}

struct State {
    org: SimOrg,
    faults: Faults,
    accounts: HashMap<String, usize>,
    users: Vec<HashMap<String, usize>>,
    keys: Vec<HashMap<String, usize>>,
    buckets: Mutex<HashMap<String, TokenBucket>>,
    /// Access key id → expiry (epoch ms) of sessions handed out by AssumeRole.
    sessions: Mutex<HashMap<String, i64>>,
    /// Access key ids of the root sessions sts:AssumeRoot handed out: their calls are held to the
    /// IAMAuditRootUserCredentials task policy.
    root_sessions: Mutex<std::collections::HashSet<String>>,
    log: Mutex<Vec<Call>>,
    started: Instant,
    in_flight: AtomicUsize,
    /// Calls received so far: the index of a call's fault draws.
    received: AtomicU64,
    peak_in_flight: AtomicUsize,
    connections: AtomicU64,
    served: AtomicU64,
    /// IAM calls of the member accounts.
    iam_served: AtomicU64,
    throttled: AtomicU64,
    next_key: AtomicU64,
    /// Per account: when its credential report generation started (epoch ms), and the LimitExceeded
    /// answers still to give.
    reports: Mutex<HashMap<String, (Option<i64>, u32)>>,
    /// The simulated Security Hub of every account.
    hub: super::hub::Hub,
    /// The simulated S3 (the reports' bucket) and the alerts' webhook.
    s3: super::s3::Store,
    /// `serve_at_once` turns: a request is served only while it holds one.
    turns: Option<tokio::sync::Semaphore>,
    /// Requests waiting for a turn now, and the most that ever waited.
    queued: AtomicUsize,
    peak_queued: AtomicUsize,
}

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

type Resp = Response<Full<Bytes>>;

/// A connection reset: the service errors and hyper closes the connection without an answer.
#[derive(Debug)]
struct Reset;
impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulated connection reset")
    }
}
impl std::error::Error for Reset {}

impl Sim {
    /// Serve `org` on a free loopback port.
    pub async fn start(org: SimOrg, faults: Faults) -> std::io::Result<Sim> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accounts = org
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        let users = org
            .accounts
            .iter()
            .map(|a| {
                a.users
                    .iter()
                    .enumerate()
                    .map(|(i, u)| (u.name.clone(), i))
                    .collect()
            })
            .collect();
        let keys = org
            .accounts
            .iter()
            .map(|a| {
                a.users
                    .iter()
                    .enumerate()
                    .flat_map(|(i, u)| u.keys.iter().map(move |k| (k.id.clone(), i)))
                    .collect()
            })
            .collect();
        let reports = org
            .accounts
            .iter()
            .map(|a| {
                let existing = (faults.report_age_secs > 0).then(|| {
                    now_ms() - faults.report_age_secs as i64 * 1000 - faults.report_delay_ms as i64
                });
                (a.id.clone(), (existing, faults.report_limit_exceeded))
            })
            .collect::<HashMap<_, _>>();
        let faults_turns = faults.serve_at_once;
        let state = Arc::new(State {
            org,
            faults,
            accounts,
            users,
            keys,
            buckets: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            root_sessions: Mutex::new(std::collections::HashSet::new()),
            log: Mutex::new(Vec::new()),
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            received: AtomicU64::new(0),
            peak_in_flight: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            served: AtomicU64::new(0),
            iam_served: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            next_key: AtomicU64::new(0),
            reports: Mutex::new(reports),
            hub: super::hub::Hub::default(),
            s3: super::s3::Store::default(),
            turns: (faults_turns > 0).then(|| tokio::sync::Semaphore::new(faults_turns)),
            queued: AtomicUsize::new(0),
            peak_queued: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let (st, stop2) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    c = listener.accept() => c,
                    _ = stop2.cancelled() => return,
                };
                let Ok((stream, _)) = conn else { continue };
                st.connections.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let (st, stop3) = (st.clone(), stop2.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop3.cancelled() => {}
                    }
                });
            }
        });
        Ok(Sim { addr, state, stop })
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every call so far (empty when the log is off).
    pub fn calls(&self) -> Vec<Call> {
        self.state.log.lock().expect("log").clone()
    }

    /// Calls answered so far, and how many of them were throttled.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.state.served.load(Ordering::Relaxed),
            self.state.throttled.load(Ordering::Relaxed),
        )
    }

    /// IAM calls answered to the member accounts so far (every outcome).
    pub fn iam_calls(&self) -> u64 {
        self.state.iam_served.load(Ordering::Relaxed)
    }

    /// The most calls served at once, and the connections accepted, so far.
    pub fn concurrency(&self) -> (usize, u64) {
        (
            self.state.peak_in_flight.load(Ordering::Relaxed),
            self.state.connections.load(Ordering::Relaxed),
        )
    }

    /// The most requests that waited at once for a turn to be served (`serve_at_once`).
    pub fn peak_queued(&self) -> usize {
        self.state.peak_queued.load(Ordering::Relaxed)
    }

    /// The simulated S3's objects and uploads, and the alerts its webhook got.
    pub fn s3(&self) -> &super::s3::Store {
        &self.state.s3
    }

    /// The findings imported into an account's Security Hub, by `Id`.
    pub fn security_hub(&self, account: &str) -> std::collections::BTreeMap<String, Value> {
        self.state.hub.findings(account)
    }

    /// Start with the Security Hub findings another simulator received: the same accounts' hubs a run
    /// later.
    pub fn carry_security_hub(&self, from: &Sim) {
        self.state.hub.restore(from.state.hub.all());
    }

    /// The organization being served.
    pub fn org(&self) -> &SimOrg {
        &self.state.org
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Credential scope of a SigV4 Authorization header: (access key id, region).
fn credential_scope(req: &Request<Incoming>) -> (String, String, String) {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(cred) = auth.split("Credential=").nth(1) else {
        return (String::new(), "us-east-1".into(), String::new());
    };
    let mut parts = cred.split(['/', ',']);
    let akid = parts.next().unwrap_or("").to_string();
    let _date = parts.next();
    let region = parts.next().unwrap_or("us-east-1").to_string();
    let service = parts.next().unwrap_or("").to_string();
    (akid, region, service)
}

/// An S3 request (`super::s3`) or an alert at `/webhook`: served after the simulated latency, logged
/// as `s3:Action` (or `webhook:Post`) of the management account.
async fn serve_s3(
    state: Arc<State>,
    req: Request<Incoming>,
    akid: String,
    region: String,
) -> Result<Resp, Reset> {
    let webhook = req.uri().path() == "/webhook";
    let method = req.method().as_str().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Reset),
    };
    let arrived_ms = state.started.elapsed().as_secs_f64() * 1000.0;
    if state.faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(state.faults.latency_ms)).await;
    }
    let answer = if webhook {
        state.s3.webhooks.fetch_add(1, Ordering::Relaxed);
        super::s3::Answer {
            status: 200,
            headers: Vec::new(),
            body: Bytes::from_static(b"ok"),
            action: "Post",
            outcome: "ok".into(),
        }
    } else {
        super::s3::serve(
            &state.s3,
            &state.org.management_account,
            &method,
            &path,
            &headers,
            body,
        )
    };
    let ctx = Ctx {
        proto: Proto::Query,
        service: if webhook { "webhook" } else { "s3" },
        action: answer.action.to_string(),
        account: state.org.management_account.clone(),
        region,
        akid,
        by_caller: true,
    };
    let detail = if state.faults.log_calls {
        path.split('?').next().unwrap_or("").to_string()
    } else {
        String::new()
    };
    state.log(&ctx, arrived_ms, &answer.outcome, 1, detail);
    let mut resp = Response::builder()
        .status(answer.status)
        .header("x-amz-request-id", request_id());
    for (k, v) in answer.headers {
        resp = resp.header(k, v);
    }
    Ok(resp.body(Full::new(answer.body)).expect("response"))
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Query,
    Json,
}

struct Ctx {
    proto: Proto,
    service: &'static str,
    action: String,
    account: String,
    region: String,
    akid: String,
    /// Signed with the caller's credentials rather than an assumed role's.
    by_caller: bool,
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn iso(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn request_id() -> String {
    let n: u128 = rand::rng().random();
    format!("{:032x}", n)
}

fn error(ctx: &Ctx, status: u16, code: &str, message: &str) -> Resp {
    match ctx.proto {
        Proto::Query => {
            let kind = if status >= 500 { "Receiver" } else { "Sender" };
            let body = format!(
                "<ErrorResponse xmlns=\"https://{}.amazonaws.com/doc/\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                ctx.service,
                xml_escape(code),
                xml_escape(message),
                request_id()
            );
            Response::builder()
                .status(status)
                .header("content-type", "text/xml")
                .header("x-amzn-requestid", request_id())
                .body(Full::new(Bytes::from(body)))
                .expect("response")
        }
        Proto::Json => Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-errortype", code)
            .header("x-amzn-requestid", request_id())
            .body(Full::new(Bytes::from(
                json!({"__type": code, "message": message}).to_string(),
            )))
            .expect("response"),
    }
}

fn xml_ok(ctx: &Ctx, inner: &str) -> Resp {
    let ns = if ctx.service == "sts" {
        "https://sts.amazonaws.com/doc/2011-06-15/"
    } else {
        "https://iam.amazonaws.com/doc/2010-05-08/"
    };
    let a = &ctx.action;
    let body = format!(
        "<{a}Response xmlns=\"{ns}\"><{a}Result>{inner}</{a}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{a}Response>",
        request_id()
    );
    Response::builder()
        .status(200)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

/// An IAM list in one page: `<Tag><member>…</member>…</Tag><IsTruncated>false</IsTruncated>`.
fn complete_list(tag: &str, members: impl Iterator<Item = String>) -> String {
    let mut xml = format!("<{tag}>");
    for m in members {
        xml.push_str("<member>");
        xml.push_str(&m);
        xml.push_str("</member>");
    }
    xml.push_str(&format!("</{tag}><IsTruncated>false</IsTruncated>"));
    xml
}

fn json_ok(v: Value) -> Resp {
    Response::builder()
        .status(200)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", request_id())
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("response")
}

impl State {
    fn log(&self, ctx: &Ctx, arrived_ms: f64, outcome: &str, in_flight: usize, detail: String) {
        self.served.fetch_add(1, Ordering::Relaxed);
        if ctx.service == "iam" && ctx.account != self.org.management_account {
            self.iam_served.fetch_add(1, Ordering::Relaxed);
        }
        if outcome == "Throttling" || outcome == "ThrottlingException" {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if self.faults.log_calls {
            self.log.lock().expect("log").push(Call {
                at_ms: arrived_ms,
                account: ctx.account.clone(),
                by_caller: ctx.by_caller,
                action: format!("{}:{}", ctx.service, ctx.action),
                region: ctx.region.clone(),
                outcome: outcome.to_string(),
                in_flight,
                detail,
                root_session: self
                    .root_sessions
                    .lock()
                    .expect("root sessions")
                    .contains(&ctx.akid),
            });
        }
    }

    /// Take a token from the caller's bucket for this service; false = throttle.
    fn take(&self, key: String, rate: f64, burst: f64) -> bool {
        if rate <= 0.0 {
            return true;
        }
        let burst = burst.max(1.0);
        let mut buckets = self.buckets.lock().expect("buckets");
        let now = Instant::now();
        let b = buckets.entry(key).or_insert(TokenBucket {
            tokens: burst,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, Reset> {
    let (akid, region, scope) = credential_scope(&req);
    if scope == "s3" || req.uri().path() == "/webhook" {
        return serve_s3(state, req, akid, region).await;
    }
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let token_header = req.headers().contains_key("x-amz-security-token");
    let hub_import = req.method() == hyper::Method::POST && req.uri().path() == "/findings/import";
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Reset),
    };
    let (proto, service, action, params, json_body) = match &target {
        // Security Hub is REST-JSON: the operation is its path.
        None if hub_import => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let action = "BatchImportFindings".to_string();
            (Proto::Json, "securityhub", action, HashMap::new(), v)
        }
        Some(t) => {
            let action = t.rsplit('.').next().unwrap_or("").to_string();
            let service = if t.starts_with("AWSOrganizations") {
                "organizations"
            } else if t.contains("CloudTrail") {
                "cloudtrail"
            } else {
                "unknown"
            };
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (Proto::Json, service, action, HashMap::new(), v)
        }
        None => {
            let params: HashMap<String, String> =
                form_urlencoded::parse(&body).into_owned().collect();
            let action = params.get("Action").cloned().unwrap_or_default();
            let service = if matches!(
                action.as_str(),
                "AssumeRole" | "AssumeRoot" | "GetCallerIdentity"
            ) {
                "sts"
            } else {
                "iam"
            };
            (Proto::Query, service, action, params, Value::Null)
        }
    };
    // Keys from the simulated AssumeRole are ASIA + 12-digit account + 4 digits.
    let by_caller = !(akid.len() == 20
        && akid.starts_with("ASIA")
        && state.accounts.contains_key(&akid[4..16]));
    let account = if by_caller {
        state.org.management_account.clone()
    } else {
        akid[4..16].to_string()
    };
    let ctx = Ctx {
        proto,
        service,
        action,
        account,
        region,
        akid,
        by_caller,
    };
    let arrived_ms = state.started.elapsed().as_secs_f64() * 1000.0;
    // A busy endpoint: wait for a turn (first come, first served) before being served.
    let _turn = match &state.turns {
        Some(turns) => {
            let waiting = state.queued.fetch_add(1, Ordering::Relaxed) + 1;
            state.peak_queued.fetch_max(waiting, Ordering::Relaxed);
            let turn = turns.acquire().await.expect("never closed");
            state.queued.fetch_sub(1, Ordering::Relaxed);
            Some(turn)
        }
        None => None,
    };
    let in_flight = state.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    state.peak_in_flight.fetch_max(in_flight, Ordering::Relaxed);
    let resp = serve(&state, &ctx, &params, &json_body, token_header).await;
    state.in_flight.fetch_sub(1, Ordering::Relaxed);
    let detail = if state.faults.log_calls {
        call_detail(&params, &json_body)
    } else {
        String::new()
    };
    match resp {
        Ok((resp, outcome)) => {
            state.log(&ctx, arrived_ms, &outcome, in_flight, detail);
            Ok(resp)
        }
        Err(Reset) => {
            state.log(&ctx, arrived_ms, "Reset", in_flight, detail);
            Err(Reset)
        }
    }
}

fn call_detail(params: &HashMap<String, String>, body: &Value) -> String {
    if let Some(findings) = body.get("Findings").and_then(Value::as_array) {
        return format!("Findings={}", findings.len());
    }
    if let Some(attrs) = body.get("LookupAttributes").and_then(Value::as_array) {
        return attrs
            .iter()
            .map(|a| {
                format!(
                    "{}={}",
                    a.get("AttributeKey").and_then(Value::as_str).unwrap_or(""),
                    a.get("AttributeValue")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(";");
    }
    if let Some(parent) = body.get("ParentId").and_then(Value::as_str) {
        return parent.to_string();
    }
    if let (Some(target), Some(policy)) = (
        params.get("TargetPrincipal"),
        params.get("TaskPolicyArn.arn"),
    ) {
        return format!("{target} {policy}");
    }
    ["RoleArn", "UserName", "AccessKeyId", "PolicyArn"]
        .iter()
        .find_map(|k| params.get(*k).cloned())
        .unwrap_or_default()
}

async fn serve(
    state: &State,
    ctx: &Ctx,
    params: &HashMap<String, String>,
    body: &Value,
    has_token: bool,
) -> Result<(Resp, String), Reset> {
    let f = &state.faults;
    // This call's own generator: seeded by the scenario's seed and the call's arrival order.
    let n = state.received.fetch_add(1, Ordering::Relaxed);
    let mut rng = StdRng::seed_from_u64(f.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let extra = if f.jitter_ms > 0 {
        rng.random_range(0..=f.jitter_ms)
    } else {
        0
    };
    if f.latency_ms + extra > 0 {
        tokio::time::sleep(Duration::from_millis(f.latency_ms + extra)).await;
    }
    let (reset, fail, slow) = (
        f.reset_rate > 0.0 && rng.random_bool(f.reset_rate.min(1.0)),
        f.error_rate > 0.0 && rng.random_bool(f.error_rate.min(1.0)),
        f.slow_rate > 0.0 && rng.random_bool(f.slow_rate.min(1.0)),
    );
    if slow {
        tokio::time::sleep(Duration::from_millis(f.slow_ms)).await;
    }
    if f.black_hole_regions.contains(&ctx.region) {
        // Never answered; the connection stays open until the client gives up.
        std::future::pending::<()>().await;
    }
    if reset {
        return Err(Reset);
    }
    let err =
        |status: u16, code: &str, msg: &str| Ok((error(ctx, status, code, msg), code.to_string()));
    if fail {
        let code = if ctx.proto == Proto::Json {
            "InternalServerError"
        } else {
            "ServiceFailure"
        };
        return err(
            500,
            code,
            "We encountered an internal error. Please try again.",
        );
    }
    // Sessions from AssumeRole expire.
    if has_token && ctx.account != state.org.management_account {
        let expiry = state
            .sessions
            .lock()
            .expect("sessions")
            .get(&ctx.akid)
            .copied();
        match expiry {
            Some(e) if e <= now_ms() => {
                let code = if ctx.proto == Proto::Json {
                    "ExpiredTokenException"
                } else {
                    "ExpiredToken"
                };
                return err(
                    400,
                    code,
                    "The security token included in the request is expired",
                );
            }
            None => {
                return err(
                    403,
                    "InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                )
            }
            _ => {}
        }
    }
    // A root session may do what its task policy allows, and nothing else.
    if state
        .root_sessions
        .lock()
        .expect("root sessions")
        .contains(&ctx.akid)
        && !(ctx.service == "iam" && ROOT_AUDIT_ACTIONS.contains(&ctx.action.as_str()))
    {
        let code = if ctx.proto == Proto::Json {
            "AccessDeniedException"
        } else {
            "AccessDenied"
        };
        return err(
            403,
            code,
            &format!(
                "User: arn:aws:iam::{}:root is not authorized to perform: {}:{} because no session policy allows it (root session scoped by IAMAuditRootUserCredentials)",
                ctx.account, ctx.service, ctx.action
            ),
        );
    }
    match (ctx.service, ctx.action.as_str()) {
        ("organizations", "ListAccounts") => list_accounts(state, ctx, body),
        (
            "organizations",
            "ListRoots" | "ListOrganizationalUnitsForParent" | "ListAccountsForParent",
        ) => ou_tree(state, ctx, body),
        ("sts", "AssumeRole") => assume_role(state, ctx, params),
        ("sts", "AssumeRoot") => assume_root(state, ctx, params),
        ("sts", "GetCallerIdentity") => {
            let a = match &f.caller_account {
                other if ctx.by_caller && !other.is_empty() => other,
                _ => &ctx.account,
            };
            let inner = format!(
                "<Arn>arn:aws:iam::{a}:user/auditor</Arn><UserId>AIDASIMAUDITOR</UserId><Account>{a}</Account>"
            );
            ok(xml_ok(ctx, &inner))
        }
        ("iam", _) => {
            let (rate, burst) = if f.throttled_accounts.contains(&ctx.account) {
                (f.throttled_accounts_iam_rate, 1.0)
            } else {
                (f.iam_rate, f.iam_burst)
            };
            if !state.take(format!("iam:{}", ctx.account), rate, burst) {
                return err(400, "Throttling", "Rate exceeded");
            }
            iam(state, ctx, params)
        }
        ("securityhub", "BatchImportFindings") => {
            // Security Hub's documented quota: 10 requests/s per account, burst 30.
            if !state.take(format!("hub:{}", ctx.account), 10.0, 30.0) {
                return err(429, "TooManyRequestsException", "Rate exceeded");
            }
            match state.hub.import(f, &ctx.account, &ctx.region, body) {
                Ok(v) => Ok((json_ok(v), "ok".to_string())),
                Err((status, code, message)) => err(status, code, &message),
            }
        }
        ("cloudtrail", "LookupEvents") => {
            if !state.take(
                format!("ct:{}:{}", ctx.account, ctx.region),
                f.cloudtrail_rate,
                f.cloudtrail_burst,
            ) {
                return err(400, "ThrottlingException", "Rate exceeded");
            }
            lookup_events(state, ctx, body)
        }
        _ => err(
            400,
            "InvalidAction",
            &format!("The action {} is not valid for this endpoint.", ctx.action),
        ),
    }
}

type Answer = Result<(Resp, String), Reset>;

/// An AWS error answer, logged under its code.
fn refuse(ctx: &Ctx, status: u16, code: &str, message: &str) -> Answer {
    Ok((error(ctx, status, code, message), code.to_string()))
}

fn ok(r: Resp) -> Answer {
    Ok((r, "ok".into()))
}

/// The page size of an Organizations listing (MaxResults, 1 to 20), or the error code and message of the
/// refusal: AccessDenied when `denied`, InvalidInput for a size out of range.
fn organizations_page(body: &Value, denied: bool) -> Result<usize, (&'static str, &'static str)> {
    if denied {
        return Err((
            "AccessDeniedException",
            "You don't have permissions to access this resource.",
        ));
    }
    let max = body.get("MaxResults").and_then(Value::as_u64).unwrap_or(20);
    if !(1..=20).contains(&max) {
        return Err((
            "InvalidInputException",
            "MaxResults must be between 1 and 20",
        ));
    }
    Ok(max as usize)
}

fn list_accounts(state: &State, ctx: &Ctx, body: &Value) -> Answer {
    let max = match organizations_page(body, state.faults.deny_list_accounts) {
        Ok(max) => max,
        Err((code, message)) => return refuse(ctx, 400, code, message),
    };
    // Tokens: "pN" = page from N; "eN" = an empty page that still carries a token (as AWS may send).
    let token = body
        .get("NextToken")
        .and_then(Value::as_str)
        .unwrap_or("p0");
    let (empty, start) = match token.split_at(1) {
        ("p", n) | ("e", n) => (
            token.starts_with('e'),
            n.parse::<usize>().unwrap_or(usize::MAX),
        ),
        _ => (false, usize::MAX),
    };
    if start == usize::MAX || start > state.org.accounts.len() {
        return refuse(
            ctx,
            400,
            "InvalidInputException",
            "The NextToken is not valid",
        );
    }
    if empty {
        return ok(json_ok(
            json!({"Accounts": [], "NextToken": format!("p{start}")}),
        ));
    }
    let end = (start + max).min(state.org.accounts.len());
    let listed = state.faults.list_accounts_pages;
    if listed > 0 && start > 0 && start / max >= listed {
        return refuse(
            ctx,
            400,
            "InvalidInputException",
            "The NextToken has expired",
        );
    }
    let accounts: Vec<Value> = state.org.accounts[start..end]
        .iter()
        .map(|a| account_json(state, a))
        .collect();
    let mut out = json!({ "Accounts": accounts });
    if end < state.org.accounts.len() {
        // After the first page, one empty page with a token, as ListAccounts may answer.
        let next = if start == 0 {
            format!("e{end}")
        } else {
            format!("p{end}")
        };
        out["NextToken"] = Value::String(next);
    }
    ok(json_ok(out))
}

/// An account as ListAccounts and ListAccountsForParent answer it.
fn account_json(state: &State, a: &super::SimAccount) -> Value {
    json!({
        "Id": a.id,
        "Arn": format!(
            "arn:{}:organizations::{}:account/o-sim/{}",
            if state.faults.us_gov_accounts.contains(&a.id) { "aws-us-gov" } else { "aws" },
            state.org.management_account,
            a.id
        ),
        "Email": format!("{}@example.com", a.id),
        "Name": a.name,
        "Status": a.status,
        "State": a.status,
        "JoinedMethod": "CREATED",
        "JoinedTimestamp": 1_700_000_000,
    })
}

/// ListRoots, ListOrganizationalUnitsForParent and ListAccountsForParent over the OU tree, 20 at most a
/// page (tokens "pN": the page from N).
fn ou_tree(state: &State, ctx: &Ctx, body: &Value) -> Answer {
    let denied = state.faults.deny_list_accounts || state.faults.deny_ou_tree;
    let max = match organizations_page(body, denied) {
        Ok(max) => max,
        Err((code, message)) => return refuse(ctx, 400, code, message),
    };
    let parent = body.get("ParentId").and_then(Value::as_str).unwrap_or("");
    let org = &state.org;
    let known = parent == super::ROOT_ID || org.ous.iter().any(|o| o.id == parent);
    // The root's children have an empty parent in the model.
    let under = |p: &str| {
        if parent == super::ROOT_ID {
            p.is_empty()
        } else {
            p == parent
        }
    };
    let (key, items): (&str, Vec<Value>) = match ctx.action.as_str() {
        "ListRoots" => (
            "Roots",
            vec![json!({"Id": super::ROOT_ID, "Arn": format!("arn:aws:organizations::{}:root/o-sim/{}", org.management_account, super::ROOT_ID), "Name": "Root", "PolicyTypes": []})],
        ),
        _ if !known => {
            return refuse(ctx, 400, "ParentNotFoundException", "We can't find a root or OU with the ParentId that you specified.")
        }
        "ListOrganizationalUnitsForParent" => (
            "OrganizationalUnits",
            org.ous
                .iter()
                .filter(|o| under(&o.parent))
                .map(|o| json!({"Id": o.id, "Arn": format!("arn:aws:organizations::{}:ou/o-sim/{}", org.management_account, o.id), "Name": o.name}))
                .collect(),
        ),
        _ => (
            "Accounts",
            org.accounts
                .iter()
                .filter(|a| under(&a.parent) && !state.faults.hidden_from_tree.contains(&a.id))
                .map(|a| account_json(state, a))
                .collect(),
        ),
    };
    let start = match body.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => match t.strip_prefix('p').and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= items.len() => n,
            _ => {
                return refuse(
                    ctx,
                    400,
                    "InvalidInputException",
                    "The NextToken is not valid",
                )
            }
        },
    };
    let end = (start + max).min(items.len());
    let mut out = json!({ key: items[start..end].to_vec() });
    if end < items.len() {
        out["NextToken"] = Value::String(format!("p{end}"));
    }
    ok(json_ok(out))
}

/// A session of `target` that expires in `lifetime` seconds: its access key id (ASIA + the account +
/// four digits), its number, and its expiration as STS writes it.
fn issue_session(state: &State, target: &str, lifetime: i64) -> (String, u64, String) {
    let n = state.next_key.fetch_add(1, Ordering::Relaxed) % 10_000;
    let akid = format!("ASIA{target}{n:04}");
    let expiry_ms = now_ms() + lifetime * 1000;
    state
        .sessions
        .lock()
        .expect("sessions")
        .insert(akid.clone(), expiry_ms);
    let expiration = chrono::DateTime::from_timestamp_millis(expiry_ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    (akid, n, expiration)
}

fn assume_role(state: &State, ctx: &Ctx, params: &HashMap<String, String>) -> Answer {
    let arn = params.get("RoleArn").cloned().unwrap_or_default();
    let session = params.get("RoleSessionName").cloned().unwrap_or_default();
    let target = arn.split(':').nth(4).unwrap_or("").to_string();
    let role = arn.split(":role/").nth(1).unwrap_or("").to_string();
    let denied = || {
        refuse(ctx, 403, "AccessDenied", &format!(
                    "User: arn:aws:iam::{}:user/auditor is not authorized to perform: sts:AssumeRole on resource: {arn}",
                    state.org.management_account
                ))
    };
    let Some(&idx) = state.accounts.get(&target) else {
        return denied();
    };
    let acct = &state.org.accounts[idx];
    let role_name = role.rsplit('/').next().unwrap_or("");
    let not_deployed = state
        .faults
        .account_roles
        .get(&target)
        .is_some_and(|roles| !roles.iter().any(|r| r == role_name));
    if acct.status != "ACTIVE"
        || state.faults.deny_assume_role.contains(&target)
        || role.is_empty()
        || not_deployed
    {
        return denied();
    }
    let duration: i64 = params
        .get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    let lifetime = if state.faults.credential_lifetime_secs > 0 {
        state.faults.credential_lifetime_secs as i64
    } else {
        duration
    };
    let (akid, n, expiration) = issue_session(state, &target, lifetime);
    let inner = format!(
        "<AssumedRoleUser><Arn>arn:aws:sts::{target}:assumed-role/{role}/{session}</Arn><AssumedRoleId>AROASIM{target}:{session}</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>{akid}</AccessKeyId><SecretAccessKey>simsecret{n:04}</SecretAccessKey><SessionToken>simtoken-{akid}</SessionToken><Expiration>{expiration}</Expiration></Credentials>",
        role = xml_escape(&role),
        session = xml_escape(&session),
    );
    ok(xml_ok(ctx, &inner))
}

/// What a root session scoped by IAMAuditRootUserCredentials may call (AWS's managed policy: the root
/// user's password, access keys and their last use, signing certificates, MFA devices, and the account's
/// credential summary).
pub const ROOT_AUDIT_ACTIONS: [&str; 6] = [
    "GetLoginProfile",
    "ListAccessKeys",
    "GetAccessKeyLastUsed",
    "ListMFADevices",
    "ListSigningCertificates",
    "GetAccountSummary",
];

/// sts:AssumeRoot: from the management identity only, for an ACTIVE member account, where the
/// organization manages root credentials, with the audit task policy and at most 900 seconds.
fn assume_root(state: &State, ctx: &Ctx, params: &HashMap<String, String>) -> Answer {
    let target = params.get("TargetPrincipal").cloned().unwrap_or_default();
    let target = target
        .strip_prefix("arn:aws:iam::")
        .and_then(|t| t.strip_suffix(":root"))
        .unwrap_or(&target)
        .to_string();
    let policy = params.get("TaskPolicyArn.arn").cloned().unwrap_or_default();
    let duration: i64 = params
        .get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(900);
    let f = &state.faults;
    let denied = |why: &str| {
        refuse(ctx, 403, "AccessDenied", &format!(
            "User: arn:aws:iam::{}:user/auditor is not authorized to perform: sts:AssumeRoot on resource: arn:aws:iam::{target}:root ({why})",
            state.org.management_account
        ))
    };
    if !ctx.by_caller {
        return denied("only the management account or IAM's delegated administrator may");
    }
    if !f.root_credentials_management {
        return denied("centralized root access is not enabled");
    }
    if policy != "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials" {
        return refuse(
            ctx,
            400,
            "ValidationError",
            &format!("TaskPolicyArn {policy} is not a root task policy this simulator serves"),
        );
    }
    if !(0..=900).contains(&duration) {
        return refuse(
            ctx,
            400,
            "ValidationError",
            "DurationSeconds must be at most 900",
        );
    }
    let Some(&idx) = state.accounts.get(&target) else {
        return denied("not a member account");
    };
    if target == state.org.management_account
        || state.org.accounts[idx].status != "ACTIVE"
        || f.deny_assume_root.contains(&target)
    {
        return denied("refused");
    }
    let (akid, n, expiration) = issue_session(state, &target, duration);
    state
        .root_sessions
        .lock()
        .expect("root sessions")
        .insert(akid.clone());
    ok(xml_ok(
        ctx,
        &format!("<Credentials><AccessKeyId>{akid}</AccessKeyId><SecretAccessKey>simroot{n:04}</SecretAccessKey><SessionToken>simroottoken-{akid}</SessionToken><Expiration>{expiration}</Expiration></Credentials>"),
    ))
}

/// What the root user's own calls answer in a root session (no UserName: the caller, the root user);
/// `None` for the others.
fn root_user_answer(
    state: &State,
    ctx: &Ctx,
    acct: &super::SimAccount,
    p: &HashMap<String, String>,
) -> Option<Answer> {
    if p.contains_key("UserName")
        || !state
            .root_sessions
            .lock()
            .expect("root sessions")
            .contains(&ctx.akid)
    {
        return None;
    }
    let root = &acct.root;
    Some(match ctx.action.as_str() {
        "GetLoginProfile" if root.no_password => refuse(ctx, 404, "NoSuchEntity", "Login Profile for the root user cannot be found."),
        "GetLoginProfile" => ok(xml_ok(ctx, &format!("<LoginProfile><CreateDate>{}</CreateDate><PasswordResetRequired>false</PasswordResetRequired></LoginProfile>", iso(root.created)))),
        "ListAccessKeys" => ok(xml_ok(ctx, &complete_list("AccessKeyMetadata", root.keys.iter().map(|k| format!(
            "<AccessKeyId>{}</AccessKeyId><Status>{}</Status><CreateDate>{}</CreateDate>",
            k.id, if k.active { "Active" } else { "Inactive" }, iso(k.created)
        ))))),
        "ListMFADevices" => ok(xml_ok(ctx, &complete_list("MFADevices", root.mfa.iter().map(|s| format!(
            "<UserName>{}</UserName><SerialNumber>{}</SerialNumber><EnableDate>{}</EnableDate>",
            acct.id, xml_escape(s), iso(root.created)
        ))))),
        "ListSigningCertificates" => ok(xml_ok(ctx, &complete_list("Certificates", std::iter::empty::<String>()))),
        _ => return None,
    })
}

/// A credential report is reused while younger than this (AWS: 4 hours).
const REPORT_REUSE_MS: i64 = 4 * 3600 * 1000;

fn iam(state: &State, ctx: &Ctx, p: &HashMap<String, String>) -> Answer {
    if ctx.action == "ListOrganizationsFeatures" && ctx.account == state.org.management_account {
        let features = if state.faults.root_credentials_management {
            "<member>RootCredentialsManagement</member><member>RootSessions</member>"
        } else {
            ""
        };
        return ok(xml_ok(
            ctx,
            &format!("<OrganizationId>o-sim</OrganizationId><EnabledFeatures>{features}</EnabledFeatures>"),
        ));
    }
    let Some(&idx) = state.accounts.get(&ctx.account) else {
        return refuse(ctx, 403, "AccessDenied", "not a member account");
    };
    let acct = &state.org.accounts[idx];
    let no_user = |name: &str| {
        refuse(
            ctx,
            404,
            "NoSuchEntity",
            &format!("The user with name {name} cannot be found."),
        )
    };
    let user_of = |name: &str| {
        if state.faults.vanished_users.iter().any(|v| v == name) {
            return None;
        }
        state.users[idx].get(name).map(|&i| &acct.users[i])
    };
    let denied = |action: &str| {
        refuse(ctx, 403, "AccessDenied", &format!(
                    "User: arn:aws:sts::{}:assumed-role/IAMAuditRole/iam-audit is not authorized to perform: iam:{action} on resource: *",
                    ctx.account
                ))
    };
    let f = &state.faults;
    if let Some(answer) = root_user_answer(state, ctx, acct, p) {
        return answer;
    }
    match ctx.action.as_str() {
        "GenerateCredentialReport" | "GetCredentialReport"
            if f.deny_credential_report.contains(&ctx.account) =>
        {
            denied(&ctx.action)
        }
        "GetAccountSummary" | "ListVirtualMFADevices" if f.deny_root_checks.contains(&ctx.account) => {
            denied(&ctx.action)
        }
        "ListServiceSpecificCredentials" | "ListSigningCertificates" | "ListSSHPublicKeys"
        | "ListEntitiesForPolicy"
            if f.deny_other_credentials.contains(&ctx.account) =>
        {
            denied(&ctx.action)
        }
        "ListEntitiesForPolicy" => {
            let arn = p.get("PolicyArn").cloned().unwrap_or_default();
            let Some(name) = arn.strip_prefix("arn:aws:iam::aws:policy/") else {
                return refuse(ctx, 400, "InvalidInput", &format!("ARN {arn} is not valid."));
            };
            let users: Vec<&super::SimUser> = acct
                .users
                .iter()
                .filter(|u| user_of(&u.name).is_some() && u.policies.iter().any(|x| x == name))
                .collect();
            let mut xml = String::from("<PolicyGroups/><PolicyUsers>");
            for (i, u) in users.iter().enumerate() {
                xml.push_str(&format!(
                    "<member><UserName>{}</UserName><UserId>AIDA{i:017}</UserId></member>",
                    xml_escape(&u.name)
                ));
            }
            xml.push_str("</PolicyUsers><PolicyRoles/><IsTruncated>false</IsTruncated>");
            ok(xml_ok(ctx, &xml))
        }
        "ListServiceSpecificCredentials" => {
            let all = p.get("AllUsers").is_some_and(|v| v == "true");
            let user = p.get("UserName");
            let service = p.get("ServiceName");
            if all && user.is_some() {
                return refuse(ctx, 400, "ValidationError", "AllUsers cannot be specified together with UserName.");
            }
            if all && service.is_none() && f.service_name_required {
                return refuse(ctx, 400, "ValidationError", "ServiceName is required when AllUsers is true.");
            }
            let users: Vec<&super::SimUser> = match (all, user) {
                (true, _) => acct.users.iter().filter(|u| user_of(&u.name).is_some()).collect(),
                (false, Some(name)) => match user_of(name) {
                    Some(u) => vec![u],
                    None => return no_user(name),
                },
                (false, None) => return no_user("(the caller)"),
            };
            let creds: Vec<(&super::SimUser, &super::SimCredential)> = users
                .into_iter()
                .flat_map(|u| u.credentials.iter().map(move |c| (u, c)))
                .filter(|(_, c)| c.kind == super::SimCredentialKind::Service)
                .filter(|(_, c)| service.is_none_or(|s| *s == c.service))
                .collect();
            let max: usize = p.get("MaxItems").and_then(|m| m.parse().ok()).unwrap_or(100).clamp(1, 1000);
            let start: usize = p.get("Marker").and_then(|m| m.strip_prefix("s")).and_then(|m| m.parse().ok()).unwrap_or(0);
            let end = (start + max).min(creds.len());
            let mut xml = String::from("<ServiceSpecificCredentials>");
            for (u, c) in &creds[start.min(end)..end] {
                xml.push_str(&format!(
                    "<member><UserName>{n}</UserName><Status>{st}</Status><ServiceUserName>{n}-at-{a}</ServiceUserName><CreateDate>{cd}</CreateDate>{ex}<ServiceSpecificCredentialId>{id}</ServiceSpecificCredentialId><ServiceName>{sv}</ServiceName></member>",
                    n = xml_escape(&u.name),
                    st = match c.expires {
                        Some(t) if t * 1000 < now_ms() => "Expired",
                        _ if c.active => "Active",
                        _ => "Inactive",
                    },
                    a = acct.id,
                    cd = iso(c.created),
                    ex = c.expires.map(|t| format!("<ExpirationDate>{}</ExpirationDate>", iso(t))).unwrap_or_default(),
                    id = c.id,
                    sv = c.service,
                ));
            }
            xml.push_str("</ServiceSpecificCredentials>");
            if end < creds.len() {
                xml.push_str(&format!("<IsTruncated>true</IsTruncated><Marker>s{end}</Marker>"));
            } else {
                xml.push_str("<IsTruncated>false</IsTruncated>");
            }
            ok(xml_ok(ctx, &xml))
        }
        "ListSigningCertificates" | "ListSSHPublicKeys" => {
            let name = p.get("UserName").cloned().unwrap_or_default();
            let Some(u) = user_of(&name) else { return no_user(&name) };
            let (kind, tag) = if ctx.action == "ListSigningCertificates" {
                (super::SimCredentialKind::SigningCertificate, "Certificates")
            } else {
                (super::SimCredentialKind::SshPublicKey, "SSHPublicKeys")
            };
            let members = u.credentials.iter().filter(|c| c.kind == kind).map(|c| {
                let status = if c.active { "Active" } else { "Inactive" };
                if kind == super::SimCredentialKind::SigningCertificate {
                    format!(
                        "<UserName>{}</UserName><CertificateId>{}</CertificateId><CertificateBody>-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----</CertificateBody><Status>{status}</Status><UploadDate>{}</UploadDate>",
                        xml_escape(&u.name), c.id, iso(c.created)
                    )
                } else {
                    format!(
                        "<UserName>{}</UserName><SSHPublicKeyId>{}</SSHPublicKeyId><Status>{status}</Status><UploadDate>{}</UploadDate>",
                        xml_escape(&u.name), c.id, iso(c.created)
                    )
                }
            });
            ok(xml_ok(ctx, &complete_list(tag, members)))
        }
        "GenerateCredentialReport" => {
            let now = now_ms();
            let mut reports = state.reports.lock().expect("reports");
            let entry = reports.entry(ctx.account.clone()).or_insert((None, f.report_limit_exceeded));
            if entry.1 > 0 {
                entry.1 -= 1;
                return refuse(ctx, 409, "LimitExceeded", "Cannot generate a credential report: too many requests at once.");
            }
            let (state_name, description) = match entry.0 {
                Some(start) if now - start < REPORT_REUSE_MS => {
                    if now - start < f.report_delay_ms as i64 {
                        ("INPROGRESS", "Report generation in progress.")
                    } else {
                        ("COMPLETE", "Report is ready.")
                    }
                }
                _ => {
                    entry.0 = Some(now);
                    if f.report_delay_ms == 0 {
                        ("COMPLETE", "Report is ready.")
                    } else {
                        ("STARTED", "No report exists. Starting a new report generation task")
                    }
                }
            };
            ok(xml_ok(ctx, &format!("<State>{state_name}</State><Description>{description}</Description>")))
        }
        "GetCredentialReport" => {
            let now = now_ms();
            let start = state.reports.lock().expect("reports").get(&ctx.account).and_then(|e| e.0);
            let Some(start) = start else {
                return refuse(ctx, 410, "ReportNotPresent", "Credential report does not exist. Use GenerateCredentialReport to generate a report.");
            };
            if now - start < f.report_delay_ms as i64 {
                return refuse(ctx, 404, "ReportInProgress", "Credential report generation is in progress.");
            }
            if now - start >= REPORT_REUSE_MS {
                return refuse(ctx, 410, "ReportExpired", "Credential report has expired. Use GenerateCredentialReport to generate a new report.");
            }
            let generated = (start + f.report_delay_ms as i64) / 1000;
            let csv = credential_report_csv(acct, generated);
            ok(xml_ok(
                ctx,
                &format!(
                    "<Content>{}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>{}</GeneratedTime>",
                    aws_smithy_types::base64::encode(csv.as_bytes()),
                    iso(generated)
                ),
            ))
        }
        "GetAccountSummary" => {
            let entries = [
                ("AccountMFAEnabled", i64::from(!acct.root.mfa.is_empty())),
                ("AccountAccessKeysPresent", i64::from(!acct.root.keys.is_empty())),
                ("AccountPasswordPresent", i64::from(!acct.root.no_password)),
                ("Users", acct.users.len() as i64),
                (
                    "MFADevicesInUse",
                    (acct.users.iter().map(|u| u.mfa.len()).sum::<usize>()
                        + if f.summary_without_root_mfa { 0 } else { acct.root.mfa.len() }) as i64,
                ),
            ];
            let map: String = entries
                .iter()
                .map(|(k, v)| format!("<entry><key>{k}</key><value>{v}</value></entry>"))
                .collect();
            ok(xml_ok(ctx, &format!("<SummaryMap>{map}</SummaryMap>")))
        }
        "ListVirtualMFADevices" => {
            // Every assigned virtual device: the root user's, then the users'.
            let mut devices: Vec<String> = acct
                .root
                .mfa
                .iter()
                .filter(|s| s.contains(":mfa/"))
                .map(|serial| {
                    format!(
                        "<SerialNumber>{}</SerialNumber><User><Path>/</Path><UserName>{}</UserName><UserId>{}</UserId><Arn>arn:aws:iam::{}:root</Arn><CreateDate>{}</CreateDate></User><EnableDate>{}</EnableDate>",
                        xml_escape(serial),
                        acct.id,
                        acct.id,
                        acct.id,
                        iso(acct.root.created),
                        iso(acct.root.created)
                    )
                })
                .collect();
            for u in &acct.users {
                for serial in u.mfa.iter().filter(|s| s.starts_with("arn:") && s.contains(":mfa/")) {
                    devices.push(format!(
                        "<SerialNumber>{}</SerialNumber><User><Path>/</Path><UserName>{n}</UserName><UserId>AIDA{a}</UserId><Arn>arn:aws:iam::{a}:user/{n}</Arn><CreateDate>{c}</CreateDate></User><EnableDate>{c}</EnableDate>",
                        xml_escape(serial),
                        n = xml_escape(&u.name),
                        a = acct.id,
                        c = iso(u.created),
                    ));
                }
            }
            let max: usize = p.get("MaxItems").and_then(|m| m.parse().ok()).unwrap_or(100).clamp(1, 100);
            let start: usize = p.get("Marker").and_then(|m| m.strip_prefix('v')).and_then(|m| m.parse().ok()).unwrap_or(0);
            let end = (start + max).min(devices.len());
            let mut xml = String::from("<VirtualMFADevices>");
            for d in &devices[start.min(end)..end] {
                xml.push_str("<member>");
                xml.push_str(d);
                xml.push_str("</member>");
            }
            xml.push_str("</VirtualMFADevices>");
            if end < devices.len() {
                xml.push_str(&format!("<IsTruncated>true</IsTruncated><Marker>v{end}</Marker>"));
            } else {
                xml.push_str("<IsTruncated>false</IsTruncated>");
            }
            ok(xml_ok(ctx, &xml))
        }
        "ListUsers" => {
            let max: usize = p.get("MaxItems").and_then(|m| m.parse().ok()).unwrap_or(100);
            // IAM may return fewer than asked with IsTruncated true: pages here hold at most 100.
            let max = max.clamp(1, 100);
            let start: usize = p.get("Marker").and_then(|m| m.strip_prefix("u")).and_then(|m| m.parse().ok()).unwrap_or(0);
            let end = (start + max).min(acct.users.len());
            let mut xml = String::from("<Users>");
            for u in &acct.users[start.min(end)..end] {
                xml.push_str(&format!(
                    "<member><Path>/</Path><UserName>{n}</UserName><UserId>AIDA{id}</UserId><Arn>arn:aws:iam::{a}:user/{n}</Arn><CreateDate>{c}</CreateDate>{pl}</member>",
                    n = xml_escape(&u.name),
                    id = &acct.id,
                    a = acct.id,
                    c = iso(u.created),
                    pl = u.password_last_used.map(|t| format!("<PasswordLastUsed>{}</PasswordLastUsed>", iso(t))).unwrap_or_default(),
                ));
            }
            xml.push_str("</Users>");
            if end < acct.users.len() {
                xml.push_str(&format!("<IsTruncated>true</IsTruncated><Marker>u{end}</Marker>"));
            } else if state.faults.endless_users.contains(&acct.id) {
                // A listing that never ends: empty pages, each with a new Marker.
                xml.push_str(&format!("<IsTruncated>true</IsTruncated><Marker>u{}</Marker>", start.max(end) + 1));
            } else {
                xml.push_str("<IsTruncated>false</IsTruncated>");
            }
            ok(xml_ok(ctx, &xml))
        }
        "ListAccessKeys" if state.faults.malformed_accounts.contains(&ctx.account) => Ok((
            Response::builder()
                .status(200)
                .header("content-type", "text/xml")
                .body(Full::new(Bytes::from_static(b"<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member><UserName>")))
                .expect("response"),
            "Malformed".into(),
        )),
        "ListAccessKeys" => {
            let name = p.get("UserName").cloned().unwrap_or_default();
            let Some(u) = user_of(&name) else { return no_user(&name) };
            let keys = u.keys.iter().map(|k| {
                format!(
                    "<UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>{}</Status><CreateDate>{}</CreateDate>",
                    xml_escape(&u.name),
                    k.id,
                    if k.active { "Active" } else { "Inactive" },
                    iso(k.created)
                )
            });
            ok(xml_ok(ctx, &complete_list("AccessKeyMetadata", keys)))
        }
        "ListMFADevices" => {
            let name = p.get("UserName").cloned().unwrap_or_default();
            let Some(u) = user_of(&name) else { return no_user(&name) };
            let devices = u.mfa.iter().map(|serial| {
                format!(
                    "<UserName>{}</UserName><SerialNumber>{}</SerialNumber><EnableDate>{}</EnableDate>",
                    xml_escape(&u.name),
                    xml_escape(serial),
                    iso(u.created)
                )
            });
            ok(xml_ok(ctx, &complete_list("MFADevices", devices)))
        }
        "GetLoginProfile" => {
            let name = p.get("UserName").cloned().unwrap_or_default();
            let Some(u) = user_of(&name) else { return no_user(&name) };
            if !u.login_profile {
                return refuse(ctx, 404, "NoSuchEntity", &format!("Login Profile for User {name} cannot be found."));
            }
            ok(xml_ok(
                ctx,
                &format!(
                    "<LoginProfile><UserName>{}</UserName><CreateDate>{}</CreateDate><PasswordResetRequired>false</PasswordResetRequired></LoginProfile>",
                    xml_escape(&u.name),
                    iso(u.created)
                ),
            ))
        }
        "GetAccessKeyLastUsed" => {
            let id = p.get("AccessKeyId").cloned().unwrap_or_default();
            if let Some(k) = acct.root.keys.iter().find(|k| k.id == id) {
                let used = match &k.last_used {
                    Some((t, svc, region)) => format!("<LastUsedDate>{}</LastUsedDate><ServiceName>{svc}</ServiceName><Region>{region}</Region>", iso(*t)),
                    None => "<ServiceName>N/A</ServiceName><Region>N/A</Region>".to_string(),
                };
                return ok(xml_ok(ctx, &format!("<AccessKeyLastUsed>{used}</AccessKeyLastUsed>")));
            }
            let Some(&ui) = state.keys[idx].get(&id) else {
                return refuse(ctx, 404, "NoSuchEntity", &format!("The Access Key with id {id} cannot be found"));
            };
            let u = &acct.users[ui];
            let k = u.keys.iter().find(|k| k.id == id).expect("indexed key");
            let used = match &k.last_used {
                Some((t, svc, region)) => format!(
                    "<LastUsedDate>{}</LastUsedDate><ServiceName>{svc}</ServiceName><Region>{region}</Region>",
                    iso(*t)
                ),
                None => "<ServiceName>N/A</ServiceName><Region>N/A</Region>".to_string(),
            };
            ok(xml_ok(
                ctx,
                &format!(
                    "<UserName>{}</UserName><AccessKeyLastUsed>{used}</AccessKeyLastUsed>",
                    xml_escape(&u.name)
                ),
            ))
        }
        other => refuse(ctx, 403, "AccessDenied", &format!(
                    "User: arn:aws:sts::{}:assumed-role/IAMAuditRole/iam-audit is not authorized to perform: iam:{other}",
                    ctx.account
                )),
    }
}

/// The account's credential report as AWS writes it, generated at `generated` (epoch seconds): the root
/// user first, then the users and keys that existed then.
fn credential_report_csv(acct: &super::SimAccount, generated: i64) -> String {
    let mut out = String::from("user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n");
    let t = |epoch: i64| {
        chrono::DateTime::from_timestamp(epoch, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
            .unwrap_or_default()
    };
    let slots = |keys: &[super::SimKey]| {
        let mut cells = Vec::new();
        let existing: Vec<&super::SimKey> =
            keys.iter().filter(|k| k.created <= generated).collect();
        for n in 0..2 {
            match existing.get(n) {
                Some(k) => {
                    let (used, region, service) = match &k.last_used {
                        Some((at, svc, region)) if *at <= generated => {
                            (t(*at), region.clone(), svc.clone())
                        }
                        _ => ("N/A".to_string(), "N/A".to_string(), "N/A".to_string()),
                    };
                    cells.push(format!(
                        "{},{},{used},{region},{service}",
                        k.active,
                        t(k.created)
                    ));
                }
                None => cells.push("false,N/A,N/A,N/A,N/A".to_string()),
            }
        }
        cells.join(",")
    };
    // CSV-quote a user name the way AWS's report would need it (names may hold `,`? IAM forbids it, but
    // quote anyway).
    let q = |s: &str| {
        if s.contains([',', '"']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let root = &acct.root;
    out.push_str(&format!(
        "<root_account>,arn:aws:iam::{id}:root,{created},not_supported,{used},not_supported,not_supported,{mfa},{slots},false,N/A,false,N/A\n",
        id = acct.id,
        created = t(root.created),
        used = root.password_last_used.filter(|u| *u <= generated).map_or("no_information".to_string(), t),
        mfa = !root.mfa.is_empty(),
        slots = slots(&root.keys),
    ));
    for u in acct.users.iter().filter(|u| u.created <= generated) {
        let (enabled, used, changed) = if u.login_profile {
            (
                "true",
                u.password_last_used
                    .filter(|x| *x <= generated)
                    .map_or("no_information".to_string(), t),
                t(u.created),
            )
        } else {
            ("false", "N/A".to_string(), "N/A".to_string())
        };
        out.push_str(&format!(
            "{name},arn:aws:iam::{id}:user/{name},{created},{enabled},{used},{changed},N/A,{mfa},{slots},{certs}\n",
            name = q(&u.name),
            id = acct.id,
            created = t(u.created),
            mfa = !u.mfa.is_empty(),
            slots = slots(&u.keys),
            certs = {
                let certs: Vec<&super::SimCredential> = u
                    .credentials
                    .iter()
                    .filter(|c| c.kind == super::SimCredentialKind::SigningCertificate && c.created <= generated)
                    .collect();
                (0..2)
                    .map(|i| match certs.get(i) {
                        Some(c) => format!("{},{}", c.active, t(c.created)),
                        None => "false,N/A".to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ));
    }
    out
}

fn epoch_of(v: Option<&Value>) -> Option<f64> {
    v.and_then(|v| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

fn lookup_events(state: &State, ctx: &Ctx, body: &Value) -> Answer {
    let bad = |code: &str, msg: &str| Ok((error(ctx, 400, code, msg), code.to_string()));
    let Some(&idx) = state.accounts.get(&ctx.account) else {
        return bad("AccessDeniedException", "not a member account");
    };
    if state.faults.deny_lookup_events.contains(&ctx.account) {
        return refuse(ctx, 400, "AccessDeniedException", &format!(
                    "User: arn:aws:sts::{}:assumed-role/IAMAuditRole/iam-audit is not authorized to perform: cloudtrail:LookupEvents because no identity-based policy allows the cloudtrail:LookupEvents action",
                    ctx.account
                ));
    }
    let attrs = body
        .get("LookupAttributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if attrs.len() > 1 {
        return bad(
            "InvalidLookupAttributesException",
            "You can only specify one lookup attribute.",
        );
    }
    let max = body.get("MaxResults").and_then(Value::as_u64).unwrap_or(50);
    if !(1..=50).contains(&max) {
        return bad(
            "InvalidMaxResultsException",
            "MaxResults must be between 1 and 50.",
        );
    }
    let start = epoch_of(body.get("StartTime")).unwrap_or(f64::MIN);
    let end = epoch_of(body.get("EndTime")).unwrap_or(f64::MAX);
    if start > end {
        return bad(
            "InvalidTimeRangeException",
            "StartTime must be before EndTime.",
        );
    }
    let (key, value) = attrs
        .first()
        .map(|a| {
            (
                a.get("AttributeKey")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                a.get("AttributeValue")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .unwrap_or_default();
    // A token is only valid with the same parameters it was issued for.
    let fingerprint = format!("{key}={value}/{start}/{end}/{}", ctx.region);
    let fp_hash = fingerprint.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    });
    let offset = match body.get("NextToken").and_then(Value::as_str) {
        None => 0usize,
        Some(t) => match t.split_once(':') {
            Some((o, h)) if h == format!("{fp_hash:x}") => o.parse().unwrap_or(usize::MAX),
            _ => usize::MAX,
        },
    };
    if offset == usize::MAX {
        return bad(
            "InvalidNextTokenException",
            "Invalid NextToken: it does not match the request parameters.",
        );
    }
    let acct = &state.org.accounts[idx];
    let mut matching: Vec<&super::SimEvent> = acct
        .events
        .iter()
        .filter(|e| e.region == ctx.region)
        .filter(|e| (e.time as f64) >= start && (e.time as f64) <= end)
        .filter(|e| match key.as_str() {
            "" => true,
            "EventName" => e.name == value,
            "Username" => e.username.as_deref() == Some(value.as_str()),
            "EventId" => e.id == value,
            "ResourceName" => e.resources.contains(&value),
            _ => false,
        })
        .collect();
    // Newest first, as CloudTrail answers.
    matching.sort_by(|a, b| b.time.cmp(&a.time).then(a.id.cmp(&b.id)));
    let end_i = (offset + max as usize).min(matching.len());
    let events: Vec<Value> = matching[offset.min(end_i)..end_i]
        .iter()
        .map(|e| {
            let mut detail = json!({
                "eventVersion": "1.08",
                "userIdentity": {"type": "IAMUser", "userName": e.username, "accessKeyId": e.access_key_id, "accountId": acct.id},
                "eventTime": iso(e.time),
                "eventSource": e.source,
                "eventName": e.name,
                "awsRegion": e.region,
                "sourceIPAddress": e.source_ip,
                "eventID": e.id,
                "readOnly": false,
            });
            if let Some(a) = &e.actor {
                let mut who = json!({
                    "type": a.kind,
                    "arn": a.arn,
                    "principalId": format!("AIDA{}", acct.id),
                    "accountId": acct.id,
                    "accessKeyId": e.access_key_id,
                });
                if let Some(u) = &a.user_name {
                    who["userName"] = json!(u);
                }
                detail["userIdentity"] = who;
                detail["userAgent"] = json!(a.user_agent);
            }
            if let Some(key) = &e.key_id {
                let mut request = json!({});
                if let Some(u) = &e.key_user {
                    request["userName"] = json!(u);
                }
                if e.name == "DeleteAccessKey" {
                    request["accessKeyId"] = json!(key);
                    detail["responseElements"] = Value::Null;
                } else {
                    let owner = e.key_user.clone().or_else(|| e.actor.as_ref().and_then(|a| a.user_name.clone()));
                    detail["responseElements"] = json!({"accessKey": {
                        "accessKeyId": key,
                        "status": "Active",
                        "userName": owner,
                        "createDate": iso(e.time),
                    }});
                }
                detail["requestParameters"] = request;
            }
            let mut v = json!({
                "EventId": e.id,
                "EventName": e.name,
                "ReadOnly": "false",
                "EventTime": e.time,
                "EventSource": e.source,
                "Resources": e.resources.iter().map(|r| json!({"ResourceType": "AWS::IAM::User", "ResourceName": r})).collect::<Vec<_>>(),
                "CloudTrailEvent": detail.to_string(),
            });
            if let Some(u) = &e.username {
                v["Username"] = Value::String(u.clone());
            }
            if let Some(k) = &e.access_key_id {
                v["AccessKeyId"] = Value::String(k.clone());
            }
            v
        })
        .collect();
    let mut out = json!({ "Events": events });
    if end_i < matching.len() {
        out["NextToken"] = Value::String(format!("{end_i}:{fp_hash:x}"));
    }
    ok(json_ok(out))
}
