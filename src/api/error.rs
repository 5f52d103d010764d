//! `ApiError`: every failure the API answers, and the one place errors become EC2 `<Response><Errors>` XML.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::xml::XmlWriter;
use crate::model::{
    IdError, ImageId, InstanceId, NeverRanError, ReservationId, TransitionError, IMAGE_KIND,
    INSTANCE_KIND, LAUNCH_TEMPLATE_KIND, SNAPSHOT_KIND,
};
use crate::store::StoreError;

/// The content type EC2 answers with, success or error (Smithy `ec2Query` tests pin it).
pub const XML_CONTENT_TYPE: &str = "text/xml;charset=UTF-8";

/// An EC2 error: a code such as `InvalidInstanceID.NotFound`, AWS's message and the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// EC2's error code (`<Code>`).
    pub code: Cow<'static, str>,
    /// The human-readable text (`<Message>`), worded as AWS words it where known.
    pub message: String,
    /// 400 for client errors, 412 for DryRun, 5xx for ours.
    pub status: StatusCode,
    /// The request id shown in `<RequestID>`; a fresh one is made when unset.
    pub request_id: Option<String>,
}

impl ApiError {
    /// An error with an explicit code, message and status.
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        status: StatusCode,
    ) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status,
            request_id: None,
        }
    }

    /// A 400 client error.
    pub fn client(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, message, StatusCode::BAD_REQUEST)
    }

    /// Attaches the request id so the error body and the logs agree.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_string());
        self
    }

    /// `MissingParameter`: a required parameter is absent.
    pub fn missing_parameter(name: &str) -> Self {
        Self::client(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    }

    /// `MissingAction`: no `Action` at all. AWS's common-errors list names this code for a
    /// request "missing an action"; the message follows the `MissingParameter` wording.
    pub fn missing_action() -> Self {
        Self::client(
            "MissingAction",
            "The request must contain the parameter Action",
        )
    }

    /// `InvalidAction`: an action ec2d does not implement.
    pub fn invalid_action(action: &str) -> Self {
        Self::client(
            "InvalidAction",
            format!("The action {action} is not valid for this web service."),
        )
    }

    /// `InvalidParameterValue` with AWS's free-form message.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::client("InvalidParameterValue", message)
    }

    /// `InvalidParameterCombination`.
    pub fn invalid_combination(message: impl Into<String>) -> Self {
        Self::client("InvalidParameterCombination", message)
    }

    /// `InvalidParameterValue` for an unsupported filter name, as EC2 words it.
    pub fn invalid_filter(name: &str) -> Self {
        Self::invalid_value(format!("The filter '{name}' is invalid"))
    }

    /// `DryRunOperation`: the request was valid and would have been carried out (HTTP 412, as AWS).
    pub fn dry_run() -> Self {
        Self::new(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
            StatusCode::PRECONDITION_FAILED,
        )
    }

    /// `InvalidInstanceID.NotFound` for one or several ids, in AWS's singular/plural wording
    /// (the instance kind's declaration words it).
    pub fn instances_not_found(ids: &[String]) -> Self {
        use super::kind::Kind;
        super::kinds::InstanceKind::IDS.not_found(ids)
    }

    /// `InvalidAMIID.NotFound`, with AWS's bracketed id.
    pub fn images_not_found(ids: &[String]) -> Self {
        Self::client(
            "InvalidAMIID.NotFound",
            format!("The image id '[{}]' does not exist", ids.join(", ")),
        )
    }

    /// `RequestEntityTooLarge`: the body exceeds the limit (HTTP 413).
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            "RequestEntityTooLarge",
            format!("The request body exceeds the maximum size of {limit} bytes."),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    }

    /// `InternalError`: a failure on ec2d's side; the detail goes to the log, not the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            "InternalError",
            "An internal error has occurred",
            StatusCode::INTERNAL_SERVER_ERROR,
        )
    }

    /// Whether the fault is ours (5xx) rather than the client's.
    pub fn is_server_error(&self) -> bool {
        self.status.is_server_error()
    }

    /// The `<Response><Errors>…` document, with the given request id.
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut w = XmlWriter::new();
        w.declaration();
        w.el("Response", |w| {
            w.el("Errors", |w| {
                w.el("Error", |w| {
                    w.field("Code", &self.code);
                    w.field("Message", &self.message);
                });
            });
            w.field("RequestID", request_id);
        });
        w.finish()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = self
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        // The one place errors meet the wire, so the one place they are logged: ours loudly,
        // the client's quietly (a client error is not an incident).
        if self.is_server_error() {
            tracing::error!(code = %self.code, message = %self.message, %request_id, status = self.status.as_u16(), "request failed");
        } else {
            tracing::debug!(code = %self.code, message = %self.message, %request_id, status = self.status.as_u16(), "request rejected");
        }
        let body = self.to_xml(&request_id);
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(XML_CONTENT_TYPE),
            )],
            body,
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } if kind == INSTANCE_KIND => {
                Self::instances_not_found(&[id])
            }
            StoreError::NotFound { kind, id } if kind == IMAGE_KIND => {
                Self::images_not_found(&[id])
            }
            // A template deleted while a request changed it.
            StoreError::NotFound { kind, id } if kind == LAUNCH_TEMPLATE_KIND => {
                super::launch_templates::id_not_found(&id)
            }
            // A snapshot collected while a request changed it.
            StoreError::NotFound { kind, id } if kind == SNAPSHOT_KIND => {
                super::snapshots::not_found(&id)
            }
            other => Self::internal(other),
        }
    }
}

