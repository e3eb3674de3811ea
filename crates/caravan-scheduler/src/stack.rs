//! The placement stack: picks the node for one allocation of a task group. Nodes come from a
//! shuffled list walked round-robin across placements; each is checked for feasibility
//! (memoised per computed class), then for room (binpack: cpu, memory, disk, ports), scored
//! (fit, job anti-affinity, reschedule penalty, affinities, spreads; normalised as their
//! mean), and the best of a limited number of candidates wins (Nomad's `GenericStack` with
//! its limit and max-score iterators). The system schedulers use the same stack one node at
//! a time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use caravan_structs::{
    Affinity, AllocMetric, AllocatedCpuResources, AllocatedMemoryResources, AllocatedPortMapping,
    AllocatedResources, AllocatedSharedResources, AllocatedTaskResources, Constraint, Job,
    NetworkResource, Node, TaskGroup,
};

use crate::context::EvalContext;
use crate::feasible::{
    CONSTRAINT_DISTINCT_HOSTS, CONSTRAINT_DISTINCT_PROPERTY, ClassStatus, FILTER_CLASS_INELIGIBLE,
    FILTER_HOST_VOLUMES, FILTER_MISSING_DRIVERS, computed_class, constraint_string, has_drivers,
    has_host_volumes, network_feasible, task_group_constraints,
};
use crate::fit::{Amounts, allocated_amounts, node_available, score_fit};
use crate::network::{assign_group_ports, assign_task_network, group_network_resource};
use crate::propertyset::PropertySet;
use crate::rank::{MetricRecorder, ScoreRow, SpreadInfo, affinity_score, spread_score};
use crate::util::FastMap;

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

/// The chosen node and the ports picked on it.
#[derive(Debug, Clone)]
pub struct RankedOption<'s> {
    pub node: &'s Node,
    pub score: f64,
    /// Group ports and the group network as recorded on the allocation.
    group_ports: Option<(Vec<AllocatedPortMapping>, NetworkResource)>,
    /// Legacy task-level networks, per task.
    task_networks: Vec<(String, NetworkResource)>,
}

