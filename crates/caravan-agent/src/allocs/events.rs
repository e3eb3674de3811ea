//! Task events and states as Nomad shows them (NOMAD-BEHAVIOR 7.3, 7.4): typed fields filled,
//! `DisplayMessage` derived, at most the latest 10 events per task.

use std::time::{Duration, SystemTime};

use caravan_structs::time::format_go_duration;
use caravan_structs::{TaskEvent, TaskState, Time, task_event};

/// Events kept per task.
pub const MAX_EVENTS: usize = 10;

pub const STATE_PENDING: &str = "pending";
pub const STATE_RUNNING: &str = "running";
pub const STATE_DEAD: &str = "dead";

pub fn now_nanos() -> i64 {
    Time::from_system_time(SystemTime::now()).unix_nanos()
}

pub fn now() -> Time {
    Time::from_system_time(SystemTime::now())
}

pub fn event(kind: &str) -> TaskEvent {
    TaskEvent {
        r#type: kind.to_owned(),
        time: now_nanos(),
        details: Some(Default::default()),
        ..TaskEvent::default()
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

pub fn received() -> TaskEvent {
    event(task_event::RECEIVED)
}

pub fn setup(message: &str) -> TaskEvent {
    let mut e = event(task_event::TASK_SETUP);
    e.message = message.to_owned();
    e.details = Some([("message".to_owned(), message.to_owned())].into());
    e
}

pub fn started() -> TaskEvent {
    event(task_event::STARTED)
}

pub fn driver_failure(error: &str) -> TaskEvent {
    let mut e = event(task_event::DRIVER_FAILURE);
    e.driver_error = error.to_owned();
    e.details = Some([("driver_error".to_owned(), error.to_owned())].into());
    e
}

pub fn setup_failure(error: &str) -> TaskEvent {
    let mut e = event(task_event::SETUP_FAILURE);
    e.setup_error = error.to_owned();
    e.details = Some([("setup_error".to_owned(), error.to_owned())].into());
    e.fails_task = true;
    e
}

pub fn terminated(exit_code: i32, signal: i32, message: &str) -> TaskEvent {
    let mut e = event(task_event::TERMINATED);
    e.exit_code = i64::from(exit_code);
    e.signal = i64::from(signal);
    e.message = message.to_owned();
    e.details = Some(
        [
            ("exit_code".to_owned(), exit_code.to_string()),
            ("signal".to_owned(), signal.to_string()),
            ("oom_killed".to_owned(), "false".to_owned()),
            ("exit_message".to_owned(), message.to_owned()),
        ]
        .into(),
    );
    e
}

pub fn killing(timeout: Duration, reason: &str) -> TaskEvent {
    let mut e = event(task_event::KILLING);
    e.kill_timeout = nanos(timeout);
    e.kill_reason = reason.to_owned();
    e.details = Some(
        [(
            "kill_timeout".to_owned(),
            format_go_duration(nanos(timeout)),
        )]
        .into(),
    );
    e
}

pub fn killed(error: &str) -> TaskEvent {
    let mut e = event(task_event::KILLED);
    e.kill_error = error.to_owned();
    e
}

pub fn restarting(delay: Duration, reason: &str) -> TaskEvent {
    let mut e = event(task_event::RESTARTING);
    e.start_delay = nanos(delay);
    e.restart_reason = reason.to_owned();
    e.details = Some(
        [
            ("start_delay".to_owned(), nanos(delay).to_string()),
            ("restart_reason".to_owned(), reason.to_owned()),
        ]
        .into(),
    );
    e
}

pub fn not_restarting(reason: &str) -> TaskEvent {
    let mut e = event(task_event::NOT_RESTARTING);
    e.restart_reason = reason.to_owned();
    e.fails_task = true;
    e.details = Some(
        [
            ("restart_reason".to_owned(), reason.to_owned()),
            ("fails_task".to_owned(), "true".to_owned()),
        ]
        .into(),
    );
    e
}

pub fn restart_signaled(reason: &str) -> TaskEvent {
    let mut e = event(task_event::RESTART_SIGNAL);
    e.restart_reason = reason.to_owned();
    e
}

pub fn signaling(signal_name: &str, reason: &str) -> TaskEvent {
    let mut e = event(task_event::SIGNALING);
    e.task_signal = signal_name.to_owned();
    e.task_signal_reason = reason.to_owned();
    e.details = Some(
        [
            ("signal".to_owned(), signal_name.to_owned()),
            ("reason".to_owned(), reason.to_owned()),
        ]
        .into(),
    );
    e
}

pub fn sibling_failed(sibling: &str) -> TaskEvent {
    let mut e = event(task_event::SIBLING_FAILED);
    e.failed_sibling = sibling.to_owned();
    e.details = Some([("failed_sibling".to_owned(), sibling.to_owned())].into());
    e
}

pub fn leader_dead() -> TaskEvent {
    event(task_event::LEADER_DEAD)
}

pub fn main_tasks_dead() -> TaskEvent {
    event(task_event::MAIN_DEAD)
}

pub fn waiting_shutdown_delay(delay: Duration) -> TaskEvent {
    let mut e = event(task_event::WAITING_SHUTDOWN_DELAY);
    e.message = format!(
        "Waiting for shutdown_delay of {} before killing the task.",
        format_go_duration(nanos(delay))
    );
    e
}

/// A fresh task state: `pending` with no events.
pub fn new_state() -> TaskState {
    TaskState {
        state: STATE_PENDING.to_owned(),
        events: Some(Vec::new()),
        ..TaskState::default()
    }
}

/// Appends an event, keeping the latest [`MAX_EVENTS`].
pub fn push(state: &mut TaskState, mut e: TaskEvent) {
    e.populate_display_message();
    let events = state.events.get_or_insert_with(Vec::new);
    events.push(e);
    if events.len() > MAX_EVENTS {
        let extra = events.len() - MAX_EVENTS;
        events.drain(..extra);
    }
}

/// Moves a task to `running`/`dead`/`pending`, stamping the times Nomad stamps.
pub fn set_state(state: &mut TaskState, new: &str, failed: bool) {
    match new {
        STATE_RUNNING if state.started_at.is_zero() => state.started_at = now(),
        STATE_DEAD => {
            state.finished_at = now();
            state.failed = state.failed || failed;
        }
        _ => {}
    }
    state.state = new.to_owned();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_ten_events_with_display_messages() {
        let mut s = new_state();
        for i in 0..12 {
            push(&mut s, terminated(i, 0, ""));
        }
        let events = s.events.clone().unwrap_or_default();
        assert_eq!(events.len(), 10);
        assert_eq!(events[0].exit_code, 2);
        assert_eq!(events[9].display_message, "Exit Code: 11");
        let mut s = new_state();
        push(&mut s, killing(Duration::from_secs(5), ""));
        assert_eq!(
            s.events.unwrap_or_default()[0].display_message,
            "Sent interrupt. Waiting 5s before force killing"
        );
    }

    #[test]
    fn times_follow_the_state() {
        let mut s = new_state();
        set_state(&mut s, STATE_RUNNING, false);
        let started = s.started_at;
        assert!(!started.is_zero());
        set_state(&mut s, STATE_RUNNING, false);
        assert_eq!(s.started_at, started);
        set_state(&mut s, STATE_DEAD, true);
        assert!(s.failed && !s.finished_at.is_zero());
    }
}
