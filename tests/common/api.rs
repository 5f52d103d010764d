//! In-process harness for EC2 Query protocol tests: `ec2d::api::router` driven with
//! `tower::ServiceExt::oneshot` (no socket) over a temporary store and no runtime, plus a tiny
//! quick-xml DOM whose parsing also proves every answer is well-formed.
//!
//! Each test file adds its own helpers with further `impl Harness` blocks (allowed: the harness
//! is a type of the same test crate).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use ec2d::api::{router, ApiState, Introspection, Nudge};
use ec2d::config::VmManager;
use ec2d::model::{
    now, ContainerObservation, Image, ImageSource, ImageSpec, ImageState, ImageStatus, Instance,
    InstanceState, Object, ObjectMeta, API_VERSION, DISCOVERED_NAMESPACE, IMAGE_KIND,
};
use ec2d::store::Store;
use quick_xml::events::Event;
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------------
// Harness

/// Introspection without a runtime: `/_ec2d/health` answers `{"ok":true,"stub":true}`.
pub struct StubIntrospection;

/// A reset with no reconciler to remove containers: it wipes the records only.
struct WipeStore(Store);

impl ec2d::api::Reset for WipeStore {
    fn reset(&self) -> futures::future::BoxFuture<'static, Result<serde_json::Value, String>> {
        let result = self
            .0
            .wipe_for_reset()
            .map(|()| serde_json::json!({}))
            .map_err(|e| e.to_string());
        Box::pin(async move { result })
    }
}

impl Introspection for StubIntrospection {
    fn health(&self) -> serde_json::Value {
        serde_json::json!({ "ok": true, "stub": true })
    }
    fn status(&self, _instance_id: Option<&str>) -> Option<serde_json::Value> {
        Some(serde_json::json!({}))
    }
}

/// The router over a fresh temporary store.
pub struct Harness {
    pub app: Router,
    pub store: Store,
    /// The region [`Harness::post`] signs for; `None` sends no `Authorization` header at all.
    pub region: Option<&'static str>,
}

impl Harness {
    /// `vm_manager` mode; [`Harness::post`] signs its requests for `region` (none when `None`).
    /// The public AMI catalogue is off, so listings show only what a test made.
    pub fn with(vm_manager: VmManager, region: Option<&'static str>) -> Self {
        Self::build(vm_manager, region, false, Arc::new(ec2d::api::NoNudge))
    }

    /// `vm_manager` mode with the public AMI catalogue listed (ec2d's default), requests
    /// signed for `us-east-1`, and [`AMI`] discovered as in [`Harness::docker`].
    pub fn with_public_amis(vm_manager: VmManager) -> Self {
        let h = Self::build(
            vm_manager,
            Some("us-east-1"),
            true,
            Arc::new(ec2d::api::NoNudge),
        );
        h.discover_ami();
        h
    }

    /// As [`Harness::with`], handing the api's nudges to `nudge` (to see what it asks of the
    /// reconciler there is none of).
    pub fn with_nudge(
        vm_manager: VmManager,
        region: Option<&'static str>,
        nudge: Arc<dyn Nudge>,
    ) -> Self {
        Self::build(vm_manager, region, false, nudge)
    }

    fn build(
        vm_manager: VmManager,
        region: Option<&'static str>,
        public_amis: bool,
        nudge: Arc<dyn Nudge>,
    ) -> Self {
        let store = Store::temporary().expect("temporary store");
        let state = ApiState {
            store: store.spec_view(),
            vm_manager,
            public_amis,
            allocate_private_ips: true,
            introspection: Arc::new(StubIntrospection),
            rendered_instances: Default::default(),
            nudge,
            reset: Arc::new(WipeStore(store.clone())),
            gate: Default::default(),
            metrics: Default::default(),
        };
        Self {
            app: router(state),
            store,
            region,
        }
    }

    /// Mock mode, requests signed for `us-east-1` as SDK clients send them.
    pub fn new() -> Self {
        Self::with(VmManager::Mock, Some("us-east-1"))
    }

    /// `vm_manager` mode, requests unsigned (the server falls back to its default region).
    pub fn unsigned(vm_manager: VmManager) -> Self {
        Self::with(vm_manager, None)
    }