impl From<IdError> for ApiError {
    fn from(e: IdError) -> Self {
        let code = match e.prefix {
            p if p == InstanceId::PREFIX => "InvalidInstanceID.Malformed",
            p if p == ImageId::PREFIX => "InvalidAMIID.Malformed",
            p if p == ReservationId::PREFIX => "InvalidReservationID.Malformed",
            _ => "InvalidParameterValue",
        };
        Self::client(code, e.to_string())
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        Self::client("IncorrectInstanceState", e.to_string())
    }
}

impl From<NeverRanError> for ApiError {
    fn from(e: NeverRanError) -> Self {
        Self::client("IncorrectInstanceState", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_document_matches_the_ec2_query_shape() {
        let e = ApiError::instances_not_found(&["i-1a2b3c4d".to_string()]);
        assert_eq!(
            e.to_xml("ea966190-f9aa-478e-9ede-example"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>\
             <Message>The instance ID 'i-1a2b3c4d' does not exist</Message></Error></Errors>\
             <RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"
        );
    }

    #[test]
    fn plural_not_found_wording() {
        let e = ApiError::instances_not_found(&["i-a".into(), "i-b".into()]);
        assert_eq!(e.message, "The instance IDs 'i-a, i-b' do not exist");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn conversions_pick_the_right_codes() {
        let e: ApiError = InstanceId::parse("x").unwrap_err().into();
        assert_eq!(e.code, "InvalidInstanceID.Malformed");
        assert_eq!(e.message, "Invalid id: \"x\" (expecting \"i-...\")");
        let e: ApiError = ImageId::parse("rocket").unwrap_err().into();
        assert_eq!(e.code, "InvalidAMIID.Malformed");
        let e: ApiError = StoreError::NotFound {
            kind: INSTANCE_KIND,
            id: "i-1".into(),
        }
        .into();
        assert_eq!(e.code, "InvalidInstanceID.NotFound");
        let e: ApiError = StoreError::Backend("disk on fire".into()).into();
        assert_eq!(e.code, "InternalError");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !e.message.contains("disk"),
            "backend detail leaked to the client"
        );
        let e: ApiError = TransitionError {
            instance_id: "i-1".into(),
            verb: "started",
        }
        .into();
        assert_eq!(e.code, "IncorrectInstanceState");
        assert_eq!(
            e.message,
            "The instance 'i-1' is not in a state from which it can be started."
        );
    }

    #[test]
    fn dry_run_is_412() {
        assert_eq!(ApiError::dry_run().status, StatusCode::PRECONDITION_FAILED);
    }
}
