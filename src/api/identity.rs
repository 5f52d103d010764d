//! STS and IAM on the EC2 endpoint: the calls tools make to learn who they are before any EC2
//! call (Terraform's provider: STS `GetCallerIdentity`; Ansible's modules: IAM `GetUser`).
//!
//! Both are AWS Query services like EC2, but with their own `Version`, namespace, envelope
//! (`<{Action}Response><{Action}Result>…</{Action}Result><ResponseMetadata>`) and error
//! document (`<ErrorResponse><Error><Type>`), so they are kept apart from EC2's dispatch table:
//! each [`Service`] has its own small table. Nothing here calls AWS; the caller is derived from
//! the request's SigV4 credential, as LocalStack does: a 12-digit access key id is the account,
//! any other is account [`ACCOUNT_ID`]. `DryRun` does not exist in these services.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::XML_CONTENT_TYPE;
use super::query::QueryParams;
use super::xml::XmlWriter;
use super::Scope;
use crate::model::ACCOUNT_ID;

/// An action's handler: the caller and the parameters in, the `{Action}Result` members out.
type Handler = fn(&Caller, &QueryParams) -> Result<String, IdentityError>;

/// A Query service other than EC2 that ec2d answers on its endpoint.
#[derive(Debug)]
pub struct Service {
    /// The SigV4 signing name (`sts`, `iam`).
    pub signing_name: &'static str,
    /// The `Version` parameter its SDKs send.
    pub version: &'static str,
    /// The namespace of its documents.
    pub namespace: &'static str,
    /// Its actions, by exact name.
    pub actions: &'static [(&'static str, Handler)],
}

/// AWS Security Token Service.
pub static STS: Service = Service {
    signing_name: "sts",
    version: "2011-06-15",
    namespace: "https://sts.amazonaws.com/doc/2011-06-15/",
    actions: &[("GetCallerIdentity", get_caller_identity)],
};

/// AWS Identity and Access Management.
pub static IAM: Service = Service {
    signing_name: "iam",
    version: "2010-05-08",
    namespace: "https://iam.amazonaws.com/doc/2010-05-08/",
    actions: &[("GetUser", get_user)],
};

/// Every service besides EC2.
pub const SERVICES: &[&Service] = &[&STS, &IAM];

impl Service {
    /// The service a request is for: by its `Version` when that is one of theirs (an EC2
    /// version, or any other, stays EC2's), else, when it has none, by the signing service.
    pub fn of(params: &QueryParams, signing_service: Option<&str>) -> Option<&'static Service> {
        match params.get("Version") {
            Some(version) => SERVICES.iter().copied().find(|s| s.version == version),
            None => {
                let signed = signing_service?;
                SERVICES.iter().copied().find(|s| s.signing_name == signed)
            }
        }
    }

    /// One of its actions, by exact name, with its handler.
    fn action(&self, action: &str) -> Option<(&'static str, Handler)> {
        self.actions
            .iter()
            .find(|(name, _)| *name == action)
            .copied()
    }
}

/// Who is calling: the account of the request's credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The 12-digit account id.
    pub account: String,
}

impl Caller {
    /// The caller of a credential scope: a 12-digit access key id names its account (as in
    /// LocalStack, so tests can use several accounts); anything else is [`ACCOUNT_ID`].
    pub fn of(scope: &Scope) -> Self {
        let account = scope
            .access_key
            .as_deref()
            .filter(|k| k.len() == 12 && k.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or(ACCOUNT_ID);
        Self {
            account: account.to_string(),
        }
    }
}

/// An error of STS or IAM: `Sender` faults only (nothing here can fail on ec2d's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityError {
    /// `<Code>`.
    pub code: &'static str,
    /// `<Message>`.
    pub message: String,
    /// The HTTP status.
    pub status: StatusCode,
}

impl IdentityError {
    fn sender(code: &'static str, message: String, status: StatusCode) -> Self {
        Self {
            code,
            message,
            status,
        }
    }
}

