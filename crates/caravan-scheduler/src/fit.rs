//! Resource accounting: what an allocation consumes, what a node offers, whether a set of
//! allocations fits a node ([`allocs_fit`], also used by the plan applier), and the fit
//! scores of the binpack and spread algorithms.

use caravan_structs::{AllocatedResources, Allocation, Node, Resources};

use crate::interfaces::SchedulerAlgorithm;
use crate::network::{PortUsage, alloc_ports, node_reserved_ports};

/// Why allocations do not fit a node. Displays as Nomad's dimension text (`cpu`, `memory`,
/// `disk`, `reserved alloc port collision: ...`), which is also the `DimensionExhausted` key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FitError(pub String);

impl FitError {
    pub fn dimension(&self) -> &str {
        &self.0
    }
}

/// Comparable amounts of cpu (MHz), memory (MB) and disk (MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Amounts {
    pub cpu: i64,
    pub memory: i64,
    pub disk: i64,
}

impl Amounts {
    pub fn add(&mut self, o: Amounts) {
        self.cpu += o.cpu;
        self.memory += o.memory;
        self.disk += o.disk;
    }

    pub fn sub(&mut self, o: Amounts) {
        self.cpu -= o.cpu;
        self.memory -= o.memory;
        self.disk -= o.disk;
    }

    fn max(&mut self, o: Amounts) {
        self.cpu = self.cpu.max(o.cpu);
        self.memory = self.memory.max(o.memory);
        self.disk = self.disk.max(o.disk);
    }

    /// The first dimension in which `used` exceeds `self`, in Nomad's order.
    pub fn exceeded_by(&self, used: &Amounts) -> Option<&'static str> {
        if self.cpu < used.cpu {
            Some("cpu")
        } else if self.memory < used.memory {
            Some("memory")
        } else if self.disk < used.disk {
            Some("disk")
        } else {
            None
        }
    }
}

/// What a node has for allocations: its resources minus what the operator reserved.
pub fn node_available(node: &Node) -> Amounts {
    let mut total = match &node.node_resources {
        Some(r) => Amounts {
            cpu: r.cpu.cpu_shares,
            memory: r.memory.memory_mb,
            disk: r.disk.disk_mb,
        },
        None => node
            .resources
            .as_ref()
            .map(legacy_amounts)
            .unwrap_or_default(),
    };
    let reserved = match &node.reserved_resources {
        Some(r) => Amounts {
            cpu: r.cpu.cpu_shares,
            memory: r.memory.memory_mb,
            disk: r.disk.disk_mb,
        },
        None => node
            .reserved
            .as_ref()
            .map(legacy_amounts)
            .unwrap_or_default(),
    };
    total.sub(reserved);
    total
}

fn legacy_amounts(r: &Resources) -> Amounts {
    Amounts {
        cpu: r.cpu,
        memory: r.memory_mb,
        disk: r.disk_mb,
    }
}

/// What an allocation's resources count for. Ephemeral prestart and poststop tasks do not
/// run alongside the main tasks, so only the largest of them counts (as in Nomad).
pub fn allocated_amounts(ar: &AllocatedResources) -> Amounts {
    let mut main = Amounts::default();
    let mut prestart_ephemeral = Amounts::default();
    let mut poststop = Amounts::default();
    for (name, t) in ar.tasks.iter().flatten() {
        let a = Amounts {
            cpu: t.cpu.cpu_shares,
            memory: t.memory.memory_mb,
            disk: 0,
        };
        let lifecycle = ar
            .task_lifecycles
            .as_ref()
            .and_then(|l| l.get(name))
            .and_then(|l| l.as_ref());
        match lifecycle {
            Some(l) if l.hook == "prestart" && !l.sidecar => prestart_ephemeral.add(a),
            Some(l) if l.hook == "poststop" => poststop.add(a),
            _ => main.add(a),
        }
    }
    main.max(prestart_ephemeral);
    main.max(poststop);
    main.disk = ar.shared.disk_mb;
    main
}

/// What an allocation counts for on its node (legacy documents included).
pub fn alloc_amounts(alloc: &Allocation) -> Amounts {
    if let Some(ar) = &alloc.allocated_resources {
        return allocated_amounts(ar);
    }
    if let Some(r) = &alloc.resources {
        return legacy_amounts(r);
    }
    let mut a = Amounts::default();
    for r in alloc.task_resources.iter().flat_map(|t| t.values()) {
        a.cpu += r.cpu;
        a.memory += r.memory_mb;
    }
    a.disk = alloc.shared_resources.as_ref().map_or(0, |r| r.disk_mb);
    a
}

