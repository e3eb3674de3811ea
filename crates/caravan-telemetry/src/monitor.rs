//! The live log monitor behind `/v1/agent/monitor`: a tracing layer that renders this process's
//! events for each subscriber at the subscriber's level and format and hands them over through
//! a bounded queue.
//!
//! - Nothing waits for a subscriber: a full queue drops the line and counts it; the subscriber
//!   reads a notice with the count after the lines it did get. A slow reader loses lines, never
//!   slows the process.
//! - While nobody monitors, the layer's filter admits nothing, so events the stderr filter
//!   drops are never even built. A subscriber that wants more rebuilds the callsite interest
//!   once; so does the last one leaving.
//! - Caravan's own events pass at any level; other crates' (hyper, h2, tonic, sqlx) at info
//!   and above only: their debug and trace output is noise here, and streaming a monitor would
//!   feed the monitor.
//! - Lines look like hclog's: `2025-03-04T05:06:07.890Z [INFO]  caravan_server::nodes: node
//!   registered: node_id=...`, or hclog's JSON objects with `log_json`.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::{Bytes, BytesMut};
use caravan_structs::LogLevel;
use futures::Stream;
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

/// Lines a subscriber may have queued before new ones are dropped (Nomad keeps 512 too).
pub const SUBSCRIBER_BUFFER: usize = 512;

/// Monitors one process streams to at once; more are refused (each costs every event it
/// admits a rendering and a send).
pub const MAX_SUBSCRIBERS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    #[error("too many monitors: at most {0} may stream from one agent at once")]
    TooManySubscribers(usize),
}

/// A batch handed to a reader stops growing at about this size.
const BATCH_BYTES: usize = 64 * 1024;

/// What one subscriber wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonitorOptions {
    pub level: LogLevel,
    /// hclog's JSON objects instead of text lines.
    pub json: bool,
    /// The source file and line of each event.
    pub include_location: bool,
}

/// The fan-out point. Clones share the subscribers.
#[derive(Clone, Default)]
pub struct Monitor {
    inner: Arc<Inner>,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("max_rank", &self.inner.max_rank.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    subscribers: RwLock<Vec<Subscriber>>,
    /// The most verbose rank any subscriber wants (see [`rank`]); 0 while there is none.
    max_rank: AtomicU8,
    next_id: AtomicU64,
}

struct Subscriber {
    id: u64,
    options: MonitorOptions,
    tx: mpsc::Sender<Bytes>,
    dropped: Arc<AtomicU64>,
}

/// Verbosity as a number: off 0, error 1 ... trace 5.
fn rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Off => 0,
        LogLevel::Error => 1,
        LogLevel::Warn => 2,
        LogLevel::Info => 3,
        LogLevel::Debug => 4,
        LogLevel::Trace => 5,
    }
}

fn event_rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

const INFO_RANK: u8 = 3;

/// Whether a subscriber at `max` sees events of `meta` (and so what `enabled!` answers for
/// it). Spans are not shown.
fn admits(max: u8, meta: &Metadata<'_>) -> bool {
    let r = event_rank(meta.level());
    !meta.is_span() && r <= max && (r <= INFO_RANK || meta.target().starts_with("caravan"))
}

impl Monitor {
    pub fn new() -> Monitor {
        Monitor::default()
    }

    /// The process's monitor: the one [`crate::init_logging`] installs.
    pub fn global() -> &'static Monitor {
        static GLOBAL: OnceLock<Monitor> = OnceLock::new();
        GLOBAL.get_or_init(Monitor::new)
    }

    /// The layer that feeds this monitor, with its own filter.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        MonitorLayer {
            inner: self.inner.clone(),
        }
        .with_filter(MonitorFilter {
            inner: self.inner.clone(),
        })
    }

    /// Starts receiving this process's log lines; they stop when the subscription is dropped.
    pub fn subscribe(&self, options: MonitorOptions) -> Result<Subscription, MonitorError> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        if let Ok(mut subs) = self.inner.subscribers.write() {
            if subs.len() >= MAX_SUBSCRIBERS {
                return Err(MonitorError::TooManySubscribers(MAX_SUBSCRIBERS));
            }
            subs.push(Subscriber {
                id,
                options,
                tx,
                dropped: dropped.clone(),
            });
        }
        self.inner.refresh_max();
        tracing::debug!(
            subscription = id,
            level = %options.level,
            subscribers = self.subscribers(),
            "monitor subscription started"
        );
        Ok(Subscription {
            id,
            options,
            rx,
            dropped,
            monitor: self.clone(),
        })
    }

    /// How many subscribers there are now.
    pub fn subscribers(&self) -> usize {
        self.inner.subscribers.read().map(|s| s.len()).unwrap_or(0)
    }
}