    /// Sends any request through the router and reads the whole answer.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self
            .app
            .clone()
            .oneshot(req)
            .await
            .expect("infallible router");
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(bytes.to_vec()).expect("UTF-8 body");
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// POSTs form parameters, signed (as far as the region goes) for `region`; `None` sends no
    /// `Authorization` header. Takes `"eu-west-1"`, `Some("eu-west-1")` or `None`.
    pub async fn post_in<'r>(
        &self,
        region: impl Into<Option<&'r str>>,
        params: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(Method::POST).uri("/").header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        );
        if let Some(region) = region.into() {
            req = req.header(
                header::AUTHORIZATION,
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/{region}/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=deadbeef"
                ),
            );
        }
        self.send(req.body(Body::from(form(params))).unwrap()).await
    }

    /// POSTs form parameters with `Credential=<credential>` in the `Authorization` header
    /// (`AKID/20240101/us-east-1/sts/aws4_request`: another key, region or signing service).
    pub async fn post_signed(&self, credential: &str, params: &[(&str, &str)]) -> Reply {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header(
                header::AUTHORIZATION,
                format!(
                    "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-amz-date, Signature=deadbeef"
                ),
            );
        self.send(req.body(Body::from(form(params))).unwrap()).await
    }

    /// POSTs form parameters signed for the harness's region (see [`Harness::with`]).
    pub async fn post(&self, params: &[(&str, &str)]) -> Reply {
        self.post_in(self.region, params).await
    }

    /// GETs with the parameters in the query string (unsigned).
    pub async fn get(&self, params: &[(&str, &str)]) -> Reply {
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("/?{}", form(params)))
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    /// CreateVpc of `cidr`; the new VPC's id.
    pub async fn create_vpc(&self, cidr: &str) -> String {
        self.post(&[("Action", "CreateVpc"), ("CidrBlock", cidr)])
            .await
            .ok("CreateVpc")
            .text_at("vpc/vpcId")
            .to_string()
    }

    /// CreateSubnet of `cidr` in `vpc` (in `zone` when given); the new subnet's id.
    pub async fn create_subnet(&self, vpc: &str, cidr: &str, zone: Option<&str>) -> String {
        let mut params = vec![
            ("Action", "CreateSubnet"),
            ("VpcId", vpc),
            ("CidrBlock", cidr),
        ];
        if let Some(zone) = zone {
            params.push(("AvailabilityZone", zone));
        }
        self.post(&params)
            .await
            .ok("CreateSubnet")
            .text_at("subnet/subnetId")
            .to_string()
    }

    /// The stored instance `id`.
    pub fn instance(&self, id: &str) -> Instance {
        self.store
            .instances()
            .get(id)
            .unwrap()
            .expect("instance stored")
    }
}

