//! The EC2 Query protocol front (axum): parses and validates requests, writes desired state, renders XML; never calls the runtime.
//!
//! A request flows: request-id middleware → trace span → 1 MiB body limit → [`ec2_endpoint`],
//! which decodes the query string and form body into [`query::QueryParams`], resolves the
//! region from the SigV4 credential scope, looks the `Action` up in [`dispatch::TABLE`] and
//! runs it inline; a request that wrote awaits the store's group commit before it answers.
//! Every failure is an [`error::ApiError`], rendered in one place.
//! STS and IAM requests (told apart by their `Version`, else by the signing service) go to
//! [`identity`] instead, which has its own small table, envelope and error document.
//!
//! Beside the actions: `kind` and `kinds` (each resource kind declared once, and the generic
//! Describe*), `paging`, `filter`, `tags`, `groups`, `rules`, `key_pairs`,
//! `launch_templates`, `instances`, `images` and `render` (what several actions share).

use std::borrow::Cow;

use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Form, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::metrics;

pub mod actions;
pub mod addresses;
pub mod attributes;
pub mod block_devices;
pub mod dispatch;
pub mod error;
pub mod filter;
pub mod groups;
pub mod iam_profiles;
pub mod identity;
pub mod images;
pub mod instance_options;
pub mod instances;
pub mod introspect;
pub mod key_pairs;
pub mod kind;
pub mod kinds;
pub mod launch_templates;
pub mod paging;
pub mod private_ips;
pub mod query;
pub mod render;
pub mod reset;
pub mod rules;
pub mod snapshots;
pub mod state;
pub mod tags;
pub mod volumes;
pub mod xml;

pub use error::ApiError;
pub use introspect::Introspection;
pub use query::QueryParams;
pub use reset::{RequestGate, Reset};
pub use state::{ApiState, NoNudge, Nudge};

/// The largest request body accepted (EC2 Query requests are small; user data is at most 16 KB).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The region of requests that carry no SigV4 credential scope.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The id of one request, shown as `<requestId>`/`<RequestID>` and recorded on its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The whole HTTP surface: the EC2 endpoint at `/` (GET and POST), Prometheus metrics at
/// `/metrics` and the `/_ec2d/*` introspection.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", any(ec2_endpoint))
        .route("/metrics", get(metrics_endpoint))
        .merge(introspect::routes())
        .merge(reset::routes())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // Failures are logged where errors become responses (ApiError), not a second time here.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(()),
        )
        // Outermost: the id exists before the span is made, and limit rejections made by the
        // layers inside are turned into EC2 errors carrying it.
        .layer(middleware::from_fn(with_request_id))
        .with_state(state)
}

fn request_span(req: &Request) -> Span {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.as_str())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        action = tracing::field::Empty,
        instance_id = tracing::field::Empty,
    )
}

/// Gives the request its id, and answers the body-limit layer's plain-text 413 the EC2 way.
async fn with_request_id(mut req: Request, next: Next) -> Response {
    let id = RequestId(uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(id.clone());
    let response = next.run(req).await;
    let is_xml = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/xml"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_xml {
        return ApiError::body_too_large(BODY_LIMIT)
            .with_request_id(&id.0)
            .into_response();
    }
    response
}

/// The EC2 endpoint: decode, dispatch, render; any error becomes the EC2 error document.
/// Every request it answers is counted once, under the action it named.
async fn ec2_endpoint(State(state): State<ApiState>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()));
    let gate = state.gate.clone();
    let _pass = gate.request().await;
    let mut counted = Counted::default();
    let (response, code) = match serve(&state, &request_id, req, &mut counted).await {
        Ok(response) => (response, counted.code),
        Err(e) => {
            let code = e.code.clone();
            (e.with_request_id(&request_id.0).into_response(), code)
        }
    };
    state
        .metrics
        .request(counted.service, counted.action, code, started.elapsed());
    response
}

/// The labels a request is counted under, filled in as `serve` learns them.
struct Counted {
    service: &'static str,
    /// A known action's name, else [`metrics::UNKNOWN_ACTION`].
    action: &'static str,
    /// For an answer `serve` made itself (STS and IAM): its error code, or ok.
    code: Cow<'static, str>,
}

impl Default for Counted {
    fn default() -> Self {
        Self {
            service: "ec2",
            action: metrics::UNKNOWN_ACTION,
            code: Cow::Borrowed(metrics::OK_CODE),
        }
    }
}

async fn serve(
    state: &ApiState,
    request_id: &RequestId,
    req: Request,
    counted: &mut Counted,
) -> Result<Response, ApiError> {
    let scope = Scope::of(req.headers(), req.uri());
    let params = read_params(req).await?;
    // STS and IAM share the endpoint (tools ask who they are before any EC2 call).
    if let Some(service) = identity::Service::of(&params, scope.service.as_deref()) {
        let answer = identity::serve(service, &scope, &request_id.0, &params);
        counted.service = service.signing_name;
        counted.action = answer.action.unwrap_or(metrics::UNKNOWN_ACTION);
        counted.code = Cow::Borrowed(answer.code.unwrap_or(metrics::OK_CODE));
        return Ok(answer.response);
    }
    let region = scope.region.unwrap_or_else(|| DEFAULT_REGION.to_string());
    let action = dispatch::resolve(&params)?;
    counted.action = action.name;
    let span = Span::current();
    span.record("action", action.name);
    if let Some(first) = params
        .list("InstanceId")
        .first()
        .copied()
        .or_else(|| params.get("InstanceId"))
    {
        span.record("instance_id", first);
    }
    tracing::debug!(%region, "ec2 request");
    if let (Some(pieces), dispatch::Access::Read) = (action.pieces, action.access) {
        let members = span.in_scope(|| pieces(state, &region, &params))?;
        return Ok(xml::success_pieces(action.name, &request_id.0, members));
    }
    // Writes touch only sled's memory here; their flush is deferred and awaited below, shared
    // with the writes of concurrent requests (a group commit), so no request holds a thread
    // while the disk works and 32 writers need a handful of fsyncs, not 32.
    let (members, wrote) =
        crate::store::deferring(|| span.in_scope(|| (action.call)(state, &region, &params)));
    if wrote {
        // Never answered before it is on disk, whatever the answer says.
        state.store.durable().await?;
    }
    Ok(xml::success(action.name, &request_id.0, members?))
}

