//! The wait-for graph of a snapshot, and its cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{ObjId, ProcId, Snapshot};

/// One process waiting for another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitEdge {
    /// The waiting process.
    pub waiter: ProcId,
    /// The process it waits for.
    pub holder: ProcId,
    /// The object it waits on (`None` for a `join`).
    pub object: Option<ObjId>,
    /// What the wait is, in words: `Lock #3`, `join`.
    pub what: String,
    /// How long it has waited, in microseconds.
    pub waited_us: u64,
}

/// Who waits for whom (see [`Snapshot::waits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitGraph {
    /// Every edge, by waiter.
    pub edges: Vec<WaitEdge>,
    cycles: Vec<Vec<ProcId>>,
    names: BTreeMap<ProcId, String>,
}

/// At most this many cycles are listed (a graph of processes is small; this bounds the work).
const MAX_CYCLES: usize = 64;

pub(super) fn build(snap: &Snapshot) -> WaitGraph {
    let mut edges = Vec::new();
    for o in &snap.objects {
        if o.kind != "Lock" && o.kind != "RLock" {
            continue;
        }
        for w in o.waiters.iter().filter(|w| w.op == "acquire") {
            for &h in o.held_by.iter().filter(|&&h| h != w.proc) {
                edges.push(WaitEdge {
                    waiter: w.proc,
                    holder: h,
                    object: Some(o.id),
                    what: format!("{} #{}", o.kind, o.id.0 & 0xffff_ffff),
                    waited_us: w.waited_us,
                });
            }
        }
    }
    for j in snap.joins.iter().filter(|j| j.waiter != j.target) {
        edges.push(WaitEdge {
            waiter: j.waiter,
            holder: j.target,
            object: None,
            what: "join".to_owned(),
            waited_us: j.waited_us,
        });
    }
    edges.sort_by_key(|e| (e.waiter, e.holder));
    let cycles = find_cycles(&edges);
    let names = snap.processes.iter().map(|p| (p.proc, snap.describe(p.proc))).collect();
    WaitGraph { edges, cycles, names }
}

/// Elementary cycles, each listed once, starting at its smallest process.
fn find_cycles(edges: &[WaitEdge]) -> Vec<Vec<ProcId>> {
    let mut next: BTreeMap<ProcId, BTreeSet<ProcId>> = BTreeMap::new();
    for e in edges {
        next.entry(e.waiter).or_default().insert(e.holder);
    }
    let mut out = Vec::new();
    let starts: Vec<ProcId> = next.keys().copied().collect();
    for start in starts {
        // Depth-first from `start`, visiting only processes larger than it (so each cycle is
        // found once, from its smallest member).
        let mut path = vec![start];
        let mut iters: Vec<Vec<ProcId>> = vec![next
            .get(&start)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()];
        while let Some(top) = iters.last_mut() {
            if out.len() >= MAX_CYCLES {
                return out;
            }
            match top.pop() {
                Some(n) if n == start => out.push(path.clone()),
                Some(n) if n > start && !path.contains(&n) => {
                    path.push(n);
                    iters.push(next.get(&n).map(|s| s.iter().copied().collect()).unwrap_or_default());
                }
                Some(_) => {}
                None => {
                    iters.pop();
                    path.pop();
                }
            }
        }
    }
    out
}

impl WaitGraph {
    /// The cycles (deadlocks): each a list of processes, every one waiting for the next and
    /// the last for the first, starting at the smallest id.
    pub fn cycles(&self) -> &[Vec<ProcId>] {
        &self.cycles
    }

    /// Is there a deadlock?
    pub fn has_cycle(&self) -> bool {
        !self.cycles.is_empty()
    }

    /// The edge from `waiter` to `holder`, if there is one.
    pub fn edge(&self, waiter: ProcId, holder: ProcId) -> Option<&WaitEdge> {
        self.edges.iter().find(|e| e.waiter == waiter && e.holder == holder)
    }

    fn name(&self, p: ProcId) -> String {
        self.names
            .get(&p)
            .cloned()
            .unwrap_or_else(|| format!("process #{}", p.0))
    }
}

impl fmt::Display for WaitGraph {
    /// One line per wait, then one paragraph per deadlock:
    /// `deadlock: A (pid 1) waits for Lock #3 held by B (pid 2), which waits for Lock #4 held
    /// by A (pid 1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.edges.is_empty() {
            return writeln!(f, "no process waits for another");
        }
        for e in &self.edges {
            writeln!(
                f,
                "{} waits for {} ({}, {})",
                self.name(e.waiter),
                self.name(e.holder),
                e.what,
                super::table::dur(e.waited_us)
            )?;
        }
        for c in &self.cycles {
            write!(f, "DEADLOCK: ")?;
            for (i, p) in c.iter().enumerate() {
                let n = c[(i + 1) % c.len()];
                let what = self.edge(*p, n).map_or("?".to_owned(), |e| {
                    if e.object.is_some() {
                        format!("{} held by", e.what)
                    } else {
                        "the end of".to_owned()
                    }
                });
                if i == 0 {
                    write!(f, "{} waits for {what} {}", self.name(*p), self.name(n))?;
                } else {
                    write!(f, ", which waits for {what} {}", self.name(n))?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(a: u64, b: u64) -> WaitEdge {
        WaitEdge {
            waiter: ProcId(a),
            holder: ProcId(b),
            object: None,
            what: "join".into(),
            waited_us: 0,
        }
    }

    fn ids(c: &[Vec<ProcId>]) -> Vec<Vec<u64>> {
        c.iter().map(|c| c.iter().map(|p| p.0).collect()).collect()
    }

    #[test]
    fn no_cycle_in_a_chain() {
        assert!(find_cycles(&[e(1, 2), e(2, 3), e(4, 3)]).is_empty());
    }

    #[test]
    fn each_cycle_once_from_its_smallest_member() {
        let c = find_cycles(&[e(3, 1), e(1, 2), e(2, 3), e(5, 6), e(6, 5), e(7, 1)]);
        assert_eq!(ids(&c), vec![vec![1, 2, 3], vec![5, 6]]);
    }

    #[test]
    fn overlapping_cycles_are_all_listed() {
        // 1 -> 2 -> 1 and 1 -> 3 -> 1.
        let mut c = ids(&find_cycles(&[e(1, 2), e(2, 1), e(1, 3), e(3, 1)]));
        c.sort();
        assert_eq!(c, vec![vec![1, 2], vec![1, 3]]);
    }

    #[test]
    fn a_large_graph_is_bounded() {
        // A complete graph on 12 nodes has millions of cycles; the search stops at MAX_CYCLES.
        let mut edges = Vec::new();
        for a in 0..12 {
            for b in 0..12 {
                if a != b {
                    edges.push(e(a, b));
                }
            }
        }
        assert_eq!(find_cycles(&edges).len(), MAX_CYCLES);
    }
}
