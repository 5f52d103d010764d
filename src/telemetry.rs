//! Logging set-up: `tracing` to stderr as text or JSON lines (`EC2D_LOG_FORMAT`), filtered by `EC2D_LOG` (or `RUST_LOG` when set).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, span fields as `span{field=value}:` prefixes.
    Text,
    /// One JSON object per line, every field of the event and of its spans at the top level.
    Json,
}

/// Installs the global subscriber; a second call (tests) is a harmless no-op.
pub fn init(default_filter: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            // Colour codes only for a terminal: logs redirected to a file stay greppable.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            // Span fields are kept as JSON so `FlatJson` can merge them into each line.
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(std::io::stderr)
            .try_init(),
    };
}

/// A JSON line per event with the event's fields and those of every span it is in (outermost
/// first, inner ones and then the event's own winning a clash) at the top level, beside
/// `timestamp`, `level`, `target` and `spans` (the span names, outermost first).
///
/// tracing-subscriber's own JSON puts event fields under `fields` and span fields under
/// `span`/`spans`, so an instance's id would sit in a different place depending on whether
/// the line set it or inherited it from a reconcile or request span; flat, `jq
/// 'select(.instance_id == "i-…")'` finds every line about an instance.
pub struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_string()));
        let mut names = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                names.push(Value::String(span.name().to_string()));
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                // JsonFields stores a span's fields as one JSON object (empty for none).
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&fields.fields) {
                    line.extend(fields);
                }
            }
        }
        if !names.is_empty() {
            line.insert("spans".into(), Value::Array(names));
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Records an event's fields into the line's map, typed where JSON has the type.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(log: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("debug"))
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn span_and_event_fields_are_flattened_into_one_object_per_line() {
        let lines = lines_of(|| {
            let request = tracing::info_span!("request", request_id = "r-1", action = "Run");
            let _r = request.enter();
            let pass = tracing::info_span!("reconcile", instance_id = "i-0123456789abcdef0");
            pass.in_scope(|| tracing::info!(ports = 2u64, up = true, "planned \"quoted\""));
            tracing::warn!(instance_id = "i-1", "the event's own field wins");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let first = &lines[0];
        assert_eq!(first["instance_id"], "i-0123456789abcdef0");
        assert_eq!(first["request_id"], "r-1");
        assert_eq!(first["action"], "Run");
        assert_eq!(first["ports"], 2);
        assert_eq!(first["up"], true);
        assert_eq!(first["message"], "planned \"quoted\"");
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["spans"], serde_json::json!(["request", "reconcile"]));
        assert!(first["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        assert_eq!(lines[1]["instance_id"], "i-1");
        assert_eq!(lines[1]["spans"], serde_json::json!(["request"]));
    }

    #[test]
    fn a_line_outside_any_span_has_no_spans() {
        let lines = lines_of(|| tracing::info!(addr = "127.0.0.1:4566", "ec2d listening"));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["addr"], "127.0.0.1:4566");
        assert!(lines[0].get("spans").is_none());
    }
}