/// `application/x-www-form-urlencoded`, encoding everything but the unreserved characters.
pub fn form(params: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

// ---------------------------------------------------------------------------------------------
// Docker mode with one discovered AMI, as the per-resource protocol tests use it

/// The one AMI [`Harness::docker`] puts in the catalog.
pub const AMI: &str = "ami-0a1b2c3d4e5f6a7b8";

impl Harness {
    /// Docker mode with one available AMI in the catalog, as discovery would have written it.
    pub fn docker() -> Self {
        let h = Self::unsigned(VmManager::Docker);
        h.discover_ami();
        h
    }

    /// Puts [`AMI`] in the catalog, available, as discovery would have written it.
    fn discover_ami(&self) {
        self.store
            .catalog()
            .replace_all(&[catalog_image(
                AMI,
                "ubuntu-22.04",
                Some(ImageState::Available),
            )])
            .unwrap();
    }

    /// RunInstances of one instance of [`AMI`]; `extra` adds or overrides parameters.
    pub async fn run(&self, extra: &[(&str, &str)]) -> Node {
        let mut params = vec![
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ];
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            params.push((k, v));
        }
        self.post(&params).await.ok("RunInstances")
    }

    /// Posts `params` with a `TagSpecification` of `resource_type`, a type the action cannot
    /// tag, and checks EC2's refusal (`InvalidParameterValue`, its own wording).
    pub async fn refuses_tag_type(&self, params: &[(&str, &str)], resource_type: &str) {
        let mut all = params.to_vec();
        all.push(("TagSpecification.1.ResourceType", resource_type));
        all.push(("TagSpecification.1.Tag.1.Key", "k"));
        assert_eq!(
            self.post(&all).await.err("InvalidParameterValue"),
            format!("'{resource_type}' is not a valid taggable resource type for this operation.")
        );
    }

    /// Launches one instance of [`AMI`] and returns its id.
    pub async fn run_one(&self) -> String {
        self.run(&[])
            .await
            .path("instancesSet/item/instanceId")
            .text
            .clone()
    }

    /// Emulates the reconciler reaching `state` for the current generation.
    pub fn observe(&self, id: &str, state: InstanceState, ip: Option<&str>) {
        let inst = self.instance(id);
        let mut status = inst.status.clone();
        status.observed_generation = inst.metadata.generation;
        status.state = Some(state);
        status.container = ip.map(|ip| ContainerObservation {
            id: "c0ffee".into(),
            state: "running".into(),
            ip_address: Some(ip.into()),
            ports: Vec::new(),
        });
        self.store.instances().write_status(id, &status).unwrap();
    }

    /// The item DescribeInstances shows for `id`.
    pub async fn instance_item(&self, id: &str) -> Node {
        let doc = self
            .post(&[("Action", "DescribeInstances"), ("InstanceId.1", id)])
            .await
            .ok("DescribeInstances");
        doc.path("reservationSet/item/instancesSet/item").clone()
    }

    /// The ids of the instances DescribeInstances lists with filter `name` = `value`.
    pub async fn instance_ids_matching(&self, name: &str, value: &str) -> Vec<String> {
        let doc = self
            .post(&[
                ("Action", "DescribeInstances"),
                ("Filter.1.Name", name),
                ("Filter.1.Value.1", value),
            ])
            .await
            .ok("DescribeInstances");
        doc.items("reservationSet")
            .iter()
            .flat_map(|r| r.items("instancesSet"))
            .map(|i| i.text("instanceId").to_string())
            .collect()
    }

    /// The state name DescribeInstances shows for `id`.
    pub async fn shown(&self, id: &str) -> String {
        let doc = self
            .post(&[("Action", "DescribeInstances"), ("InstanceId.1", id)])
            .await
            .ok("DescribeInstances");
        doc.path("reservationSet/item/instancesSet/item/instanceState/name")
            .text
            .clone()
    }
}

