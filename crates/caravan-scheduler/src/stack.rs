//! The placement stack: picks the node for one allocation of a task group. Nodes come from a
//! shuffled list walked round-robin across placements; each is checked for feasibility
//! (memoised per computed class), then for room (binpack: cpu, memory, disk, ports), scored
//! (fit, job anti-affinity, reschedule penalty, affinities, spreads; normalised as their
//! mean), and the best of a limited number of candidates wins (Nomad's `GenericStack` with
//! its limit and max-score iterators). The system schedulers use the same stack one node at
//! a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use caravan_structs::{
    Affinity, AllocMetric, AllocatedCpuResources, AllocatedMemoryResources, AllocatedResources,
    AllocatedSharedResources, AllocatedTaskResources, Constraint, Job, Node, NodeScoreMeta,
    TaskGroup,
};

use crate::context::EvalContext;
use crate::feasible::{
    CONSTRAINT_DISTINCT_HOSTS, CONSTRAINT_DISTINCT_PROPERTY, ClassStatus, FILTER_CLASS_INELIGIBLE,
    FILTER_MISSING_DRIVERS, computed_class, constraint_string, has_drivers, network_feasible,
    task_group_constraints,
};
use crate::fit::{allocated_amounts, node_available, score_fit};
use crate::network::{assign_group_ports, assign_task_network, group_network_resource};
use crate::propertyset::PropertySet;
use crate::rank::{
    MetricRecorder, SCORER_BINPACK, SCORER_JOB_ANTI_AFFINITY, SCORER_NODE_AFFINITY,
    SCORER_RESCHEDULE_PENALTY, SCORER_SPREAD, SpreadInfo, affinity_score, spread_score,
};

/// Candidates scoring at or below this may be skipped for better ones.
const SKIP_SCORE_THRESHOLD: f64 = 0.0;
/// At most this many low-scoring candidates are skipped per placement.
const MAX_SKIP: usize = 3;
/// Binpack fitness is in `[0, 18]`; it is normalised to `[0, 1]`.
const BINPACK_MAX_FIT_SCORE: f64 = 18.0;

/// Per-placement options.
#[derive(Debug, Default, Clone)]
pub struct SelectOptions<'s> {
    /// Nodes a rescheduled allocation already failed on.
    pub penalty_nodes: BTreeSet<String>,
    /// Try this node first (sticky or migrating ephemeral disks).
    pub preferred: Option<&'s Node>,
}

/// The chosen node and the resources reserved on it.
#[derive(Debug, Clone)]
pub struct RankedOption<'s> {
    pub node: &'s Node,
    pub score: f64,
    pub resources: AllocatedResources,
}

/// What the stack knows of a group, computed at its first placement.
struct GroupInfo {
    constraints: Vec<(Constraint, String)>,
    drivers: BTreeSet<String>,
    distinct_hosts: bool,
    distinct_sets: Vec<PropertySet>,
    affinities: Vec<Affinity>,
    spreads: Vec<(SpreadInfo, PropertySet)>,
    spread_weight_sum: f64,
}

/// Where the candidates of one placement come from.
enum Source<'a, 's> {
    /// The stack's shuffled nodes, from where the last placement stopped.
    Main,
    /// An explicit list (in-place updates, preferred nodes, system jobs).
    List(&'a [&'s Node]),
}

/// Walks the candidates of one placement.
struct Cursor<'a, 's> {
    list: Option<&'a [&'s Node]>,
    pos: usize,
    seen: usize,
    total: usize,
}

/// See the module docs.
pub struct Stack<'s> {
    job: &'s Job,
    batch: bool,
    system: bool,
    nodes: Vec<&'s Node>,
    offset: usize,
    job_constraints: Vec<(Constraint, String)>,
    job_distinct_hosts: bool,
    job_distinct_sets: Option<Vec<PropertySet>>,
    groups: HashMap<String, GroupInfo>,
    lowest_spread_boost: f64,
}

fn distinct_hosts(constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .find(|c| c.operand == CONSTRAINT_DISTINCT_HOSTS)
        .is_some_and(|c| {
            c.r_target.is_empty()
                || !matches!(
                    c.r_target.as_str(),
                    "0" | "f" | "F" | "FALSE" | "false" | "False"
                )
        })
}

