//! The instance metadata service (IMDS v1 and v2): a second HTTP listener that answers each instance, told apart only by its connection's source address, with its own metadata.
//!
//! The caller is the instance whose address (its container's as last observed, else the one
//! RunInstances allocated) is the TCP peer's, among this store's instances that are not
//! terminated; anything else (the host, a container that is no instance) gets 404 with an
//! empty body. Nothing the caller sends names an instance. Answers are read from the store at
//! each request (tags, Elastic IPs and `ModifyInstanceMetadataOptions` show at once); the
//! service reads through [`SpecStore`]'s read methods only and writes nothing. Session tokens
//! (`PUT /latest/api/token`) live in memory, bound to the instance that asked.

mod identity;
mod role;
mod tokens;
mod tree;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use tokio::net::TcpListener;
use tracing::warn;

use crate::api::addresses::{held_address, holds_addresses};
use crate::api::instances::shown_state;
use crate::api::render::private_ip;
use crate::model::instance_options::{HttpTokens, Switch};
use crate::model::{now, Instance};
use crate::store::{SpecStore, StoreError};

use identity::Signer;
pub use role::Role;
use tokens::{Tokens, TTL_SECONDS};
use tree::{Facts, Node};

/// The request header asking for a token, with its lifetime in seconds.
pub const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// The request header carrying a token.
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";

/// The metadata versions EC2 lists at `/`; each answers as `latest` does.
pub const VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "2011-01-01",
    "2011-05-01",
    "2012-01-12",
    "2014-02-25",
    "2014-11-05",
    "2015-10-20",
    "2016-04-19",
    "2016-06-30",
    "2016-09-02",
    "2018-03-28",
    "2018-08-17",
    "2018-09-24",
    "2019-10-01",
    "2020-10-27",
    "2021-01-03",
    "2021-03-23",
    "2021-07-15",
    "2022-09-24",
    "latest",
];

/// What the service shares between requests: the store and the outstanding tokens.
#[derive(Clone)]
pub struct ImdsState {
    store: SpecStore,
    tokens: Arc<Tokens>,
    signer: Arc<Signer>,
}

impl ImdsState {
    /// A service over `store`, with no tokens issued.
    pub fn new(store: SpecStore) -> Self {
        Self {
            store,
            tokens: Arc::default(),
            signer: Arc::default(),
        }
    }

    /// The instance calling from `peer`: the one non-terminated instance with that address.
    /// Two with one address (a stale observation) answer nobody rather than maybe the wrong one.
    fn caller(&self, peer: IpAddr) -> Result<Option<Arc<Instance>>, StoreError> {
        let peer = peer.to_canonical();
        let mut found = self
            .store
            .instances()
            .list_shared()?
            .objects
            .into_iter()
            .filter(|i| holds_addresses(i))
            .filter(|i| {
                private_ip(i, shown_state(i))
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
                    .is_some_and(|ip| ip == peer)
            });
        let first = found.next();
        Ok(if found.next().is_some() { None } else { first })
    }

    /// What the metadata of `instance` is made of, now.
    fn facts(&self, instance: Arc<Instance>) -> Result<Facts, StoreError> {
        let address = held_address(&self.store, &instance.metadata.name)?;
        let subnet = match &instance.spec.subnet_id {
            Some(id) => self.store.subnets().get(id)?.map(|s| s.spec),
            None => None,
        };
        let vpc = match &instance.spec.vpc_id {
            Some(id) => self.store.vpcs().get(id)?.map(|v| v.spec),
            None => None,
        };
        let role = role::role_of(&instance, now());
        Ok(Facts {
            instance,
            address,
            subnet,
            vpc,
            role,
        })
    }
}

/// The service's HTTP surface. It needs the peer address: serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` (as [`serve`] does), or give requests
/// a `ConnectInfo<SocketAddr>` extension (tests).
pub fn router(state: ImdsState) -> Router {
    Router::new().fallback(answer).with_state(state)
}

/// Serves the metadata service on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: ImdsState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// An answer with no body.
fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

/// A refusal to an instance: the XHTML page EC2 sends with 400, 401, 404 (and the others),
/// `<h1>404 - Not Found</h1>`. Only a caller that is no instance gets an empty body.
fn refused(status: StatusCode) -> Response {
    let title = format!(
        "{} - {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let page = format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n\
         <!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\
         \t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n\
         <html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n \
         <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
        page,
    )
        .into_response()
}

/// A `text/plain` answer.
fn text(body: impl Into<Body>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        body.into(),
    )
        .into_response()
}