/// A catalog image as discovery writes it from a `localstack-ec2/<name>:<id>` tag: filed under
/// the catalog's namespace ([`DISCOVERED_NAMESPACE`]), not a region, as it is seen from all.
pub fn catalog_image(id: &str, name: &str, state: Option<ImageState>) -> Image {
    Object {
        api_version: API_VERSION.to_string(),
        kind: IMAGE_KIND.to_string(),
        metadata: ObjectMeta::new(id, DISCOVERED_NAMESPACE, now()),
        spec: ImageSpec {
            description: Some("from docker".to_string()),
            tags: [("ec2_vm_manager".to_string(), "docker".to_string())].into(),
            ..ImageSpec::new(
                name,
                ImageSource::Docker,
                format!("localstack-ec2/{name}:{id}"),
            )
        },
        status: ImageStatus {
            observed_generation: 1,
            state,
            architecture: Some("amd64".into()),
            ..ImageStatus::default()
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Replies

/// One answer: status, `Content-Type` and body.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    /// Asserts success of `action` and returns the response document.
    pub fn ok(&self, action: &str) -> Node {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{action} failed: {}",
            self.body
        );
        assert_eq!(self.content_type, "text/xml;charset=UTF-8");
        assert!(self
            .body
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        let doc = parse_xml(&self.body);
        assert_eq!(doc.name, format!("{action}Response"));
        assert_eq!(
            doc.attrs,
            vec![(
                "xmlns".to_string(),
                "http://ec2.amazonaws.com/doc/2016-11-15/".to_string()
            )]
        );
        assert_eq!(doc.children[0].name, "requestId", "requestId comes first");
        assert!(uuid::Uuid::parse_str(&doc.children[0].text).is_ok());
        doc
    }

    /// Asserts an EC2 error with this code (HTTP 400); returns the message.
    pub fn err(&self, code: &str) -> String {
        self.err_status(StatusCode::BAD_REQUEST, code)
    }

    /// Asserts an EC2 error with this status and code; returns the message.
    pub fn err_status(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.content_type, "text/xml;charset=UTF-8");
        let doc = parse_xml(&self.body);
        assert_eq!(doc.name, "Response");
        assert_eq!(doc.names(), vec!["Errors", "RequestID"]);
        let error = doc.path("Errors/Error");
        assert_eq!(
            error.names(),
            vec!["Code", "Message"],
            "no <Type>, as ec2Query"
        );
        assert!(uuid::Uuid::parse_str(&doc.child("RequestID").text).is_ok());
        assert_eq!(error.child("Code").text, code, "body: {}", self.body);
        error.child("Message").text.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny DOM over quick-xml: parsing also proves the document is well-formed.

#[derive(Debug, Default, Clone)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first child element called `name`, if any.
    pub fn opt(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first child element called `name`; panics naming the children there are.
    pub fn child(&self, name: &str) -> &Node {
        self.opt(name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>: {:?}", self.name, self.names()))
    }

    /// The text of the child element `name`.
    pub fn text(&self, name: &str) -> &str {
        &self.child(name).text
    }

    /// The element at `a/b/c` (first match at each step); panics naming the missing step.
    pub fn path(&self, path: &str) -> &Node {
        path.split('/').fold(self, |n, p| {
            n.opt(p).unwrap_or_else(|| {
                panic!("<{}> has no <{p}> (path {path}): {:?}", n.name, n.names())
            })
        })
    }

    /// Whether the element at `path` exists.
    pub fn has(&self, path: &str) -> bool {
        let mut node = self;
        for p in path.split('/') {
            match node.opt(p) {
                Some(n) => node = n,
                None => return false,
            }
        }
        true
    }

    /// The text of the element at `path`.
    pub fn text_at(&self, path: &str) -> &str {
        &self.path(path).text
    }

    /// The children of the set at `path`, asserting they are all `<item>`s.
    pub fn items(&self, path: &str) -> Vec<&Node> {
        let set = self.path(path);
        assert!(
            set.children.iter().all(|c| c.name == "item"),
            "{path} holds only <item>s"
        );
        set.children.iter().collect()
    }

    /// The pairs `(a, b)` of texts at paths `a` and `b` in each `<item>` of the set at `path`.
    pub fn pairs(&self, path: &str, a: &str, b: &str) -> Vec<(String, String)> {
        self.items(path)
            .iter()
            .map(|i| (i.text_at(a).to_string(), i.text_at(b).to_string()))
            .collect()
    }

    /// The names of the child elements, in document order.
    pub fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    /// `tagSet` as a map (empty when absent).
    pub fn tags(&self) -> BTreeMap<String, String> {
        match self.opt("tagSet") {
            None => BTreeMap::new(),
            Some(set) => set
                .children
                .iter()
                .map(|i| (i.text("key").to_string(), i.text("value").to_string()))
                .collect(),
        }
    }
}

/// XML 1.0's `Char` production: quick-xml does not check it, so the tests do.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML 1.0's `Name` production (fifth edition): quick-xml does not check it either, and
/// `<123>` or `<a<b>` would read as elements.
pub fn is_xml_name(name: &str) -> bool {
    fn start(c: char) -> bool {
        matches!(c, ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
            | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
            | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
            | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
            | '\u{10000}'..='\u{EFFFF}')
    }
    fn rest(c: char) -> bool {
        start(c)
            || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
    }
    let mut chars = name.chars();
    chars.next().is_some_and(start) && chars.all(rest)
}

/// Parses one XML document into its root element; panics on anything not well-formed
/// (characters XML cannot carry and element names it does not allow included).
pub fn parse_xml(s: &str) -> Node {
    if let Some(bad) = s.chars().find(|c| !is_xml_char(*c)) {
        panic!("character {bad:?} is not allowed in XML: {s:?}");
    }
    let mut reader = quick_xml::Reader::from_str(s);
    let mut stack = vec![Node::default()];
    let element = |e: &quick_xml::events::BytesStart| Node {
        name: {
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            assert!(
                is_xml_name(&name),
                "<{name}> is not an XML element name: {s}"
            );
            name
        },
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().unwrap().into_owned(),
                )
            })
            .collect(),
        ..Node::default()
    };
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("malformed XML ({e}): {s}"))
        {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => stack.last_mut().unwrap().children.push(element(&e)),
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().expect("balanced").children.push(done);
            }
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.unescape().expect("valid escapes")),
            Event::Eof => break,
            Event::Decl(_) => {}
            other => panic!("unexpected XML event {other:?} in {s}"),
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements in {s}");
    let mut holder = stack.pop().unwrap();
    assert_eq!(holder.children.len(), 1, "exactly one root element in {s}");
    holder.children.pop().unwrap()
}