impl Inner {
    /// Recomputes the most verbose level wanted; when it changed, every callsite is asked
    /// again whether it is enabled (the lock is not held then: that asks our filter).
    fn refresh_max(&self) {
        let max = match self.subscribers.read() {
            Ok(subs) => subs
                .iter()
                .map(|s| rank(s.options.level))
                .max()
                .unwrap_or(0),
            Err(_) => 0,
        };
        if self.max_rank.swap(max, Ordering::AcqRel) != max {
            tracing::callsite::rebuild_interest_cache();
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut subs) = self.subscribers.write() {
            subs.retain(|s| s.id != id);
        }
        self.refresh_max();
    }

    fn publish(&self, event: &Event<'_>) {
        let Ok(subs) = self.subscribers.read() else {
            return;
        };
        let meta = event.metadata();
        let mut record: Option<Record> = None;
        // One rendering per format in use: (json, location) → slot.
        let mut rendered: [Option<Bytes>; 4] = Default::default();
        for sub in subs.iter() {
            if !admits(rank(sub.options.level), meta) {
                continue;
            }
            let record = record.get_or_insert_with(|| Record::from_event(event));
            let slot =
                usize::from(sub.options.json) * 2 + usize::from(sub.options.include_location);
            let line = rendered[slot]
                .get_or_insert_with(|| record.render(sub.options))
                .clone();
            if let Err(mpsc::error::TrySendError::Full(_)) = sub.tx.try_send(line) {
                sub.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct MonitorFilter {
    inner: Arc<Inner>,
}

impl<S> Filter<S> for MonitorFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        admits(self.inner.max_rank.load(Ordering::Relaxed), meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if admits(self.inner.max_rank.load(Ordering::Relaxed), meta) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match self.inner.max_rank.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }
}

struct MonitorLayer {
    inner: Arc<Inner>,
}

impl<S: tracing::Subscriber> Layer<S> for MonitorLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        self.inner.publish(event);
    }
}

/// One subscriber's end: its lines, in order, in batches.
pub struct Subscription {
    id: u64,
    options: MonitorOptions,
    rx: mpsc::Receiver<Bytes>,
    dropped: Arc<AtomicU64>,
    monitor: Monitor,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Waits for a line, then takes whatever else is queued (about [`BATCH_BYTES`] at most).
    /// When lines were dropped since the last batch, a warning line with their count closes
    /// it. `None` never happens while the monitor lives.
    pub async fn next_batch(&mut self) -> Option<Bytes> {
        let first = self.rx.recv().await?;
        let mut out = BytesMut::from(first.as_ref());
        while out.len() < BATCH_BYTES {
            match self.rx.try_recv() {
                Ok(line) => out.extend_from_slice(&line),
                Err(_) => break,
            }
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            out.extend_from_slice(&dropped_notice(dropped, self.options));
        }
        Some(out.freeze())
    }

