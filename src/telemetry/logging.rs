//! Log setup: level and format (logfmt or JSON), both changeable on reload.

use std::fmt;
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
            humantime_now(),
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

/// RFC 3339 UTC with milliseconds, without a date-time crate.
fn humantime_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_millis(now.as_secs(), now.subsec_millis())
}

fn rfc3339_millis(unix_secs: u64, millis: u32) -> String {
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for 1970 onwards.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(rfc3339_millis(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(1_795_578_233, 7), "2026-11-25T03:43:53.007Z");
        assert_eq!(rfc3339_millis(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }

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
