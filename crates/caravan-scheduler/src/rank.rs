//! Ranking pieces shared by the stacks: the `AllocMetric` recorder (filters, exhaustion,
//! top-K node scores), and the affinity and spread scores.

use std::collections::{BTreeMap, HashMap};

use caravan_structs::{Affinity, AllocMetric, Node, NodeScoreMeta, Spread, TaskGroup};

use crate::feasible::{ConstraintCache, resolve_target};
use crate::propertyset::PropertySet;

/// How many of the best-scored nodes a placement's metrics keep.
pub const MAX_RETAINED_NODE_SCORES: usize = 5;

pub const SCORER_BINPACK: &str = "binpack";
pub const SCORER_JOB_ANTI_AFFINITY: &str = "job-anti-affinity";
pub const SCORER_RESCHEDULE_PENALTY: &str = "node-reschedule-penalty";
pub const SCORER_NODE_AFFINITY: &str = "node-affinity";
pub const SCORER_SPREAD: &str = "allocation-spread";

/// The scores of one ranked node.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScoreRow {
    pub binpack: f64,
    pub anti_affinity: f64,
    pub reschedule_penalty: f64,
    pub affinity: f64,
    /// Only recorded when non-zero.
    pub spread: Option<f64>,
    pub norm: f64,
}

/// Builds the `AllocMetric` of one placement attempt. Scores are kept as plain rows and
/// only the retained best ones become `NodeScoreMeta`s.
#[derive(Debug, Default)]
pub struct MetricRecorder<'s> {
    pub metric: AllocMetric,
    /// Best first; the flag says whether the generic scorers ran.
    top: Vec<(&'s str, ScoreRow, bool)>,
}

impl<'s> MetricRecorder<'s> {
    pub fn evaluated(&mut self) {
        self.metric.nodes_evaluated += 1;
    }

    /// A node failed a feasibility check (`reason` is the constraint or check).
    pub fn filter(&mut self, node: &Node, reason: &str) {
        let m = &mut self.metric;
        m.nodes_filtered += 1;
        if !node.node_class.is_empty() {
            *m.class_filtered
                .get_or_insert_with(BTreeMap::new)
                .entry(node.node_class.clone())
                .or_insert(0) += 1;
        }
        if !reason.is_empty() {
            *m.constraint_filtered
                .get_or_insert_with(BTreeMap::new)
                .entry(reason.to_owned())
                .or_insert(0) += 1;
        }
    }

    /// A feasible node had no room (`dimension` as `allocs_fit` names it).
    pub fn exhausted(&mut self, node: &Node, dimension: &str) {
        let m = &mut self.metric;
        m.nodes_exhausted += 1;
        if !node.node_class.is_empty() {
            *m.class_exhausted
                .get_or_insert_with(BTreeMap::new)
                .entry(node.node_class.clone())
                .or_insert(0) += 1;
        }
        if !dimension.is_empty() {
            *m.dimension_exhausted
                .get_or_insert_with(BTreeMap::new)
                .entry(dimension.to_owned())
                .or_insert(0) += 1;
        }
    }

    /// A ranked node's scores; the best few are kept, highest first.
    pub fn scored(&mut self, node_id: &'s str, row: ScoreRow, generic: bool) {
        let pos = self
            .top
            .iter()
            .position(|(_, r, _)| r.norm < row.norm)
            .unwrap_or(self.top.len());
        if pos < MAX_RETAINED_NODE_SCORES {
            self.top.insert(pos, (node_id, row, generic));
            self.top.truncate(MAX_RETAINED_NODE_SCORES);
        }
    }

    /// The finished metric.
    pub fn finish(mut self, allocation_time: i64) -> AllocMetric {
        self.metric.allocation_time = allocation_time;
        if !self.top.is_empty() {
            let metas = self
                .top
                .iter()
                .map(|(id, row, generic)| {
                    let mut scores = BTreeMap::from([(SCORER_BINPACK.to_owned(), row.binpack)]);
                    if *generic {
                        scores.insert(SCORER_JOB_ANTI_AFFINITY.to_owned(), row.anti_affinity);
                        scores.insert(SCORER_RESCHEDULE_PENALTY.to_owned(), row.reschedule_penalty);
                        scores.insert(SCORER_NODE_AFFINITY.to_owned(), row.affinity);
                        if let Some(s) = row.spread {
                            scores.insert(SCORER_SPREAD.to_owned(), s);
                        }
                    }
                    NodeScoreMeta {
                        node_id: (*id).to_owned(),
                        norm_score: row.norm,
                        scores: Some(scores),
                    }
                })
                .collect();
            self.metric.score_meta_data = Some(metas);
        }
        self.metric
    }
}