    /// The batches as a stream; dropping it ends the subscription.
    pub fn into_stream(self) -> impl Stream<Item = Bytes> + Send + 'static {
        futures::stream::unfold(self, |mut sub| async move {
            sub.next_batch().await.map(|batch| (batch, sub))
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.monitor.inner.remove(self.id);
        tracing::debug!(
            subscription = self.id,
            subscribers = self.monitor.subscribers(),
            "monitor subscription ended"
        );
    }
}

fn dropped_notice(count: u64, options: MonitorOptions) -> Bytes {
    let record = Record {
        time: jiff::Timestamp::now(),
        level: Level::WARN,
        target: module_path!().to_owned(),
        location: None,
        message: "monitor dropped log lines: the reader did not keep up".to_owned(),
        fields: vec![("dropped".to_owned(), FieldValue::U64(count))],
    };
    record.render(options)
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum FieldValue {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) => f.write_str(s),
            FieldValue::I64(v) => write!(f, "{v}"),
            FieldValue::U64(v) => write!(f, "{v}"),
            FieldValue::F64(v) => write!(f, "{v}"),
            FieldValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// An event, taken apart once and rendered for each format in use.
#[derive(Debug)]
struct Record {
    time: jiff::Timestamp,
    level: Level,
    target: String,
    location: Option<(String, u32)>,
    message: String,
    fields: Vec<(String, FieldValue)>,
}

impl Record {
    fn from_event(event: &Event<'_>) -> Record {
        let meta = event.metadata();
        let mut visitor = Visitor::default();
        event.record(&mut visitor);
        let file = visitor
            .log_file
            .take()
            .or_else(|| meta.file().map(str::to_owned));
        let location = file.map(|f| (f, visitor.log_line.or(meta.line()).unwrap_or(0)));
        Record {
            time: jiff::Timestamp::now(),
            level: *meta.level(),
            target: visitor
                .log_target
                .take()
                .unwrap_or_else(|| meta.target().to_owned()),
            location,
            message: visitor.message,
            fields: visitor.fields,
        }
    }

    fn render(&self, options: MonitorOptions) -> Bytes {
        if options.json {
            self.render_json(options.include_location)
        } else {
            self.render_text(options.include_location)
        }
    }

    /// hclog's text line: time, bracketed level padded to 7, location, module, message, then
    /// `key=value` pairs.
    fn render_text(&self, include_location: bool) -> Bytes {
        let mut line = String::with_capacity(128 + self.message.len());
        let _ = write!(
            line,
            "{} {:<7} ",
            self.time.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
            match self.level {
                Level::TRACE => "[TRACE]",
                Level::DEBUG => "[DEBUG]",
                Level::INFO => "[INFO]",
                Level::WARN => "[WARN]",
                _ => "[ERROR]",
            }
        );
        if include_location && let Some((file, n)) = &self.location {
            let _ = write!(line, "{file}:{n}: ");
        }
        let _ = write!(line, "{}: {}", self.target, self.message);
        for (i, (k, v)) in self.fields.iter().enumerate() {
            line.push_str(if i == 0 { ": " } else { " " });
            let v = v.to_string();
            if needs_quotes(&v) {
                let _ = write!(line, "{k}={v:?}");
            } else {
                let _ = write!(line, "{k}={v}");
            }
        }
        line.push('\n');
        Bytes::from(line)
    }

    /// hclog's JSON object: `@level`, `@message`, `@module`, `@timestamp` (and `@caller`) and
    /// the fields, keys sorted as Go sorts a map's.
    fn render_json(&self, include_location: bool) -> Bytes {
        let mut obj: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in &self.fields {
            let v = match v {
                FieldValue::Str(s) => Value::from(s.as_str()),
                FieldValue::I64(n) => Value::from(*n),
                FieldValue::U64(n) => Value::from(*n),
                FieldValue::F64(n) => Value::from(*n),
                FieldValue::Bool(b) => Value::from(*b),
            };
            obj.insert(k.clone(), v);
        }
        obj.insert(
            "@level".to_owned(),
            Value::from(self.level.as_str().to_ascii_lowercase()),
        );
        obj.insert("@message".to_owned(), Value::from(self.message.as_str()));
        obj.insert("@module".to_owned(), Value::from(self.target.as_str()));
        obj.insert(
            "@timestamp".to_owned(),
            Value::from(self.time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        );
        if include_location && let Some((file, n)) = &self.location {
            obj.insert("@caller".to_owned(), Value::from(format!("{file}:{n}")));
        }
        let mut out = serde_json::to_vec(&obj).unwrap_or_default();
        out.push(b'\n');
        Bytes::from(out)
    }
}

fn needs_quotes(v: &str) -> bool {
    v.is_empty()
        || v.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control())
}

/// Collects an event's message and fields. Events bridged from the `log` crate carry their
/// origin in `log.*` fields: those become the module and location.
#[derive(Default)]
struct Visitor {
    message: String,
    fields: Vec<(String, FieldValue)>,
    log_target: Option<String>,
    log_file: Option<String>,
    log_line: Option<u32>,
}

impl Visitor {
    fn push(&mut self, field: &Field, value: FieldValue) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "log.target" => self.log_target = Some(value.to_string()),
            "log.file" => self.log_file = Some(value.to_string()),
            "log.line" => {
                if let FieldValue::U64(n) = value {
                    self.log_line = u32::try_from(n).ok();
                }
            }
            "log.module_path" => {}
            name => self.fields.push((name.to_owned(), value)),
        }
    }
}

impl Visit for Visitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, FieldValue::Str(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, FieldValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, FieldValue::Str(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, FieldValue::Str(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    fn options(level: LogLevel) -> MonitorOptions {
        MonitorOptions {
            level,
            ..MonitorOptions::default()
        }
    }

    fn drain(sub: &mut Subscription) -> String {
        let mut out = String::new();
        while let Ok(line) = sub.rx.try_recv() {
            out.push_str(&String::from_utf8_lossy(&line));
        }
        out
    }

    #[test]
    fn each_subscriber_gets_its_level() {
        let monitor = Monitor::new();
        let subscriber = tracing_subscriber::registry().with(monitor.layer());
        tracing::subscriber::with_default(subscriber, || {
            let mut debug = monitor.subscribe(options(LogLevel::Debug)).unwrap();
            let mut warn = monitor.subscribe(options(LogLevel::Warn)).unwrap();
            tracing::debug!(job_id = "web", count = 3, "job registered");
            tracing::warn!("disk almost full");
            tracing::trace!("too fine for anyone");
            let d = drain(&mut debug);
            let w = drain(&mut warn);
            assert!(d.contains("[DEBUG] caravan_telemetry::monitor::tests: job registered: job_id=web count=3\n"), "{d}");
            assert!(
                d.contains("[WARN]  caravan_telemetry::monitor::tests: disk almost full\n"),
                "{d}"
            );
            assert!(!d.contains("too fine"), "{d}");
            assert!(
                !w.contains("job registered") && w.contains("disk almost full"),
                "{w}"
            );
        });
    }

    #[test]
    fn enabled_follows_the_subscribers() {
        let monitor = Monitor::new();
        let subscriber = tracing_subscriber::registry().with(monitor.layer());
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::enabled!(Level::DEBUG));
            let sub = monitor.subscribe(options(LogLevel::Debug)).unwrap();
            assert!(tracing::enabled!(Level::DEBUG));
            assert!(!tracing::enabled!(Level::TRACE));
            drop(sub);
            assert!(!tracing::enabled!(Level::DEBUG));
        });
    }

