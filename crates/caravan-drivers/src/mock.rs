//! `mock_driver`: tasks that are timers inside the agent, for tests and large simulations.
//! Config (as Nomad's mock driver): `run_for` (how long the task runs; forever when absent),
//! `exit_code`, `exit_signal`, `exit_err_msg`, `start_error` (+ `start_error_recoverable`),
//! `start_block_for`, `stdout_string` (+ `stdout_repeat`, `stdout_repeat_duration`) written
//! to the task's stdout log, `kill_after` (the task is killed — SIGKILL — after that long),
//! `signal_error` (every signal fails with this message).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::logs::RotatingWriter;
use crate::{
    Driver, DriverError, DriverFingerprint, ExitResult, HandleState, LogSettings, TaskConfig,
    TaskHandle, config_duration,
};

pub const NAME: &str = "mock_driver";

#[derive(Default)]
pub struct MockDriver;

/// A mock task's plan, persisted so a restarted agent resumes its timers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockState {
    pub task_name: String,
    pub started_at_ms: u64,
    pub run_for_ms: Option<u64>,
    pub kill_after_ms: Option<u64>,
    pub exit_code: i32,
    pub exit_signal: i32,
    pub exit_err_msg: String,
    pub signal_error: String,
    pub stdout_string: String,
    pub stdout_repeat: u64,
    pub stdout_repeat_ms: u64,
    pub logs: Option<LogSettings>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn int(config: &serde_json::Map<String, serde_json::Value>, key: &str) -> Result<i64, DriverError> {
    match config.get(key) {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| DriverError::Config(format!("{key}: want an integer, got {n}"))),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| DriverError::Config(format!("{key}: want an integer, got {s:?}"))),
        Some(other) => Err(DriverError::Config(format!(
            "{key}: want an integer, got {other}"
        ))),
    }
}

fn string(config: &serde_json::Map<String, serde_json::Value>, key: &str) -> String {
    match config.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn millis(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_millis() as u64)
}

struct Plan {
    state: MockState,
    start_error: Option<(String, bool)>,
    start_block_for: Option<Duration>,
}

fn plan(task: &TaskConfig) -> Result<Plan, DriverError> {
    let c = &task.config;
    let start_error = string(c, "start_error");
    Ok(Plan {
        state: MockState {
            task_name: task.task_name.clone(),
            started_at_ms: now_ms(),
            run_for_ms: millis(config_duration(c, "run_for")?),
            kill_after_ms: millis(config_duration(c, "kill_after")?),
            exit_code: i32::try_from(int(c, "exit_code")?)
                .map_err(|_| DriverError::Config("exit_code out of range".to_owned()))?,
            exit_signal: i32::try_from(int(c, "exit_signal")?)
                .map_err(|_| DriverError::Config("exit_signal out of range".to_owned()))?,
            exit_err_msg: string(c, "exit_err_msg"),
            signal_error: string(c, "signal_error"),
            stdout_string: string(c, "stdout_string"),
            stdout_repeat: u64::try_from(int(c, "stdout_repeat")?).unwrap_or(0),
            stdout_repeat_ms: millis(config_duration(c, "stdout_repeat_duration")?).unwrap_or(0),
            logs: (!task.logs.disabled).then(|| task.logs.clone()),
        },
        start_error: (!start_error.is_empty()).then(|| {
            let recoverable = matches!(
                c.get("start_error_recoverable"),
                Some(serde_json::Value::Bool(true))
            );
            (start_error, recoverable)
        }),
        start_block_for: config_duration(c, "start_block_for")?,
    })
}

impl Driver for MockDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fingerprint(&self) -> DriverFingerprint {
        let mut fp = DriverFingerprint::healthy(NAME);
        fp.attributes
            .insert("driver.mock".to_owned(), "true".to_owned());
        fp
    }

    fn validate(
        &self,
        config: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), DriverError> {
        config_duration(config, "run_for")?;
        config_duration(config, "kill_after")?;
        config_duration(config, "start_block_for")?;
        config_duration(config, "stdout_repeat_duration")?;
        int(config, "exit_code")?;
        int(config, "exit_signal")?;
        int(config, "stdout_repeat")?;
        Ok(())
    }

    fn start(&self, task: TaskConfig) -> BoxFuture<'_, Result<Arc<dyn TaskHandle>, DriverError>> {
        async move {
            let plan = plan(&task)?;
            if let Some(d) = plan.start_block_for {
                tokio::time::sleep(d).await;
            }
            if let Some((message, _recoverable)) = plan.start_error {
                return Err(DriverError::Start(message));
            }
            let mut state = plan.state;
            state.started_at_ms = now_ms();
            Ok(MockHandle::spawn(state, true) as Arc<dyn TaskHandle>)
        }
        .boxed()
    }

    fn recover(&self, state: &HandleState) -> Result<Arc<dyn TaskHandle>, DriverError> {
        let state: MockState = serde_json::from_value(state.state.clone())
            .map_err(|e| DriverError::Recover(format!("unreadable mock_driver handle: {e}")))?;
        Ok(MockHandle::spawn(state, false) as Arc<dyn TaskHandle>)
    }
}