/// Adds the group's asks to a failed placement's metric (Nomad's `ExhaustResources`): the
/// cpu and memory of each task, when those dimensions ran out.
pub fn exhaust_resources(metric: &mut AllocMetric, tg: &TaskGroup) {
    let Some(dims) = &metric.dimension_exhausted else {
        return;
    };
    let (mem, cpu) = (
        dims.get("memory").is_some_and(|n| *n > 0),
        dims.get("cpu").is_some_and(|n| *n > 0),
    );
    let exhausted = metric.resources_exhausted.get_or_insert_with(BTreeMap::new);
    for t in tg.tasks.iter().flatten() {
        let e = exhausted.entry(t.name.clone()).or_default();
        let r = t.resources.clone().unwrap_or_default();
        if mem {
            e.memory_mb += r.memory_mb;
        }
        if cpu {
            e.cpu += r.cpu;
        }
    }
}

/// The normalised affinity score of a node: matched weights over the sum of |weights|.
pub fn affinity_score(cache: &mut ConstraintCache, affinities: &[Affinity], node: &Node) -> f64 {
    let sum: f64 = affinities.iter().map(|a| f64::from(a.weight).abs()).sum();
    if sum == 0.0 {
        return 0.0;
    }
    let matched: f64 = affinities
        .iter()
        .filter(|a| {
            let l = resolve_target(&a.l_target, node);
            let r = resolve_target(&a.r_target, node);
            cache.check(&a.operand, l, r)
        })
        .map(|a| f64::from(a.weight))
        .sum();
    matched / sum
}

/// One spread block of a group: its weight and the desired count per target value.
#[derive(Debug, Clone)]
pub struct SpreadInfo {
    pub weight: f64,
    /// Empty: spread evenly.
    pub desired: HashMap<String, f64>,
}

impl SpreadInfo {
    pub fn new(spread: &Spread, count: i64) -> SpreadInfo {
        let total = count as f64;
        let mut desired = HashMap::new();
        let mut sum = 0.0;
        for t in spread.spread_target.iter().flatten() {
            let d = f64::from(t.percent) / 100.0 * total;
            desired.insert(t.value.clone(), d);
            sum += d;
        }
        if sum > 0.0 && sum < total {
            desired.insert("*".to_owned(), total - sum);
        }
        SpreadInfo {
            weight: f64::from(spread.weight),
            desired,
        }
    }
}

/// The spread score of one more allocation on `node` (Nomad's `SpreadIterator`).
/// `lowest_boost` carries the most negative boost seen so far, given to values whose
/// desired count is zero.
pub fn spread_score(
    spreads: &[(SpreadInfo, PropertySet)],
    weight_sum: f64,
    lowest_boost: &mut f64,
    node: &Node,
) -> f64 {
    let mut total = 0.0;
    for (info, pset) in spreads {
        let (value, used) = match pset.used_count(node) {
            Ok(v) => v,
            Err(_) => {
                total -= 1.0;
                continue;
            }
        };
        let used = used + 1;
        if info.desired.is_empty() {
            total += even_spread_boost(pset, node);
            continue;
        }
        let Some(desired) = info.desired.get(&value).or_else(|| info.desired.get("*")) else {
            total -= 1.0;
            continue;
        };
        let weight = if weight_sum == 0.0 {
            0.0
        } else {
            info.weight / weight_sum
        };
        if *desired == 0.0 {
            total += *lowest_boost;
            continue;
        }
        let boost = ((desired - used as f64) / desired) * weight;
        total += boost;
        if boost < *lowest_boost {
            *lowest_boost = boost;
        }
    }
    total
}

/// Even spreading: favour values used least, penalise the most used.
fn even_spread_boost(pset: &PropertySet, node: &Node) -> f64 {
    let combined: Vec<(&str, u64)> = pset.combined().collect();
    if combined.is_empty() {
        return 0.0;
    }
    let Some(value) = resolve_target(&pset.attribute, node) else {
        return -1.0;
    };
    let current = combined
        .iter()
        .find(|(v, _)| *v == value)
        .map_or(0, |(_, n)| *n);
    let (mut min, mut max) = (0u64, 0u64);
    for (_, n) in &combined {
        if min == 0 || *n < min {
            min = *n;
        }
        if max == 0 || *n > max {
            max = *n;
        }
    }
    let delta_boost = if min == 0 {
        -1.0
    } else {
        (min as f64 - current as f64) / min as f64
    };
    if current != min {
        delta_boost
    } else if min == max {
        -1.0
    } else if min == 0 {
        1.0
    } else {
        (max - min) as f64 / min as f64
    }
}