    #[test]
    fn other_crates_are_capped_at_info() {
        let monitor = Monitor::new();
        let subscriber = tracing_subscriber::registry().with(monitor.layer());
        tracing::subscriber::with_default(subscriber, || {
            let mut sub = monitor.subscribe(options(LogLevel::Trace)).unwrap();
            tracing::debug!(target: "h2::codec", "frame sent");
            tracing::info!(target: "hyper::server", "listening");
            let out = drain(&mut sub);
            assert!(
                !out.contains("frame sent") && out.contains("listening"),
                "{out}"
            );
        });
    }

    #[test]
    fn json_lines_are_hclog_objects_with_caller() {
        let monitor = Monitor::new();
        let subscriber = tracing_subscriber::registry().with(monitor.layer());
        tracing::subscriber::with_default(subscriber, || {
            let mut sub = monitor
                .subscribe(MonitorOptions {
                    level: LogLevel::Info,
                    json: true,
                    include_location: true,
                })
                .unwrap();
            tracing::info!(node_id = "n1", ready = true, "node registered");
            let out = drain(&mut sub);
            let v: Value = serde_json::from_str(out.trim_end()).unwrap();
            assert_eq!(v["@level"], "info");
            assert_eq!(v["@message"], "node registered");
            assert_eq!(v["@module"], "caravan_telemetry::monitor::tests");
            assert_eq!(v["node_id"], "n1");
            assert_eq!(v["ready"], true);
            assert!(
                v["@caller"].as_str().unwrap().contains("monitor.rs:"),
                "{v}"
            );
            let ts = v["@timestamp"].as_str().unwrap();
            assert!(
                ts.ends_with('Z') && ts.len() == "2025-01-02T03:04:05.123456Z".len(),
                "{ts}"
            );
        });
    }