/// `GET /metrics`: every metric in Prometheus' text format. Not counted as a request, so
/// the request counters move by exactly the API calls made.
async fn metrics_endpoint(State(state): State<ApiState>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

/// The parameters of the query string followed by those of a form body (EC2 accepts either).
async fn read_params(req: Request) -> Result<QueryParams, ApiError> {
    let malformed = |what: &str| ApiError::client("MalformedQueryString", what.to_string());
    let Query(mut pairs) = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .map_err(|_| malformed("The query string could not be decoded."))?;
    match *req.method() {
        Method::GET | Method::HEAD => {}
        Method::POST if req.headers().contains_key(header::CONTENT_TYPE) => {
            let Form(body) = Form::<Vec<(String, String)>>::from_request(req, &())
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(BODY_LIMIT),
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::client(
                        "InvalidRequest",
                        "The request body must be application/x-www-form-urlencoded.",
                    ),
                    _ => malformed("The request body could not be decoded."),
                })?;
            pairs.extend(body);
        }
        Method::POST => {
            // No content type: only an empty body makes sense (parameters in the query string).
            let body = axum::body::Bytes::from_request(req, &())
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(BODY_LIMIT),
                    _ => malformed("The request body could not be read."),
                })?;
            if !body.is_empty() {
                return Err(ApiError::client(
                    "InvalidRequest",
                    "The request body must be application/x-www-form-urlencoded.",
                ));
            }
        }
        ref other => {
            return Err(ApiError::new(
                "InvalidRequest",
                format!("The HTTP method {other} is not supported; use GET or POST."),
                StatusCode::METHOD_NOT_ALLOWED,
            ))
        }
    }
    Ok(QueryParams::new(pairs))
}

/// The SigV4 credential of a request (`AKID/20240101/us-west-2/ec2/aws4_request`): the
/// `Credential=` of the `Authorization` header, else a presigned URL's `X-Amz-Credential`.
pub fn credential_of(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| {
            let start = auth.find("Credential=")? + "Credential=".len();
            let rest = &auth[start..];
            let end = rest.find([',', ' ']).unwrap_or(rest.len());
            Some(rest[..end].to_string())
        });
    from_header.or_else(|| {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
        pairs
            .into_iter()
            .find(|(k, _)| k == "X-Amz-Credential")
            .map(|(_, v)| v)
    })
}

/// The parts of a credential scope ec2d reads: `AKID/date/region/service/aws4_request`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The access key id (the first part), when there is one.
    pub access_key: Option<String>,
    /// The region, when it looks like a region name.
    pub region: Option<String>,
    /// The signing service (`ec2`, `sts`, `iam`), when it looks like one.
    pub service: Option<String>,
}

impl Scope {
    /// The scope of a request's credential; empty when it carries none.
    pub fn of(headers: &HeaderMap, uri: &Uri) -> Self {
        credential_of(headers, uri)
            .map(|c| Self::parse(&c))
            .unwrap_or_default()
    }

    /// Reads a credential; each part that is absent or implausible is `None`.
    pub fn parse(credential: &str) -> Self {
        let plausible = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let mut parts = credential.rsplit('/');
        let (_terminator, service, region) = (parts.next(), parts.next(), parts.next());
        let key = credential.split('/').next().filter(|k| {
            credential.contains('/')
                && !k.is_empty()
                && k.len() <= 128
                && k.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        Self {
            access_key: key.map(str::to_string),
            region: region.filter(|r| plausible(r)).map(str::to_string),
            service: service.filter(|s| plausible(s)).map(str::to_string),
        }
    }
}

/// The region of a request: the SigV4 credential scope (`Credential=AKID/20240101/us-west-2/ec2/aws4_request`)
/// of the `Authorization` header or of a presigned URL's `X-Amz-Credential`, else [`DEFAULT_REGION`].
pub fn region_of(headers: &HeaderMap, uri: &Uri) -> String {
    Scope::of(headers, uri)
        .region
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn region_from_sigv4_header() {
        let h = headers(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-west-2/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        );
        assert_eq!(region_of(&h, &Uri::from_static("/")), "us-west-2");
    }

    #[test]
    fn region_from_presigned_query() {
        let uri = Uri::from_static("/?Action=DescribeRegions&X-Amz-Credential=AKID%2F20240101%2Feu-central-1%2Fec2%2Faws4_request");
        assert_eq!(region_of(&HeaderMap::new(), &uri), "eu-central-1");
    }

    #[test]
    fn region_defaults() {
        assert_eq!(
            region_of(&HeaderMap::new(), &Uri::from_static("/")),
            "us-east-1"
        );
        assert_eq!(
            region_of(&headers("Basic Zm9vOmJhcg=="), &Uri::from_static("/")),
            "us-east-1"
        );
        let hostile = headers("AWS4-HMAC-SHA256 Credential=AKID/20240101/<evil>/ec2/aws4_request");
        assert_eq!(region_of(&hostile, &Uri::from_static("/")), "us-east-1");
        assert_eq!(
            region_of(
                &headers("AWS4-HMAC-SHA256 Credential=x"),
                &Uri::from_static("/")
            ),
            "us-east-1"
        );
    }
}
