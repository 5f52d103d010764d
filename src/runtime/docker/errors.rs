//! The single mapping from bollard errors to [`RuntimeError`]s.

use bollard::errors::Error as BollardError;

use crate::runtime::RuntimeError;

/// The single place bollard errors become [`RuntimeError`]s.
///
/// - 404 -> `NotFound`; 409 -> `Conflict`. bollard already returns `Ok` for 304 ("already
///   started/stopped"), so 304 only reaches here if that changes, and then it is a `Conflict`.
/// - 5xx -> `Failed`, because Docker answers 500 for most real refusals (bad command, OCI
///   runtime errors) and retrying those forever helps nobody. Exceptions: 502/503/504 (a proxy
///   or socket forwarder in front of the engine) and 500s whose message names a transient
///   condition (timeouts, EAGAIN, "device or resource busy", a concurrent removal) -> `Unavailable`
///   or `Conflict`.
/// - Any other 4xx -> `Failed`.
/// - Transport trouble (missing socket, IO, hyper, timeout) -> `Unavailable`.
pub(super) fn map_error(context: &str, err: BollardError) -> RuntimeError {
    use BollardError as E;
    let text = format!("{context}: {err}");
    match err {
        E::DockerResponseServerError {
            status_code,
            message,
        } => {
            let text = format!("{context}: {message} (HTTP {status_code})");
            match status_code {
                404 => RuntimeError::NotFound(text),
                304 | 409 => RuntimeError::Conflict(text),
                502..=504 => RuntimeError::Unavailable(text),
                500..=599 => refusal(&message, text),
                _ => RuntimeError::Failed(text),
            }
        }
        E::RequestTimeoutError
        | E::IOError { .. }
        | E::HyperResponseError { .. }
        | E::HyperLegacyError { .. }
        | E::SocketNotFoundError(_)
        | E::DockerStreamError { .. } => RuntimeError::Unavailable(text),
        _ => RuntimeError::Failed(text),
    }
}

/// An error the engine wrote into the stream of an answer it had begun as a success (200), as
/// `POST /images/load` reports every failed load. bollard hands it over as a
/// `DockerStreamError`, which [`map_error`] takes for a broken stream; here the engine was
/// reached and said why it refused, so it reads as a 500 with that message would.
pub(super) fn map_stream_error(context: &str, message: &str) -> RuntimeError {
    refusal(message, format!("{context}: {message}"))
}

/// A refusal the engine explained (a 500's message): `Failed` unless the message names a
/// conflict or a transient condition.
fn refusal(message: &str, text: String) -> RuntimeError {
    if looks_like_conflict(message) {
        RuntimeError::Conflict(text)
    } else if looks_transient(message) {
        RuntimeError::Unavailable(text)
    } else {
        RuntimeError::Failed(text)
    }
}

fn looks_conflict_or(message: &str, needles: &[&str]) -> bool {
    let m = message.to_ascii_lowercase();
    needles.iter().any(|n| m.contains(n))
}

fn looks_like_conflict(message: &str) -> bool {
    looks_conflict_or(
        message,
        &[
            "is already in progress",
            "is already paused",
            "is not paused",
            "is not running",
            // A fixed address still held by a container on its way out (a terminated
            // instance's): free again in a moment.
            "address already in use",
        ],
    )
}

fn looks_transient(message: &str) -> bool {
    looks_conflict_or(
        message,
        &[
            "context deadline exceeded",
            "i/o timeout",
            "timed out",
            "resource temporarily unavailable",
            "device or resource busy",
            "connection refused",
            "connection reset",
            "broken pipe",
            "try again",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        let server = |status_code: u16, message: &str| BollardError::DockerResponseServerError {
            status_code,
            message: message.into(),
        };
        assert!(matches!(
            map_error("x", server(404, "no such container")),
            RuntimeError::NotFound(_)
        ));
        assert!(matches!(
            map_error("x", server(409, "already paused")),
            RuntimeError::Conflict(_)
        ));
        assert!(matches!(
            map_error("x", server(304, "")),
            RuntimeError::Conflict(_)
        ));
        assert!(matches!(
            map_error("x", server(400, "bad")),
            RuntimeError::Failed(_)
        ));
        assert!(matches!(
            map_error("x", server(500, "exec: not found")),
            RuntimeError::Failed(_)
        ));
        assert!(matches!(
            map_error("x", server(503, "")),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            map_error("x", server(500, "context deadline exceeded")),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            map_error("x", BollardError::RequestTimeoutError),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            map_error("x", BollardError::SocketNotFoundError("/nope".into())),
            RuntimeError::Unavailable(_)
        ));
    }

    #[test]
    fn errors_inside_a_successful_answer_are_classified_by_their_message() {
        let refused = map_stream_error("load image", "unexpected EOF");
        assert_eq!(
            refused,
            RuntimeError::Failed("load image: unexpected EOF".into())
        );
        assert!(matches!(
            map_stream_error("load image", "write /var/lib/docker/tmp/x: i/o timeout"),
            RuntimeError::Unavailable(_)
        ));
    }
}