impl<'s> Stack<'s> {
    /// A stack for `job`. `system` stacks check exactly the nodes they are given.
    pub fn new(ctx: &mut EvalContext<'s, '_>, job: &'s Job, batch: bool, system: bool) -> Self {
        ctx.eligibility.set_job(job);
        let job_constraints: Vec<Constraint> = job.constraints.clone().unwrap_or_default();
        Stack {
            job,
            batch,
            system,
            nodes: Vec::new(),
            offset: 0,
            job_distinct_hosts: distinct_hosts(&job_constraints),
            job_constraints: job_constraints
                .into_iter()
                .map(|c| {
                    let s = constraint_string(&c);
                    (c, s)
                })
                .collect(),
            job_distinct_sets: None,
            groups: HashMap::new(),
            lowest_spread_boost: -1.0,
        }
    }

    /// Sets the candidate nodes, shuffled with the context's generator.
    pub fn set_nodes(&mut self, ctx: &mut EvalContext<'s, '_>, mut nodes: Vec<&'s Node>) {
        use rand::seq::SliceRandom;
        nodes.shuffle(&mut ctx.sched.rng);
        self.nodes = nodes;
        self.offset = 0;
    }

    fn base_limit(&self, n: usize) -> usize {
        if self.system {
            return usize::MAX;
        }
        let mut limit = 2;
        if !self.batch && n > 0 {
            limit = limit.max((n as f64).log2().ceil() as usize);
        }
        limit
    }

    fn group_info(&mut self, ctx: &EvalContext<'s, '_>, tg: &TaskGroup) {
        if self.groups.contains_key(&tg.name) {
            return;
        }
        let (constraints, drivers) = task_group_constraints(tg);
        let distinct_sets = tg
            .constraints
            .iter()
            .flatten()
            .filter(|c| c.operand == CONSTRAINT_DISTINCT_PROPERTY)
            .map(|c| PropertySet::for_distinct(ctx, &c.l_target, &c.r_target, Some(&tg.name)))
            .collect();
        let mut affinities: Vec<Affinity> = self.job.affinities.clone().unwrap_or_default();
        affinities.extend(tg.affinities.iter().flatten().cloned());
        for t in tg.tasks.iter().flatten() {
            affinities.extend(t.affinities.iter().flatten().cloned());
        }
        let mut spreads = Vec::new();
        let mut spread_weight_sum = 0.0;
        for s in self
            .job
            .spreads
            .iter()
            .flatten()
            .chain(tg.spreads.iter().flatten())
        {
            let targets = s
                .spread_target
                .iter()
                .flatten()
                .map(|t| t.value.clone())
                .collect();
            let info = SpreadInfo::new(s, tg.count);
            spread_weight_sum += info.weight;
            spreads.push((
                info,
                PropertySet::for_spread(ctx, &s.attribute, &tg.name, targets),
            ));
        }
        let info = GroupInfo {
            distinct_hosts: distinct_hosts(&constraints),
            constraints: constraints
                .into_iter()
                .map(|c| {
                    let s = constraint_string(&c);
                    (c, s)
                })
                .collect(),
            drivers,
            distinct_sets,
            affinities,
            spreads,
            spread_weight_sum,
        };
        self.groups.insert(tg.name.clone(), info);
    }

    /// Picks a node for one allocation of `tg` among the stack's nodes.
    pub fn select(
        &mut self,
        ctx: &mut EvalContext<'s, '_>,
        tg: &TaskGroup,
        opts: &SelectOptions<'s>,
    ) -> (Option<RankedOption<'s>>, AllocMetric) {
        if let Some(preferred) = opts.preferred {
            let (option, metric) = self.run(ctx, tg, opts, Source::List(&[preferred]));
            if option.is_some() {
                return (option, metric);
            }
        }
        self.run(ctx, tg, opts, Source::Main)
    }

