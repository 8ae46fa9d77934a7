//! Log setup: level and format (logfmt or JSON), both changeable on reload.

use std::fmt;

use super::civil_time::{Precision, format_rfc3339};
use std::str::FromStr;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, reload};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warn" => Ok(Self::Warn),
            "error" => Ok(Self::Error),
            other => Err(format!(
                "unknown log level {other:?}: use debug, info, warn or error"
            )),
        }
    }
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            Self::Debug => LevelFilter::DEBUG,
            Self::Info => LevelFilter::INFO,
            Self::Warn => LevelFilter::WARN,
            Self::Error => LevelFilter::ERROR,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "logfmt" => Ok(Self::Logfmt),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?}: use logfmt or json")),
        }
    }
}

// The level filter and the formatter are two reloadable layers: a
// per-layer filter inside a reloadable layer is not supported by
// tracing-subscriber.
type Filtered = tracing_subscriber::layer::Layered<reload::Layer<LevelFilter, Registry>, Registry>;
type BoxedLayer = Box<dyn Layer<Filtered> + Send + Sync>;

/// Changes the installed logger's level and format.
#[derive(Clone)]
pub struct LogHandle {
    level: reload::Handle<LevelFilter, Registry>,
    format: reload::Handle<BoxedLayer, Filtered>,
}

impl LogHandle {
    pub fn apply(&self, level: LogLevel, format: LogFormat) {
        // Fails only when the subscriber is gone, i.e. during exit.
        let _ = self.level.reload(level.filter());
        let _ = self.format.reload(build_layer(format));
    }
}

/// Installs the process-wide logger writing to stderr.
pub fn init(level: LogLevel, format: LogFormat) -> LogHandle {
    let (level_layer, level) = reload::Layer::new(level.filter());
    let (format_layer, format) = reload::Layer::new(build_layer(format));
    // A second init (tests) keeps the first logger.
    let _ = tracing_subscriber::registry()
        .with(level_layer)
        .with(format_layer)
        .try_init();
    LogHandle { level, format }
}

fn build_layer(format: LogFormat) -> BoxedLayer {
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Logfmt => fmt.event_format(Logfmt).boxed(),
    }
}

/// `ts=... level=info msg="..." key=value` lines, as Alloy writes them.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(
            writer,
            "ts={} level={}",
            format_rfc3339(std::time::SystemTime::now(), Precision::Millis),
            level_name(*meta.level())
        )?;
        let mut fields = LogfmtFields::default();
        event.record(&mut fields);
        write!(writer, " msg={}", quote(&fields.message))?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(ext) = span
                    .extensions()
                    .get::<tracing_subscriber::fmt::FormattedFields<N>>()
                    && !ext.fields.is_empty()
                {
                    write!(writer, " {}", ext.fields)?;
                }
            }
        }
        for (k, v) in &fields.pairs {
            write!(writer, " {k}={}", quote(v))?;
        }
        writeln!(writer)
    }
}

#[derive(Default)]
struct LogfmtFields {
    message: String,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for LogfmtFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl LogfmtFields {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.pairs.push((field.name(), value));
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// Quotes a logfmt value when it holds spaces, quotes or `=`.
fn quote(value: &str) -> String {
    if !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=')
    {
        return value.to_string();
    }
    format!("{value:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
    }

    #[test]
    fn parses_levels_and_formats() {
        assert_eq!("warn".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert!("verbose".parse::<LogLevel>().is_err());
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
    }
}