/// Every request: who is calling, whether the service is on for it, tokens, then the tree.
async fn answer(
    State(state): State<ImdsState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match respond(&state, peer, &method, uri.path(), &headers) {
        Ok(response) => response,
        Err(error) => {
            warn!(%error, "metadata service cannot read the store");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// The answer to one request from `peer`; `Err` only when the store cannot be read.
fn respond(
    state: &ImdsState,
    peer: SocketAddr,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, StoreError> {
    let Some(instance) = state.caller(peer.ip())? else {
        return Ok(empty(StatusCode::NOT_FOUND));
    };
    let metadata = instance.spec.options.metadata;
    if metadata.http_endpoint == Switch::Disabled {
        return Ok(refused(StatusCode::FORBIDDEN));
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (version, rest) = match segments.split_first() {
        Some((version, rest)) => (Some(*version), rest),
        None => (None, &[][..]),
    };
    if version.is_some_and(|v| !VERSIONS.contains(&v)) {
        return Ok(refused(StatusCode::NOT_FOUND));
    }
    if rest == ["api", "token"] {
        return Ok(issue_token(state, &instance, method, headers));
    }
    if let Some(refused) = read_only(method) {
        return Ok(refused);
    }
    // A token, when sent, must be good even where none is required, as on EC2; with tokens
    // required even `/` answers 401 (clients probe it to learn whether v1 is on).
    let instance_id = instance.metadata.name.as_str();
    match headers.get(TOKEN_HEADER).map(|v| v.to_str()) {
        Some(Ok(token)) if state.tokens.is_valid(token, instance_id, Instant::now()) => {}
        None if metadata.http_tokens == HttpTokens::Optional => {}
        _ => return Ok(refused(StatusCode::UNAUTHORIZED)),
    }
    if version.is_none() {
        return Ok(text(VERSIONS.join("\n")));
    }
    let facts = state.facts(instance)?;
    Ok(match read(&facts, rest, &state.signer, state.store.id()) {
        Some(body) => text(body),
        None => refused(StatusCode::NOT_FOUND),
    })
}

/// 405 for anything but GET and HEAD (PUT only makes tokens).
fn read_only(method: &Method) -> Option<Response> {
    (method != Method::GET && method != Method::HEAD)
        .then(|| refused(StatusCode::METHOD_NOT_ALLOWED))
}

/// `PUT /latest/api/token`: a token bound to the calling instance. EC2 refuses a request that
/// carries `X-Forwarded-For` (it came through a proxy: 403), and wants the TTL header with 1 to
/// 21600 seconds (400 otherwise).
fn issue_token(
    state: &ImdsState,
    instance: &Instance,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    if method != Method::PUT {
        return refused(StatusCode::METHOD_NOT_ALLOWED);
    }
    if headers.contains_key("x-forwarded-for") {
        return refused(StatusCode::FORBIDDEN);
    }
    let ttl = headers
        .get(TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ttl| TTL_SECONDS.contains(ttl));
    let Some(ttl) = ttl else {
        return refused(StatusCode::BAD_REQUEST);
    };
    let token = state.tokens.issue(
        &instance.metadata.name,
        Duration::from_secs(ttl),
        Instant::now(),
    );
    let mut response = text(token);
    response
        .headers_mut()
        .insert(TTL_HEADER, HeaderValue::from(ttl));
    response
}

/// The body at `path` (under a version) for the instance, `None` when there is nothing there.
fn read(facts: &Facts, path: &[&str], signer: &Signer, seed: &str) -> Option<Vec<u8>> {
    let user_data = || {
        facts.instance.spec.user_data.as_deref().and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .filter(|bytes| !bytes.is_empty())
        })
    };
    match path.split_first() {
        None => {
            let mut listing = Node::dir()
                .with("dynamic", Node::dir())
                .with("meta-data", Node::dir());
            if user_data().is_some() {
                listing = listing.leaf("user-data", "");
            }
            Some(listing.body().into_bytes())
        }
        Some((&"user-data", [])) => user_data(),
        Some((&"meta-data", rest)) => tree::meta_data(facts)
            .find(rest)
            .map(|node| node.body().into_bytes()),
        Some((&"dynamic", rest)) => {
            let document = identity::document(facts);
            match rest {
                ["instance-identity", name] if identity::SIGNATURES.contains(name) => {
                    signer.sign(seed, &document).map(String::into_bytes)
                }
                _ => identity::dynamic(&document)
                    .find(rest)
                    .map(|node| node.body().into_bytes()),
            }
        }
        Some(_) => None,
    }
}