/// One answered STS or IAM request, with what it is counted under.
pub struct Answer {
    /// The result or error document.
    pub response: Response,
    /// The action, when it is one of the service's.
    pub action: Option<&'static str>,
    /// The error code, when it failed.
    pub code: Option<&'static str>,
}

/// Answers one request of `service`: its result document or its error document.
pub fn serve(
    service: &'static Service,
    scope: &Scope,
    request_id: &str,
    params: &QueryParams,
) -> Answer {
    let caller = Caller::of(scope);
    let action = params
        .get("Action")
        .filter(|a| !a.is_empty())
        .map(|a| service.action(a).ok_or(a));
    let outcome = match action {
        None => Err(IdentityError::sender(
            "MissingAction",
            "The request must contain the parameter Action".to_string(),
            StatusCode::BAD_REQUEST,
        )),
        Some(Err(action)) => Err(IdentityError::sender(
            "InvalidAction",
            format!(
                "Could not find operation {action} for version {}",
                service.version
            ),
            StatusCode::BAD_REQUEST,
        )),
        Some(Ok((action, handler))) => {
            tracing::Span::current().record("action", action);
            tracing::debug!(service = service.signing_name, account = %caller.account, "identity request");
            handler(&caller, params).map(|members| (action, members))
        }
    };
    let (status, body, code) = match outcome {
        Ok((action, members)) => (
            StatusCode::OK,
            success(service, action, request_id, &members),
            None,
        ),
        Err(e) => {
            tracing::debug!(code = e.code, message = %e.message, request_id, "request rejected");
            (e.status, error(service, &e, request_id), Some(e.code))
        }
    };
    let response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(XML_CONTENT_TYPE),
        )],
        body,
    )
        .into_response();
    Answer {
        response,
        action: action.and_then(Result::ok).map(|(name, _)| name),
        code,
    }
}

/// `<{Action}Response xmlns=…><{Action}Result>…</…><ResponseMetadata><RequestId>…`.
pub fn success(service: &Service, action: &str, request_id: &str, members: &str) -> String {
    let mut w = XmlWriter::new();
    w.declaration();
    w.root(&format!("{action}Response"), service.namespace, |w| {
        w.el(&format!("{action}Result"), |w| w.fragment(members));
        w.el("ResponseMetadata", |w| w.field("RequestId", request_id));
    });
    w.finish()
}

/// `<ErrorResponse xmlns=…><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error><RequestId>…`.
pub fn error(service: &Service, e: &IdentityError, request_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.declaration();
    w.root("ErrorResponse", service.namespace, |w| {
        w.el("Error", |w| {
            w.field("Type", "Sender");
            w.field("Code", e.code);
            w.field("Message", &e.message);
        });
        w.field("RequestId", request_id);
    });
    w.finish()
}

// ---------------------------------------------------------------------------------------------
// STS

/// `GetCallerIdentity`: the account's root, as LocalStack answers by default (the root's user
/// id is its account id, as AWS shows it).
fn get_caller_identity(caller: &Caller, _params: &QueryParams) -> Result<String, IdentityError> {
    let mut w = XmlWriter::new();
    w.field("Arn", format!("arn:aws:iam::{}:root", caller.account));
    w.field("UserId", &caller.account);
    w.field("Account", &caller.account);
    Ok(w.finish())
}

// ---------------------------------------------------------------------------------------------
// IAM

/// The one IAM user ec2d knows: the name moto (and so LocalStack) answers GetUser with when the
/// access key belongs to no user it created.
pub const DEFAULT_USER: &str = "default_user";

/// When the default user was created: fixed, so every answer agrees.
const DEFAULT_USER_CREATED: &str = "2024-01-01T00:00:00Z";

