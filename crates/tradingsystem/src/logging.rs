//! JSON-lines logging: one object per line with timestamp, level, service, message, the correlation id and the
//! other fields of the enclosing spans flattened to the top level, to stderr and to daily files
//! `$TS_DATA_DIR/logs/<service>/YYYY-MM-DD.jsonl` (30 kept).

use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

struct JsonLines {
    service: String,
}

struct Visitor<'a>(&'a mut Map<String, Value>);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut map = Map::new();
        map.insert(
            "timestamp".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        map.insert("level".into(), Value::from(meta.level().as_str()));
        map.insert("service".into(), Value::from(self.service.as_str()));
        map.insert("target".into(), Value::from(meta.target()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(fields.as_str()) {
                        map.extend(o);
                    }
                }
            }
        }
        event.record(&mut Visitor(&mut map));
        // Whatever a message carries, a known secret never reaches stderr or a log file.
        writeln!(writer, "{}", redact::redact(&Value::Object(map).to_string()))
    }
}

/// Keeps the file writer flushing until dropped.
pub struct Guard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Logs to stderr and, when `data_dir` is given, to daily files.
pub fn init(service: &str, level: &str, data_dir: Option<&Path>) -> anyhow::Result<Guard> {
    let filter = EnvFilter::try_new(level).or_else(|_| EnvFilter::try_new("info"))?;
    let stderr = tracing_subscriber::fmt::layer()
        .event_format(JsonLines { service: service.into() })
        .fmt_fields(JsonFields::new())
        .with_writer(std::io::stderr);
    let (file_layer, guard) = match data_dir {
        Some(dir) => {
            let log_dir = dir.join("logs").join(service);
            std::fs::create_dir_all(&log_dir)?;
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_suffix("jsonl")
                .max_log_files(30)
                .build(&log_dir)?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .event_format(JsonLines { service: service.into() })
                .fmt_fields(JsonFields::new())
                .with_ansi(false)
                .with_writer(writer);
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(filter).with(stderr).with(file_layer).try_init()?;
    Ok(Guard(guard))
}