/// What a group asks of every node, computed once.
struct GroupAsk {
    /// The allocated resources without ports.
    template: AllocatedResources,
    amounts: Amounts,
    group_network: Option<NetworkResource>,
    task_networks: Vec<(String, NetworkResource)>,
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
    ask: GroupAsk,
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
    groups: FastMap<String, GroupInfo>,
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
            groups: FastMap::default(),
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
            ask: group_ask(tg, ctx.config.memory_oversubscription_enabled),
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
        rec: &mut MetricRecorder<'s>,
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
        rec: &mut MetricRecorder<'s>,
    ) -> bool {
        let class = computed_class(node);
        let (job_status, tg_status) = ctx.eligibility.statuses(&tg.name, &class);
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

        if !has_host_volumes(node, tg) {
            rec.filter(node, FILTER_HOST_VOLUMES);
            return false;
        }
        if self.job_distinct_hosts || info.distinct_hosts {
            let usage = ctx.usage(node);
            let collides = if self.job_distinct_hosts {
                usage.job_total() > 0
            } else {
                usage.job_group_count(&tg.name) > 0
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
        rec: &mut MetricRecorder<'s>,
    ) -> Option<RankedOption<'s>> {
        let algorithm = ctx.config.algorithm;
        let info = self.groups.get(&tg.name)?;
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
        let mut group_ports = None;
        if let Some(ask) = &info.ask.group_network {
            match assign_group_ports(rng, node, &usage.ports, &mut taken, ask) {
                Ok(offer) => {
                    let network = group_network_resource(node, ask, &offer);
                    group_ports = Some((offer, network));
                }
                Err(e) => {
                    rec.exhausted(node, &format!("network: {e}"));
                    return None;
                }
            }
        }
        let mut task_networks = Vec::new();
        for (task, ask) in &info.ask.task_networks {
            match assign_task_network(rng, node, &usage.ports, &mut taken, ask) {
                Ok(offer) => task_networks.push((task.clone(), offer)),
                Err(e) => {
                    rec.exhausted(node, &format!("network: {e}"));
                    return None;
                }
            }
        }

        let mut total = usage.used;
        total.add(info.ask.amounts);
        let available = node_available(node);
        if let Some(dim) = available.exceeded_by(&total) {
            rec.exhausted(node, dim);
            return None;
        }
        let collisions = usage.job_group_count(&tg.name);

        let mut row = ScoreRow {
            binpack: score_fit(algorithm, &available, &total) / BINPACK_MAX_FIT_SCORE,
            ..ScoreRow::default()
        };
        let mut sum = row.binpack;
        let mut n = 1.0;
        if !self.system {
            if collisions > 0 {
                row.anti_affinity = -f64::from(collisions + 1) / (tg.count.max(1) as f64);
                sum += row.anti_affinity;
                n += 1.0;
            }
            if opts.penalty_nodes.contains(&node.id) {
                row.reschedule_penalty = -1.0;
                sum -= 1.0;
                n += 1.0;
            }
            if !info.affinities.is_empty() {
                row.affinity = affinity_score(&mut ctx.constraints, &info.affinities, node);
                sum += row.affinity;
                n += 1.0;
            }
            if !info.spreads.is_empty() {
                let s = spread_score(
                    &info.spreads,
                    info.spread_weight_sum,
                    &mut self.lowest_spread_boost,
                    node,
                );
                if s != 0.0 {
                    row.spread = Some(s);
                    sum += s;
                    n += 1.0;
                }
            }
        }
        row.norm = sum / n;
        rec.scored(&node.id, row, !self.system);
        Some(RankedOption {
            node,
            score: row.norm,
            group_ports,
            task_networks,
        })
    }

    /// The resources an allocation of `tg` reserves on the chosen node.
    pub fn resources(&self, tg: &TaskGroup, option: &RankedOption<'s>) -> AllocatedResources {
        let Some(info) = self.groups.get(&tg.name) else {
            return AllocatedResources::default();
        };
        let mut r = info.ask.template.clone();
        if let Some((ports, network)) = &option.group_ports {
            r.shared.ports = Some(ports.clone());
            r.shared.networks = Some(vec![network.clone()]);
        }
        for (task, network) in &option.task_networks {
            if let Some(t) = r.tasks.as_mut().and_then(|t| t.get_mut(task)) {
                t.networks = Some(vec![network.clone()]);
            }
        }
        r
    }
}

/// The group's resource ask: its tasks' cpu and memory, its disk, its network asks.
fn group_ask(tg: &TaskGroup, oversubscription: bool) -> GroupAsk {
    let mut tasks = BTreeMap::new();
    let mut lifecycles = BTreeMap::new();
    let mut task_networks = Vec::new();
    for task in tg.tasks.iter().flatten() {
        let res = task.resources.as_ref();
        tasks.insert(
            task.name.clone(),
            AllocatedTaskResources {
                cpu: AllocatedCpuResources {
                    cpu_shares: res.map_or(0, |r| r.cpu),
                    reserved_cores: None,
                },
                memory: AllocatedMemoryResources {
                    memory_mb: res.map_or(0, |r| r.memory_mb),
                    memory_max_mb: if oversubscription {
                        res.map_or(0, |r| r.memory_max_mb)
                    } else {
                        0
                    },
                },
                ..Default::default()
            },
        );
        lifecycles.insert(task.name.clone(), task.lifecycle.clone());
        if let Some(ask) = res
            .and_then(|r| r.networks.as_ref())
            .and_then(|n| n.first())
        {
            task_networks.push((task.name.clone(), ask.clone()));
        }
    }
    let template = AllocatedResources {
        shared: AllocatedSharedResources {
            disk_mb: tg.ephemeral_disk.as_ref().map_or(0, |d| d.size_mb),
            ..Default::default()
        },
        task_lifecycles: Some(lifecycles),
        tasks: Some(tasks),
    };
    GroupAsk {
        amounts: allocated_amounts(&template),
        template,
        group_network: tg.networks.as_ref().and_then(|n| n.first()).cloned(),
        task_networks,
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
