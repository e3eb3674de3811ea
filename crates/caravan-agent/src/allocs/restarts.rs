//! The restart policy of one task (Nomad's restart tracker): how many restarts an interval
//! allows, the delay before each (with up to 25% jitter), and what `mode` does once the
//! attempts are used up.

use std::time::{Duration, Instant};

use caravan_structs::RestartPolicy;
use caravan_structs::time::format_go_duration;

pub const REASON_WITHIN_POLICY: &str = "Restart within policy";
pub const REASON_UNRECOVERABLE: &str = "Error was unrecoverable";
pub const REASON_DELAY: &str = "Exceeded allowed attempts, applying a delay";

/// What happens after a task exited or failed to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start again after the delay; the reason goes into the `Restarting` event.
    Restart { delay: Duration, reason: String },
    /// Dead for good and the allocation fails (`Not Restarting`).
    Fail { reason: String },
    /// Dead, successfully: nothing more to do.
    Done,
}

#[derive(Debug, Clone)]
pub struct RestartTracker {
    policy: RestartPolicy,
    /// Whether a successful exit ends the task (batch jobs, lifecycle hooks) rather than
    /// counting as a restart (service and system jobs run forever).
    done_on_success: bool,
    window_start: Option<Instant>,
    count: i64,
}

/// How the task ended, as the tracker needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Exited { success: bool },
    StartFailed { recoverable: bool },
}

impl RestartTracker {
    pub fn new(policy: RestartPolicy, done_on_success: bool) -> RestartTracker {
        RestartTracker {
            policy,
            done_on_success,
            window_start: None,
            count: 0,
        }
    }

    pub fn decide(&mut self, outcome: Outcome, now: Instant, jitter: f64) -> Decision {
        match outcome {
            Outcome::Exited { success: true } if self.done_on_success => return Decision::Done,
            Outcome::StartFailed { recoverable: false } => {
                return Decision::Fail {
                    reason: REASON_UNRECOVERABLE.to_owned(),
                };
            }
            _ => {}
        }
        let interval = Duration::from_nanos(self.policy.interval.max(0) as u64);
        let window_start = *self.window_start.get_or_insert(now);
        if !interval.is_zero() && now.duration_since(window_start) > interval {
            self.window_start = Some(now);
            self.count = 0;
        }
        if self.count < self.policy.attempts {
            self.count += 1;
            let base = Duration::from_nanos(self.policy.delay.max(0) as u64);
            let extra = base.mul_f64(0.25 * jitter.clamp(0.0, 1.0));
            return Decision::Restart {
                delay: base + extra,
                reason: REASON_WITHIN_POLICY.to_owned(),
            };
        }
        let mode = if self.policy.mode == "delay" {
            "delay"
        } else {
            "fail"
        };
        let exceeded = format!(
            "Exceeded allowed attempts {} in interval {} and mode is {mode:?}",
            self.policy.attempts,
            format_go_duration(self.policy.interval)
        );
        if mode == "fail" {
            return Decision::Fail { reason: exceeded };
        }
        // `delay`: wait out the rest of the interval, then a fresh window.
        let start = self.window_start.unwrap_or(now);
        let left = interval.saturating_sub(now.duration_since(start));
        self.window_start = Some(now + left);
        self.count = 0;
        Decision::Restart {
            delay: left.max(Duration::from_nanos(self.policy.delay.max(0) as u64)),
            reason: exceeded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: i64, mode: &str) -> RestartPolicy {
        RestartPolicy {
            attempts,
            delay: 1_000_000_000,
            interval: 60_000_000_000,
            mode: mode.to_owned(),
            render_templates: false,
        }
    }

    #[test]
    fn restarts_within_attempts_then_fails() {
        let mut t = RestartTracker::new(policy(2, "fail"), false);
        let now = Instant::now();
        let fail = Outcome::Exited { success: false };
        for _ in 0..2 {
            assert_eq!(
                t.decide(fail, now, 0.0),
                Decision::Restart {
                    delay: Duration::from_secs(1),
                    reason: REASON_WITHIN_POLICY.to_owned()
                }
            );
        }
        assert_eq!(
            t.decide(fail, now, 0.0),
            Decision::Fail {
                reason: "Exceeded allowed attempts 2 in interval 1m0s and mode is \"fail\""
                    .to_owned()
            }
        );
    }

    #[test]
    fn the_window_resets_after_the_interval() {
        let mut t = RestartTracker::new(policy(1, "fail"), false);
        let now = Instant::now();
        let fail = Outcome::Exited { success: false };
        assert!(matches!(t.decide(fail, now, 0.0), Decision::Restart { .. }));
        let later = now + Duration::from_secs(61);
        assert!(matches!(
            t.decide(fail, later, 0.0),
            Decision::Restart { .. }
        ));
        assert!(matches!(t.decide(fail, later, 0.0), Decision::Fail { .. }));
    }

    #[test]
    fn delay_mode_waits_out_the_interval() {
        let mut t = RestartTracker::new(policy(0, "delay"), false);
        let now = Instant::now();
        match t.decide(Outcome::Exited { success: false }, now, 0.0) {
            Decision::Restart { delay, reason } => {
                assert_eq!(delay, Duration::from_secs(60));
                assert!(reason.contains("\"delay\""), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn success_ends_batch_tasks_and_restarts_services() {
        let now = Instant::now();
        let ok = Outcome::Exited { success: true };
        assert_eq!(
            RestartTracker::new(policy(2, "fail"), true).decide(ok, now, 0.0),
            Decision::Done
        );
        assert!(matches!(
            RestartTracker::new(policy(2, "fail"), false).decide(ok, now, 0.0),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn unrecoverable_start_failures_do_not_restart_and_jitter_is_bounded() {
        let now = Instant::now();
        let mut t = RestartTracker::new(policy(5, "fail"), false);
        assert_eq!(
            t.decide(Outcome::StartFailed { recoverable: false }, now, 0.5),
            Decision::Fail {
                reason: REASON_UNRECOVERABLE.to_owned()
            }
        );
        match t.decide(Outcome::StartFailed { recoverable: true }, now, 1.0) {
            Decision::Restart { delay, .. } => assert_eq!(delay, Duration::from_millis(1250)),
            other => panic!("{other:?}"),
        }
    }
}