    #[test]
    fn text_quotes_values_with_spaces_and_shows_location() {
        let monitor = Monitor::new();
        let subscriber = tracing_subscriber::registry().with(monitor.layer());
        tracing::subscriber::with_default(subscriber, || {
            let mut sub = monitor
                .subscribe(MonitorOptions {
                    level: LogLevel::Info,
                    json: false,
                    include_location: true,
                })
                .unwrap();
            tracing::error!(reason = "no space left", "write failed");
            let out = drain(&mut sub);
            let (time, rest) = out.split_once(' ').unwrap();
            assert_eq!(time.len(), "2025-01-02T03:04:05.123Z".len(), "{out}");
            assert!(rest.starts_with("[ERROR] "), "{out}");
            assert!(rest.contains("monitor.rs:"), "{out}");
            assert!(
                rest.ends_with("write failed: reason=\"no space left\"\n"),
                "{out}"
            );
        });
    }

    #[tokio::test]
    async fn a_slow_reader_loses_lines_and_is_told_how_many() {
        let monitor = Monitor::new();
        let subscriber = tracing_subscriber::registry().with(monitor.layer());
        let mut sub = monitor.subscribe(options(LogLevel::Info)).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..SUBSCRIBER_BUFFER + 10 {
                tracing::info!(i, "line");
            }
        });
        let mut text = String::new();
        while let Ok(Some(batch)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), sub.next_batch()).await
        {
            text.push_str(&String::from_utf8_lossy(&batch));
        }
        assert_eq!(text.matches(": line: i=").count(), SUBSCRIBER_BUFFER);
        assert!(
            text.contains("monitor dropped log lines: the reader did not keep up: dropped=10\n"),
            "{text}"
        );
    }

    #[test]
    fn dropping_the_last_subscription_turns_the_layer_off() {
        let monitor = Monitor::new();
        let sub = monitor.subscribe(options(LogLevel::Trace)).unwrap();
        let info = monitor.subscribe(options(LogLevel::Info)).unwrap();
        assert_eq!(monitor.inner.max_rank.load(Ordering::Relaxed), 5);
        drop(sub);
        assert_eq!(monitor.inner.max_rank.load(Ordering::Relaxed), 3);
        drop(info);
        assert_eq!(monitor.inner.max_rank.load(Ordering::Relaxed), 0);
        assert_eq!(monitor.subscribers(), 0);
    }

    #[test]
    fn subscribers_are_bounded() {
        let monitor = Monitor::new();
        let subs: Vec<_> = (0..MAX_SUBSCRIBERS)
            .map(|_| monitor.subscribe(options(LogLevel::Info)).unwrap())
            .collect();
        assert_eq!(
            monitor.subscribe(options(LogLevel::Info)).unwrap_err(),
            MonitorError::TooManySubscribers(MAX_SUBSCRIBERS)
        );
        drop(subs);
        assert!(monitor.subscribe(options(LogLevel::Info)).is_ok());
    }

    #[test]
    fn off_sees_nothing() {
        let monitor = Monitor::new();
        let subscriber = tracing_subscriber::registry().with(monitor.layer());
        tracing::subscriber::with_default(subscriber, || {
            let mut sub = monitor.subscribe(options(LogLevel::Off)).unwrap();
            tracing::error!("bad");
            assert_eq!(drain(&mut sub), "");
        });
    }
}
