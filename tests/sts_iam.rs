//! STS `GetCallerIdentity` and IAM `GetUser` on the EC2 endpoint, through `api::router` with
//! `oneshot`: routed by `Version` (else the signing service), their own envelopes and errors.

mod common;

use axum::http::StatusCode;
use common::api::{parse_xml, Harness, Node, Reply};

const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Asserts a successful STS/IAM answer for `action` and returns its `{Action}Result`.
fn result(reply: &Reply, action: &str, namespace: &str) -> Node {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.content_type, "text/xml;charset=UTF-8");
    let doc = parse_xml(&reply.body);
    assert_eq!(doc.name, format!("{action}Response"));
    assert_eq!(
        doc.attrs,
        vec![("xmlns".to_string(), namespace.to_string())]
    );
    assert_eq!(
        doc.names(),
        vec![format!("{action}Result").as_str(), "ResponseMetadata"]
    );
    assert!(uuid::Uuid::parse_str(doc.text_at("ResponseMetadata/RequestId")).is_ok());
    doc.child(&format!("{action}Result")).clone()
}

/// Asserts an STS/IAM error document; returns its message.
fn error(reply: &Reply, status: StatusCode, code: &str, namespace: &str) -> String {
    assert_eq!(reply.status, status, "{}", reply.body);
    let doc = parse_xml(&reply.body);
    assert_eq!(doc.name, "ErrorResponse");
    assert_eq!(
        doc.attrs,
        vec![("xmlns".to_string(), namespace.to_string())]
    );
    assert_eq!(doc.names(), vec!["Error", "RequestId"]);
    let e = doc.child("Error");
    assert_eq!(e.names(), vec!["Type", "Code", "Message"]);
    assert_eq!(e.text("Type"), "Sender");
    assert_eq!(e.text("Code"), code);
    e.text("Message").to_string()
}

const CALLER: &[(&str, &str)] = &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];
const USER: &[(&str, &str)] = &[("Action", "GetUser"), ("Version", "2010-05-08")];

#[tokio::test]
async fn get_caller_identity_answers_the_root_of_the_account() {
    let h = Harness::new();
    let r = result(
        &h.post_signed("AKIDEXAMPLE/20240101/us-east-1/sts/aws4_request", CALLER)
            .await,
        "GetCallerIdentity",
        STS_NS,
    );
    assert_eq!(r.names(), vec!["Arn", "UserId", "Account"]);
    assert_eq!(r.text("Arn"), "arn:aws:iam::000000000000:root");
    assert_eq!(r.text("Account"), "000000000000");
    assert_eq!(r.text("UserId"), "000000000000");

    // A 12-digit access key id is the account, as in LocalStack.
    let r = result(
        &h.post_signed("111122223333/20240101/eu-west-1/sts/aws4_request", CALLER)
            .await,
        "GetCallerIdentity",
        STS_NS,
    );
    assert_eq!(r.text("Account"), "111122223333");
    assert_eq!(r.text("Arn"), "arn:aws:iam::111122223333:root");

    // Unsigned (and GET) works too; without a Version the signing service decides.
    result(&h.get(CALLER).await, "GetCallerIdentity", STS_NS);
    result(
        &h.post_signed(
            "AKIDEXAMPLE/20240101/us-east-1/sts/aws4_request",
            &[("Action", "GetCallerIdentity")],
        )
        .await,
        "GetCallerIdentity",
        STS_NS,
    );
}

#[tokio::test]
async fn get_user_answers_the_default_user() {
    let h = Harness::new();
    let r = result(
        &h.post_signed("AKIDEXAMPLE/20240101/us-east-1/iam/aws4_request", USER)
            .await,
        "GetUser",
        IAM_NS,
    );
    let user = r.child("User");
    assert_eq!(
        user.names(),
        vec!["Path", "UserName", "UserId", "Arn", "CreateDate"]
    );
    assert_eq!(user.text("Path"), "/");
    assert_eq!(user.text("UserName"), "default_user");
    assert!(user.text("UserId").starts_with("AIDA"));
    assert_eq!(
        user.text("Arn"),
        "arn:aws:iam::000000000000:user/default_user"
    );
    let r = result(
        &h.post_signed("444455556666/20240101/us-east-1/iam/aws4_request", USER)
            .await,
        "GetUser",
        IAM_NS,
    );
    assert_eq!(
        r.text_at("User/Arn"),
        "arn:aws:iam::444455556666:user/default_user"
    );
    let mut named = USER.to_vec();
    named.push(("UserName", "nobody"));
    let message = error(
        &h.post(&named).await,
        StatusCode::NOT_FOUND,
        "NoSuchEntity",
        IAM_NS,
    );
    assert_eq!(message, "The user with name nobody cannot be found.");
}

#[tokio::test]
async fn identity_services_keep_their_own_errors_and_ec2_is_unchanged() {
    let h = Harness::new();
    let message = error(
        &h.post(&[("Action", "AssumeRole"), ("Version", "2011-06-15")])
            .await,
        StatusCode::BAD_REQUEST,
        "InvalidAction",
        STS_NS,
    );
    assert_eq!(
        message,
        "Could not find operation AssumeRole for version 2011-06-15"
    );
    // An EC2 action under the STS version is not EC2's.
    error(
        &h.post(&[("Action", "DescribeRegions"), ("Version", "2011-06-15")])
            .await,
        StatusCode::BAD_REQUEST,
        "InvalidAction",
        STS_NS,
    );
    error(
        &h.post(&[("Version", "2010-05-08")]).await,
        StatusCode::BAD_REQUEST,
        "MissingAction",
        IAM_NS,
    );
    // And STS's action under EC2's version is EC2's InvalidAction, in EC2's shape.
    h.post(&[("Action", "GetCallerIdentity"), ("Version", "2016-11-15")])
        .await
        .err("InvalidAction");
    h.post(&[("Action", "DescribeRegions"), ("Version", "2016-11-15")])
        .await
        .ok("DescribeRegions");
    // No DryRun in these services: the parameter is ignored, as AWS ignores unknown ones.
    let mut dry = CALLER.to_vec();
    dry.push(("DryRun", "true"));
    result(&h.post(&dry).await, "GetCallerIdentity", STS_NS);
}