    /// Picks among exactly `nodes` (in-place updates, system jobs).
    pub fn select_on(
        &mut self,
        ctx: &mut EvalContext<'s, '_>,
        tg: &TaskGroup,
        nodes: &[&'s Node],
        opts: &SelectOptions<'s>,
    ) -> (Option<RankedOption<'s>>, AllocMetric) {
        self.run(ctx, tg, opts, Source::List(nodes))
    }

    fn run(
        &mut self,
        ctx: &mut EvalContext<'s, '_>,
        tg: &TaskGroup,
        opts: &SelectOptions<'s>,
        source: Source<'_, 's>,
    ) -> (Option<RankedOption<'s>>, AllocMetric) {
        let start = Instant::now();
        let mut rec = MetricRecorder::default();
        if self.system {
            // Each system placement looks at one node: class answers do not carry over.
            ctx.eligibility.reset();
        }
        self.group_info(ctx, tg);
        self.catch_up(ctx, &tg.name);

        let (list, total) = match source {
            Source::Main => (None, self.nodes.len()),
            Source::List(l) => (Some(l), l.len()),
        };
        let mut limit = self.base_limit(total);
        if let Some(info) = self.groups.get(&tg.name)
            && (!info.affinities.is_empty() || !info.spreads.is_empty())
        {
            limit = usize::MAX;
        }

        let mut cursor = Cursor {
            list,
            pos: 0,
            seen: 0,
            total,
        };

        // Nomad's limit iterator feeding a max-score iterator.
        let mut best: Option<RankedOption<'s>> = None;
        let mut skipped: Vec<RankedOption<'s>> = Vec::new();
        let mut skipped_used = 0usize;
        let mut seen = 0usize;
        while seen < limit {
            let mut option = self.next_ranked(ctx, tg, opts, &mut cursor, &mut rec);
            if option.is_none() && skipped_used < skipped.len() {
                option = Some(skipped[skipped_used].clone());
                skipped_used += 1;
            }
            if option.is_none() {
                break;
            }
            while skipped.len() < MAX_SKIP
                && option
                    .as_ref()
                    .is_some_and(|o| o.score <= SKIP_SCORE_THRESHOLD)
            {
                if let Some(o) = option.take() {
                    skipped.push(o);
                }
                option = self.next_ranked(ctx, tg, opts, &mut cursor, &mut rec);
            }
            seen += 1;
            let option = match option {
                Some(o) => o,
                None if skipped_used < skipped.len() => {
                    skipped_used += 1;
                    skipped[skipped_used - 1].clone()
                }
                None => break,
            };
            if best.as_ref().is_none_or(|b| option.score > b.score) {
                best = Some(option);
            }
            if self.system {
                break;
            }
        }
        let elapsed = i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX);
        (best, rec.finish(elapsed))
    }

    /// Whether the node still meets the job's and group's constraints (drivers, networks and
    /// room aside): used to retire system allocations from nodes that stopped qualifying.
    pub fn constraints_hold(
        &mut self,
        ctx: &mut EvalContext<'s, '_>,
        tg: &TaskGroup,
        node: &'s Node,
    ) -> bool {
        self.group_info(ctx, tg);
        let Some(info) = self.groups.get(&tg.name) else {
            return true;
        };
        self.job_constraints
            .iter()
            .chain(info.constraints.iter())
            .all(|(c, _)| ctx.constraints.meets(c, node))
    }