/// A mock task: a timer and a channel of signals.
pub struct MockHandle {
    state: MockState,
    exit: watch::Receiver<Option<ExitResult>>,
    exit_tx: Arc<watch::Sender<Option<ExitResult>>>,
    signals: Mutex<Vec<i32>>,
}

impl MockHandle {
    fn spawn(state: MockState, fresh: bool) -> Arc<MockHandle> {
        let (tx, rx) = watch::channel(None);
        let handle = Arc::new(MockHandle {
            state: state.clone(),
            exit: rx,
            exit_tx: Arc::new(tx),
            signals: Mutex::new(Vec::new()),
        });
        let tx = handle.exit_tx.clone();
        tokio::spawn(async move {
            if fresh {
                write_stdout(&state).await;
            }
            let elapsed = Duration::from_millis(now_ms().saturating_sub(state.started_at_ms));
            let left =
                |ms: Option<u64>| ms.map(|ms| Duration::from_millis(ms).saturating_sub(elapsed));
            let run_for = left(state.run_for_ms);
            let kill_after = left(state.kill_after_ms);
            let result = match (run_for, kill_after) {
                (Some(r), Some(k)) if k < r => killed_after(k).await,
                (None, Some(k)) => killed_after(k).await,
                (Some(r), _) => {
                    tokio::time::sleep(r).await;
                    ExitResult {
                        exit_code: state.exit_code,
                        signal: state.exit_signal,
                        oom_killed: false,
                        error: (!state.exit_err_msg.is_empty()).then(|| state.exit_err_msg.clone()),
                    }
                }
                (None, None) => {
                    // Runs until signalled or killed.
                    tx.closed().await;
                    return;
                }
            };
            let _ = tx.send_if_modified(|slot| {
                if slot.is_none() {
                    *slot = Some(result);
                    true
                } else {
                    false
                }
            });
        });
        handle
    }

    /// The signals the task received, oldest first.
    pub fn received_signals(&self) -> Vec<i32> {
        self.signals.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn finish(&self, result: ExitResult) {
        self.exit_tx.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(result);
                true
            } else {
                false
            }
        });
    }
}

async fn killed_after(d: Duration) -> ExitResult {
    tokio::time::sleep(d).await;
    ExitResult {
        exit_code: 137,
        signal: Signal::SIGKILL as i32,
        oom_killed: false,
        error: None,
    }
}

async fn write_stdout(state: &MockState) {
    let Some(logs) = state.logs.clone() else {
        return;
    };
    if state.stdout_string.is_empty() {
        return;
    }
    let repeat = state.stdout_repeat.max(1);
    let mut writer = match RotatingWriter::open(
        &logs.dir,
        &state.task_name,
        "stdout",
        logs.max_files,
        logs.max_file_bytes,
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "mock_driver cannot open its stdout log");
            return;
        }
    };
    for i in 0..repeat {
        if i > 0 && state.stdout_repeat_ms > 0 {
            tokio::time::sleep(Duration::from_millis(state.stdout_repeat_ms)).await;
        }
        if writer
            .write_all(state.stdout_string.as_bytes())
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
}

impl TaskHandle for MockHandle {
    fn state(&self) -> HandleState {
        HandleState {
            driver: NAME.to_owned(),
            state: serde_json::to_value(&self.state).unwrap_or_default(),
        }
    }

    fn wait(&self) -> BoxFuture<'static, ExitResult> {
        let mut rx = self.exit.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(r) => r.clone().unwrap_or_default(),
                Err(_) => ExitResult::default(),
            }
        }
        .boxed()
    }

    fn signal(&self, signal: i32) -> Result<(), DriverError> {
        if self.exit.borrow().is_some() {
            return Err(DriverError::NotRunning);
        }
        if !self.state.signal_error.is_empty() {
            return Err(DriverError::Other(self.state.signal_error.clone()));
        }
        if let Ok(mut s) = self.signals.lock() {
            s.push(signal);
        }
        let terminating = [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGKILL,
            Signal::SIGQUIT,
        ]
        .iter()
        .any(|s| *s as i32 == signal);
        if terminating {
            self.finish(ExitResult {
                exit_code: 0,
                signal,
                oom_killed: false,
                error: None,
            });
        }
        Ok(())
    }

    fn kill(&self) -> Result<(), DriverError> {
        self.finish(ExitResult {
            exit_code: 137,
            signal: Signal::SIGKILL as i32,
            oom_killed: false,
            error: None,
        });
        Ok(())
    }
}