/// Whether `allocs` fit on `node` together (Nomad's `AllocsFit`): allocations the client
/// reports finished are ignored; the rest must fit in the node's unreserved cpu, memory and
/// disk, and hold no port twice nor a port the node reserves.
pub fn allocs_fit(node: &Node, allocs: &[&Allocation]) -> Result<(), FitError> {
    let mut used = Amounts::default();
    for a in allocs.iter().filter(|a| !a.client_terminal_status()) {
        used.add(alloc_amounts(a));
    }
    if let Some(dim) = node_available(node).exceeded_by(&used) {
        return Err(FitError(dim.to_owned()));
    }
    let reserved = node_reserved_ports(node)
        .map_err(|e| FitError(format!("reserved node port collision: {e}")))?;
    let mut ports = PortUsage::new(reserved);
    for a in allocs.iter().filter(|a| !a.client_terminal_status()) {
        let reasons = ports.add(&alloc_ports(a));
        if !reasons.is_empty() {
            return Err(FitError(format!(
                "reserved alloc port collision: collision when reserving port for alloc {}: [{}]",
                a.id,
                reasons.join(" ")
            )));
        }
    }
    Ok(())
}

/// Nomad's fit score in `[0, 18]` for a node whose allocations would use `used`: binpack
/// rewards full nodes (best fit), spread rewards empty ones (worst fit).
pub fn score_fit(algorithm: SchedulerAlgorithm, available: &Amounts, used: &Amounts) -> f64 {
    let free = |used: i64, total: i64| {
        if total <= 0 {
            0.0
        } else {
            1.0 - used as f64 / total as f64
        }
    };
    let free_cpu = free(used.cpu, available.cpu);
    let free_mem = free(used.memory, available.memory);
    let total = 10f64.powf(free_cpu) + 10f64.powf(free_mem);
    let score = match algorithm {
        SchedulerAlgorithm::Binpack => 20.0 - total,
        SchedulerAlgorithm::Spread => total - 2.0,
    };
    score.clamp(0.0, 18.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::{
        AllocatedPortMapping, AllocatedSharedResources, AllocatedTaskResources,
        NodeReservedResources, NodeResources,
    };
    use std::collections::BTreeMap;

    fn node(cpu: i64, mem: i64) -> Node {
        let mut n = Node {
            id: "n".into(),
            node_resources: Some(NodeResources::default()),
            reserved_resources: Some(NodeReservedResources::default()),
            ..Default::default()
        };
        if let Some(r) = n.node_resources.as_mut() {
            r.cpu.cpu_shares = cpu;
            r.memory.memory_mb = mem;
            r.disk.disk_mb = 1000;
        }
        n
    }

    fn alloc(id: &str, cpu: i64, mem: i64, port: Option<i64>) -> Allocation {
        Allocation {
            id: id.into(),
            client_status: "running".into(),
            allocated_resources: Some(AllocatedResources {
                tasks: Some(BTreeMap::from([(
                    "t".to_owned(),
                    AllocatedTaskResources {
                        cpu: caravan_structs::AllocatedCpuResources {
                            cpu_shares: cpu,
                            ..Default::default()
                        },
                        memory: caravan_structs::AllocatedMemoryResources {
                            memory_mb: mem,
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                )])),
                shared: AllocatedSharedResources {
                    disk_mb: 10,
                    ports: port.map(|p| {
                        vec![AllocatedPortMapping {
                            label: "http".into(),
                            value: p,
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn dimensions_and_ports() {
        let n = node(1000, 1000);
        let a = alloc("a", 600, 100, Some(8080));
        let b = alloc("b", 600, 100, None);
        assert_eq!(allocs_fit(&n, &[&a, &b]).unwrap_err().to_string(), "cpu");
        let b = alloc("b", 100, 950, None);
        assert_eq!(allocs_fit(&n, &[&a, &b]).unwrap_err().to_string(), "memory");
        let b = alloc("b", 100, 100, Some(8080));
        assert_eq!(
            allocs_fit(&n, &[&a, &b]).unwrap_err().to_string(),
            "reserved alloc port collision: collision when reserving port for alloc b: [port 8080 already in use]"
        );
        let mut done = alloc("b", 900, 900, Some(8080));
        done.client_status = "complete".into();
        assert!(allocs_fit(&n, &[&a, &done]).is_ok());
    }

    #[test]
    fn binpack_prefers_fuller_nodes() {
        let avail = Amounts {
            cpu: 1000,
            memory: 1000,
            disk: 0,
        };
        let empty = score_fit(SchedulerAlgorithm::Binpack, &avail, &Amounts::default());
        let half = score_fit(
            SchedulerAlgorithm::Binpack,
            &avail,
            &Amounts {
                cpu: 500,
                memory: 500,
                disk: 0,
            },
        );
        assert!(half > empty);
        let spread = score_fit(SchedulerAlgorithm::Spread, &avail, &Amounts::default());
        assert_eq!(spread, 18.0);
    }
}
