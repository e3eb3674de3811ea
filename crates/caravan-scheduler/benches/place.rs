//! Placement benchmark: a 5,000-node cluster already running 19 jobs × 5,000 allocations,
//! then one eval placing a 20th job of 5,000 (and, for comparison, the same job on an empty
//! cluster). Prints wall times; run with `cargo bench -p caravan-scheduler --features testing`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use caravan_scheduler::testing::{Harness, mock_alloc, mock_eval, mock_job, mock_node};
use caravan_scheduler::{
    Plan, PlanResult, Planner, SchedContext, SchedulerError, State, process_eval,
};
use caravan_structs::{Evaluation, Job, Resources};

const NODES: usize = 5_000;
const COUNT: i64 = 5_000;
const EXISTING_JOBS: usize = 19;

/// Times the plan applier separately from the scheduler.
struct Timed<'h> {
    h: &'h mut Harness,
    apply: Duration,
}

impl Planner for Timed<'_> {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedulerError> {
        let start = Instant::now();
        let r = self.h.submit_plan(plan);
        self.apply += start.elapsed();
        r
    }
    fn update_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.h.update_eval(eval)
    }
    fn create_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.h.create_eval(eval)
    }
    fn reblock_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.h.reblock_eval(eval)
    }
}

fn small_job(id: &str) -> Job {
    let mut job = mock_job(id);
    for tg in job.task_groups.iter_mut().flatten() {
        tg.count = COUNT;
        for t in tg.tasks.iter_mut().flatten() {
            t.resources = Some(Resources {
                cpu: 100,
                memory_mb: 128,
                ..Resources::default()
            });
        }
    }
    job
}

fn run(h: &mut Harness, label: &str) {
    let job = h.state.upsert_job(small_job("bench"));
    let eval = mock_eval(&job, "bench-eval");
    let snapshot = h.snapshot();
    let mut ctx = SchedContext::new(h.now, 7);
    let mut timed = Timed {
        h,
        apply: Duration::ZERO,
    };
    let start = Instant::now();
    process_eval(&eval, snapshot, &mut timed, &mut ctx).unwrap();
    let total = start.elapsed();
    let apply = timed.apply;
    let placed = h.live_allocs("default", "bench").len();
    assert_eq!(placed, COUNT as usize, "{label}: placed");
    println!(
        "{label}: placed {placed} allocs on {NODES} nodes in {:.1} ms (scheduler {:.1} ms, harness plan apply {:.1} ms)",
        total.as_secs_f64() * 1e3,
        (total - apply).as_secs_f64() * 1e3,
        apply.as_secs_f64() * 1e3,
    );
}

fn main() {
    let mut empty = Harness::new();
    for i in 0..NODES {
        empty.state.upsert_node(mock_node(&format!("node-{i:05}")));
    }
    let mut busy = Harness::new();
    let nodes: Vec<_> = (0..NODES)
        .map(|i| mock_node(&format!("node-{i:05}")))
        .collect();
    for n in &nodes {
        busy.state.upsert_node(n.clone());
    }
    for j in 0..EXISTING_JOBS {
        let job = busy
            .state
            .upsert_job(small_job(&format!("existing-{j:02}")));
        for i in 0..COUNT as usize {
            let node = &nodes[(i + j * 263) % NODES];
            let a = mock_alloc(&job, node, i as u64, &format!("{j:02}-{i:05}-alloc"));
            busy.state.upsert_alloc(a);
        }
    }
    run(&mut empty, "empty cluster");
    run(&mut busy, "cluster with 95,000 allocs");
}
