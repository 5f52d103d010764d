//! An instance's console output as GetConsoleOutput shows it: a bounded copy of its container's log that the reconciler keeps.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::Timestamp;

/// The most console output kept, as EC2 does: "only the most recent 64 KB".
pub const CONSOLE_OUTPUT_LIMIT: usize = 64 * 1024;

/// The copy of one instance's console output. Observed state, written only by the reconciler
/// (it alone reads container logs); kept apart from the instance's status so the status
/// record, read and rewritten on every pass, stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleOutput {
    /// The container whose log this is: a new container (a fresh boot) starts a new copy.
    pub container_id: String,
    /// The output, base64-encoded as GetConsoleOutput answers it; at most
    /// [`CONSOLE_OUTPUT_LIMIT`] bytes before encoding.
    pub output: String,
    /// When the output last changed: GetConsoleOutput's `timestamp`.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
    /// The engine's time of the last log line copied (to the nanosecond), so the next read
    /// asks only for what came after it.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub read_until: Option<Timestamp>,
}

impl ConsoleOutput {
    /// A copy holding `bytes` (their last [`CONSOLE_OUTPUT_LIMIT`] bytes, from the first whole
    /// UTF-8 character on, so the cut never leaves half a character at the start).
    pub fn new(
        container_id: &str,
        bytes: &[u8],
        updated_at: Timestamp,
        read_until: Option<Timestamp>,
    ) -> Self {
        let mut start = bytes.len().saturating_sub(CONSOLE_OUTPUT_LIMIT);
        if start > 0 {
            // UTF-8 continuation bytes are 0b10xxxxxx; a character is at most 4 bytes.
            let skip = bytes[start..]
                .iter()
                .take(3)
                .take_while(|b| (**b & 0xC0) == 0x80)
                .count();
            start += skip;
        }
        Self {
            container_id: container_id.to_string(),
            output: base64::engine::general_purpose::STANDARD.encode(&bytes[start..]),
            updated_at,
            read_until,
        }
    }

    /// The output's bytes (empty if the stored text is not base64, which only a corrupt
    /// record would hold: the copy is then rebuilt from what follows).
    pub fn bytes(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.output)
            .unwrap_or_default()
    }

    /// Whether there is no output.
    pub fn is_empty(&self) -> bool {
        self.output.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_keeps_the_last_64_kib_from_a_whole_character() {
        let at = crate::model::now();
        let short = ConsoleOutput::new("c1", b"hello\n", at, None);
        assert_eq!(short.bytes(), b"hello\n");
        assert_eq!(short.output, "aGVsbG8K");

        let mut long = vec![b'x'; CONSOLE_OUTPUT_LIMIT];
        long.extend_from_slice("é and the end\n".as_bytes());
        let kept = ConsoleOutput::new("c1", &long, at, None).bytes();
        assert!(kept.len() <= CONSOLE_OUTPUT_LIMIT);
        assert!(kept.ends_with("é and the end\n".as_bytes()));
        assert!(std::str::from_utf8(&kept).is_ok());

        // A cut inside "é" (2 bytes) skips its second half.
        let mut split = "é".as_bytes().to_vec();
        split.extend(vec![b'y'; CONSOLE_OUTPUT_LIMIT - 1]);
        let kept = ConsoleOutput::new("c1", &split, at, None).bytes();
        assert_eq!(kept.len(), CONSOLE_OUTPUT_LIMIT - 1);
        assert!(kept.iter().all(|b| *b == b'y'));
    }

    #[test]
    fn the_copy_round_trips_with_nanosecond_read_times() {
        let read = time::macros::datetime!(2024-05-07 21:09:36.123456789 UTC);
        let copy = ConsoleOutput::new("c1", b"x", crate::model::now(), Some(read));
        let json = serde_json::to_string(&copy).unwrap();
        let back: ConsoleOutput = serde_json::from_str(&json).unwrap();
        assert_eq!(back, copy);
        assert_eq!(back.read_until.unwrap().nanosecond(), 123_456_789);
    }
}