/// The default user's id in each account: `AIDA` and 17 base32 characters, as AWS's user ids,
/// derived from the account so it is stable.
pub fn default_user_id(account: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(format!("iam/user/{DEFAULT_USER}/{account}").as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect();
    format!("AIDA{tail}")
}

/// `GetUser`: the caller (no `UserName`, or the default user's name); any other name is
/// `NoSuchEntity`, as IAM answers for a user that does not exist.
fn get_user(caller: &Caller, params: &QueryParams) -> Result<String, IdentityError> {
    if let Some(name) = params.get("UserName").filter(|n| *n != DEFAULT_USER) {
        return Err(IdentityError::sender(
            "NoSuchEntity",
            format!("The user with name {name} cannot be found."),
            StatusCode::NOT_FOUND,
        ));
    }
    let mut w = XmlWriter::new();
    w.el("User", |w| {
        w.field("Path", "/");
        w.field("UserName", DEFAULT_USER);
        w.field("UserId", default_user_id(&caller.account));
        w.field(
            "Arn",
            format!("arn:aws:iam::{}:user/{DEFAULT_USER}", caller.account),
        );
        w.field("CreateDate", DEFAULT_USER_CREATED);
    });
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(key: &str, service: &str) -> Scope {
        Scope::parse(&format!("{key}/20240101/us-east-1/{service}/aws4_request"))
    }

    #[test]
    fn routed_by_version_then_signing_service() {
        let q = QueryParams::from_query;
        let sts = Service::of(&q("Action=GetCallerIdentity&Version=2011-06-15"), None);
        assert_eq!(sts.map(|s| s.signing_name), Some("sts"));
        let iam = Service::of(&q("Action=GetUser&Version=2010-05-08"), Some("ec2"));
        assert_eq!(iam.map(|s| s.signing_name), Some("iam"));
        assert!(Service::of(&q("Action=DescribeRegions&Version=2016-11-15"), None).is_none());
        assert!(
            Service::of(&q("Action=DescribeRegions&Version=2016-11-15"), Some("sts")).is_none(),
            "an EC2 version stays EC2's"
        );
        let signed = Service::of(&q("Action=GetCallerIdentity"), Some("sts"));
        assert_eq!(signed.map(|s| s.signing_name), Some("sts"));
        assert!(Service::of(&q("Action=DescribeRegions"), Some("ec2")).is_none());
        assert!(Service::of(&q("Action=DescribeRegions"), None).is_none());
    }

    #[test]
    fn account_from_a_twelve_digit_key() {
        assert_eq!(
            Caller::of(&scope("123456789012", "sts")).account,
            "123456789012"
        );
        assert_eq!(Caller::of(&scope("AKIDEXAMPLE", "sts")).account, ACCOUNT_ID);
        assert_eq!(Caller::of(&scope("12345678901", "sts")).account, ACCOUNT_ID);
        assert_eq!(Caller::of(&Scope::default()).account, ACCOUNT_ID);
    }

    #[test]
    fn documents_have_the_query_shapes() {
        let caller = Caller {
            account: "123456789012".into(),
        };
        let members = get_caller_identity(&caller, &QueryParams::default()).unwrap();
        assert_eq!(
            success(&STS, "GetCallerIdentity", "req-1", &members),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:root</Arn><UserId>123456789012</UserId>\
             <Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>req-1</RequestId>\
             </ResponseMetadata></GetCallerIdentityResponse>"
        );
        let e = get_user(&caller, &QueryParams::from_query("UserName=bob")).unwrap_err();
        assert_eq!(
            error(&IAM, &e, "req-2"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name bob cannot be found.</Message>\
             </Error><RequestId>req-2</RequestId></ErrorResponse>"
        );
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn default_user_is_stable_per_account() {
        let id = default_user_id("000000000000");
        assert_eq!(id, default_user_id("000000000000"));
        assert_ne!(id, default_user_id("123456789012"));
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AIDA"));
        let members = get_user(
            &Caller {
                account: ACCOUNT_ID.into(),
            },
            &QueryParams::from_query("UserName=default_user"),
        )
        .unwrap();
        assert!(members.contains("<Arn>arn:aws:iam::000000000000:user/default_user</Arn>"));
    }
}