    /// The next candidate node: from the list, or round-robin from the stack's nodes.
    fn next_node(&mut self, cur: &mut Cursor<'_, 's>) -> Option<&'s Node> {
        if cur.seen >= cur.total {
            return None;
        }
        cur.seen += 1;
        match cur.list {
            Some(l) => {
                let n = l.get(cur.pos).copied();
                cur.pos += 1;
                n
            }
            None => {
                if self.offset >= self.nodes.len() {
                    self.offset = 0;
                }
                let n = self.nodes.get(self.offset).copied();
                self.offset += 1;
                n
            }
        }
    }

    /// The next candidate that is feasible and fits, ranked.
    fn next_ranked(
        &mut self,
        ctx: &mut EvalContext<'s, '_>,
        tg: &TaskGroup,
        opts: &SelectOptions<'s>,
        cur: &mut Cursor<'_, 's>,
        rec: &mut MetricRecorder,
    ) -> Option<RankedOption<'s>> {
        while let Some(node) = self.next_node(cur) {
            rec.evaluated();
            if !self.feasible(ctx, tg, node, rec) {
                continue;
            }
            if let Some(option) = self.rank(ctx, tg, node, opts, rec) {
                return Some(option);
            }
        }
        None
    }

    /// Replays plan changes into the property sets the group uses.
    fn catch_up(&mut self, ctx: &EvalContext<'s, '_>, tg: &str) {
        let job = self.job;
        let sets = self.job_distinct_sets.get_or_insert_with(|| {
            job.constraints
                .iter()
                .flatten()
                .filter(|c| c.operand == CONSTRAINT_DISTINCT_PROPERTY)
                .map(|c| PropertySet::for_distinct(ctx, &c.l_target, &c.r_target, None))
                .collect()
        });
        for s in sets.iter_mut() {
            s.catch_up(ctx);
        }
        if let Some(info) = self.groups.get_mut(tg) {
            for s in info.distinct_sets.iter_mut() {
                s.catch_up(ctx);
            }
            for (_, s) in info.spreads.iter_mut() {
                s.catch_up(ctx);
            }
        }
    }

    /// Feasibility of one node (class-memoised constraint, driver and network checks, then
    /// distinct hosts and properties).
    fn feasible(
        &mut self,
        ctx: &mut EvalContext<'s, '_>,
        tg: &TaskGroup,
        node: &'s Node,
        rec: &mut MetricRecorder,
    ) -> bool {
        let class = computed_class(node);
        let job_status = ctx.eligibility.job_status(&class);
        match job_status {
            ClassStatus::Ineligible => {
                rec.filter(node, FILTER_CLASS_INELIGIBLE);
                return false;
            }
            ClassStatus::Eligible => {}
            ClassStatus::Unknown | ClassStatus::Escaped => {
                for (c, s) in &self.job_constraints {
                    if !ctx.constraints.meets(c, node) {
                        rec.filter(node, s);
                        if job_status == ClassStatus::Unknown {
                            ctx.eligibility.set_job_eligibility(false, &class);
                        }
                        return false;
                    }
                }
                if job_status == ClassStatus::Unknown {
                    ctx.eligibility.set_job_eligibility(true, &class);
                }
            }
        }

        let Some(info) = self.groups.get(&tg.name) else {
            return false;
        };
        let tg_status = ctx.eligibility.tg_status(&tg.name, &class);
        match tg_status {
            ClassStatus::Ineligible => {
                rec.filter(node, FILTER_CLASS_INELIGIBLE);
                return false;
            }
            ClassStatus::Eligible => {}
            ClassStatus::Unknown | ClassStatus::Escaped => {
                let failure = if !has_drivers(node, &info.drivers) {
                    Some(FILTER_MISSING_DRIVERS.to_owned())
                } else if let Some((_, s)) = info
                    .constraints
                    .iter()
                    .find(|(c, _)| !ctx.constraints.meets(c, node))
                {
                    Some(s.clone())
                } else {
                    network_feasible(node, tg).err()
                };
                if let Some(reason) = failure {
                    rec.filter(node, &reason);
                    if tg_status == ClassStatus::Unknown {
                        ctx.eligibility.set_tg_eligibility(false, &tg.name, &class);
                    }
                    return false;
                }
                if tg_status == ClassStatus::Unknown {
                    ctx.eligibility.set_tg_eligibility(true, &tg.name, &class);
                }
            }
        }

        if self.job_distinct_hosts || info.distinct_hosts {
            let usage = ctx.usage(node);
            let collides = if self.job_distinct_hosts {
                usage.job_total() > 0
            } else {
                usage.job_groups.get(&tg.name).is_some_and(|n| *n > 0)
            };
            if collides {
                rec.filter(node, CONSTRAINT_DISTINCT_HOSTS);
                return false;
            }
        }
        let job_sets = self.job_distinct_sets.iter().flatten();
        for set in job_sets.chain(info.distinct_sets.iter()) {
            if let Err(reason) = set.satisfies_distinct(node) {
                rec.filter(node, &reason);
                return false;
            }
        }
        true
    }

    /// Fits the group on a feasible node and scores it; `None` (recorded as exhausted) when
    /// it does not fit.
    fn rank(
        &mut self,
        ctx: &mut EvalContext<'s, '_>,
        tg: &TaskGroup,
        node: &'s Node,
        opts: &SelectOptions<'s>,
        rec: &mut MetricRecorder,
    ) -> Option<RankedOption<'s>> {
        let algorithm = ctx.config.algorithm;
        let oversubscription = ctx.config.memory_oversubscription_enabled;
        let (usage, rng) = ctx.usage_and_rng(node);
        if usage.invalid_node {
            rec.exhausted(node, "network: invalid node");
            return None;
        }
        if usage.port_collision {
            rec.exhausted(node, "network: port collision");
            return None;
        }

        let mut taken = BTreeSet::new();
        let mut shared = AllocatedSharedResources {
            disk_mb: tg.ephemeral_disk.as_ref().map_or(0, |d| d.size_mb),
            ..Default::default()
        };
        if let Some(ask) = tg.networks.as_ref().and_then(|n| n.first()) {
            match assign_group_ports(rng, node, &usage.ports, &mut taken, ask) {
                Ok(offer) => {
                    shared.networks = Some(vec![group_network_resource(node, ask, &offer)]);
                    shared.ports = Some(offer);
                }
                Err(e) => {
                    rec.exhausted(node, &format!("network: {e}"));
                    return None;
                }
            }
        }
        let mut tasks = BTreeMap::new();
        let mut lifecycles = BTreeMap::new();
        for task in tg.tasks.iter().flatten() {
            let res = task.resources.clone().unwrap_or_default();
            let mut tr = AllocatedTaskResources {
                cpu: AllocatedCpuResources {
                    cpu_shares: res.cpu,
                    reserved_cores: None,
                },
                memory: AllocatedMemoryResources {
                    memory_mb: res.memory_mb,
                    memory_max_mb: if oversubscription {
                        res.memory_max_mb
                    } else {
                        0
                    },
                },
                ..Default::default()
            };
            if let Some(ask) = res.networks.as_ref().and_then(|n| n.first()) {
                match assign_task_network(rng, node, &usage.ports, &mut taken, ask) {
                    Ok(offer) => tr.networks = Some(vec![offer]),
                    Err(e) => {
                        rec.exhausted(node, &format!("network: {e}"));
                        return None;
                    }
                }
            }
            tasks.insert(task.name.clone(), tr);
            lifecycles.insert(task.name.clone(), task.lifecycle.clone());
        }
        let resources = AllocatedResources {
            shared,
            task_lifecycles: Some(lifecycles),
            tasks: Some(tasks),
        };

        let mut total = usage.used;
        total.add(allocated_amounts(&resources));
        let available = node_available(node);
        if let Some(dim) = available.exceeded_by(&total) {
            rec.exhausted(node, dim);
            return None;
        }
        let collisions = usage.job_groups.get(&tg.name).copied().unwrap_or(0);

        let mut meta = BTreeMap::new();
        let mut scores = Vec::with_capacity(5);
        let fitness = score_fit(algorithm, &available, &total) / BINPACK_MAX_FIT_SCORE;
        scores.push(fitness);
        meta.insert(SCORER_BINPACK.to_owned(), fitness);

        if !self.system {
            let anti = if collisions > 0 {
                let s = -f64::from(collisions + 1) / (tg.count.max(1) as f64);
                scores.push(s);
                s
            } else {
                0.0
            };
            meta.insert(SCORER_JOB_ANTI_AFFINITY.to_owned(), anti);

            let penalty = if opts.penalty_nodes.contains(&node.id) {
                scores.push(-1.0);
                -1.0
            } else {
                0.0
            };
            meta.insert(SCORER_RESCHEDULE_PENALTY.to_owned(), penalty);

            let info = self.groups.get(&tg.name)?;
            let affinity = if info.affinities.is_empty() {
                0.0
            } else {
                let s = affinity_score(&mut ctx.constraints, &info.affinities, node);
                scores.push(s);
                s
            };
            meta.insert(SCORER_NODE_AFFINITY.to_owned(), affinity);

            if !info.spreads.is_empty() {
                let s = spread_score(
                    &info.spreads,
                    info.spread_weight_sum,
                    &mut self.lowest_spread_boost,
                    node,
                );
                if s != 0.0 {
                    scores.push(s);
                    meta.insert(SCORER_SPREAD.to_owned(), s);
                }
            }
        }

        let score = scores.iter().sum::<f64>() / scores.len() as f64;
        rec.scored(NodeScoreMeta {
            node_id: node.id.clone(),
            norm_score: score,
            scores: Some(meta),
        });
        Some(RankedOption {
            node,
            score,
            resources,
        })
    }
}

/// The legacy per-task view of allocated resources (`TaskResources`).
pub fn old_task_resources(ar: &AllocatedResources) -> BTreeMap<String, caravan_structs::Resources> {
    ar.tasks
        .iter()
        .flatten()
        .map(|(name, t)| {
            (
                name.clone(),
                caravan_structs::Resources {
                    cpu: t.cpu.cpu_shares,
                    memory_mb: t.memory.memory_mb,
                    memory_max_mb: t.memory.memory_max_mb,
                    networks: t.networks.clone(),
                    ..Default::default()
                },
            )
        })
        .collect()
}
