//! Property sets: how many live allocations of a job (or one of its groups) sit on nodes with
//! each value of a node property. `distinct_property` constraints limit the count per value;
//! spread blocks score against it. Existing allocations are counted once from the state; the
//! plan's changes are replayed incrementally from the context's plan log.

use std::collections::{BTreeSet, HashMap};

use caravan_structs::Node;

use crate::context::EvalContext;
use crate::feasible::resolve_target;

/// Collapses spread values that are not explicit targets into this one.
const IMPLICIT_TARGET: &str = "*";

#[derive(Debug, Clone)]
pub struct PropertySet {
    /// The property, e.g. `${meta.rack}`.
    pub attribute: String,
    task_group: Option<String>,
    /// How many allocations may share a value (`distinct_property`'s `RTarget`, default 1).
    pub allowed: u64,
    /// Explicit spread targets; other values count as `*`.
    target_values: BTreeSet<String>,
    error: Option<String>,
    /// Value → live allocations, existing ones plus the plan's net changes.
    counts: HashMap<String, i64>,
    cursor: usize,
}

impl PropertySet {
    /// A set for a `distinct_property` constraint (job-level when `task_group` is `None`).
    pub fn for_distinct(
        ctx: &EvalContext<'_, '_>,
        attribute: &str,
        r_target: &str,
        task_group: Option<&str>,
    ) -> PropertySet {
        let mut error = None;
        let allowed = if r_target.is_empty() {
            1
        } else {
            match r_target.parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    error = Some(format!(
                        "failed to convert RTarget {r_target:?} to uint64: strconv.ParseUint: parsing {r_target:?}: invalid syntax"
                    ));
                    0
                }
            }
        };
        let mut p = PropertySet::new(attribute, task_group, allowed, BTreeSet::new());
        p.error = error;
        p.populate(ctx);
        p
    }

    /// A set for a spread block over a group.
    pub fn for_spread(
        ctx: &EvalContext<'_, '_>,
        attribute: &str,
        task_group: &str,
        targets: BTreeSet<String>,
    ) -> PropertySet {
        let mut p = PropertySet::new(attribute, Some(task_group), 0, targets);
        p.populate(ctx);
        p
    }

    fn new(
        attribute: &str,
        task_group: Option<&str>,
        allowed: u64,
        target_values: BTreeSet<String>,
    ) -> PropertySet {
        PropertySet {
            attribute: attribute.to_owned(),
            task_group: task_group.map(str::to_owned),
            allowed,
            target_values,
            error: None,
            counts: HashMap::new(),
            cursor: 0,
        }
    }

    fn targeted<'v>(&self, value: &'v str) -> &'v str {
        if self.target_values.is_empty() || self.target_values.contains(value) {
            value
        } else {
            IMPLICIT_TARGET
        }
    }

    fn count_on(&mut self, node: Option<&Node>, delta: i64) {
        let Some(node) = node else { return };
        let Some(value) = resolve_target(&self.attribute, node) else {
            return;
        };
        let key = self.targeted(value).to_owned();
        *self.counts.entry(key).or_insert(0) += delta;
    }

    fn populate(&mut self, ctx: &EvalContext<'_, '_>) {
        if self.error.is_some() {
            return;
        }
        for a in ctx.state.allocs_by_job(&ctx.namespace, &ctx.job_id) {
            if a.terminal_status() {
                continue;
            }
            if self.task_group.as_ref().is_some_and(|g| *g != a.task_group) {
                continue;
            }
            self.count_on(ctx.state.node(&a.node_id), 1);
        }
        self.catch_up(ctx);
    }

    /// Applies the plan changes made since the last call.
    pub fn catch_up(&mut self, ctx: &EvalContext<'_, '_>) {
        if self.error.is_some() {
            self.cursor = ctx.plan_log.len();
            return;
        }
        while self.cursor < ctx.plan_log.len() {
            let ev = &ctx.plan_log[self.cursor];
            self.cursor += 1;
            if self
                .task_group
                .as_ref()
                .is_some_and(|g| *g != ev.task_group)
            {
                continue;
            }
            self.count_on(ctx.state.node(&ev.node_id), i64::from(ev.delta));
        }
    }

    /// Value → live allocations (never below zero).
    pub fn combined(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts
            .iter()
            .map(|(k, v)| (k.as_str(), u64::try_from(*v).unwrap_or(0)))
    }

    /// The node's (targeted) value and how many allocations use it; the error text when the
    /// set is broken or the node lacks the property.
    pub fn used_count(&self, node: &Node) -> Result<(String, u64), String> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Some(value) = resolve_target(&self.attribute, node) else {
            return Err(format!("missing property {:?}", self.attribute));
        };
        let value = self.targeted(value);
        let used = self
            .counts
            .get(value)
            .map_or(0, |n| u64::try_from(*n).unwrap_or(0));
        Ok((value.to_owned(), used))
    }

    /// `distinct_property`: whether one more allocation may go on the node, the filter
    /// reason when not.
    pub fn satisfies_distinct(&self, node: &Node) -> Result<(), String> {
        let (value, used) = self.used_count(node)?;
        if used < self.allowed {
            Ok(())
        } else {
            Err(format!(
                "distinct_property: {}={value} used by {used} allocs",
                self.attribute
            ))
        }
    }
}
