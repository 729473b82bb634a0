//! The process registry: names, monitors, links and trapping exits (issue 12).
//!
//! One state machine, driven by the hub: it holds only ids, and says what to do (deliver a
//! signal, kill a process) when a process ends; the hub does it. Everything here is bounded:
//! a process has at most one name, a name is at most [`MAX_NAME_LEN`] bytes, and a process may
//! hold at most `HubLimits::max_monitors_per_process` monitors and as many links.
//!
//! Semantics (Erlang's):
//! - a name belongs to one live process; it is freed as soon as the process is dead to the hub
//!   (its main connection closed), so that a restarted incarnation can take it at once;
//! - a monitor fires exactly once, when the target's exit status is known (so that the `Down`
//!   carries it exactly), then is gone; `demonitor` before that means it never fires;
//! - links are symmetric and removed when either side ends; the partner of a process that
//!   ended abnormally is killed unless it traps exits; a trapping partner gets an `Exit` signal
//!   whatever the reason (normal included).

use std::collections::{HashMap, HashSet};

use crate::wire::proto::{HubError, ProcId};

/// The longest name accepted, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 255;

/// What the hub must do because a process ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Ended {
    /// The name it had when it died.
    pub name: Option<String>,
    /// `(watcher, monitor)`: deliver a `Down` to each.
    pub downs: Vec<(ProcId, u64)>,
    /// Its link partners: each gets an `Exit` (trapping) or is killed (abnormal end).
    pub partners: Vec<(ProcId, bool)>,
}

#[derive(Default)]
pub(crate) struct Registry {
    names: HashMap<String, ProcId>,
    name_of: HashMap<ProcId, String>,
    /// Names of processes that are dead to the hub but whose exit is not yet recorded.
    dead_names: HashMap<ProcId, String>,
    /// monitor ref → (watcher, target)
    monitors: HashMap<u64, (ProcId, ProcId)>,
    on_target: HashMap<ProcId, Vec<u64>>,
    of_watcher: HashMap<ProcId, HashSet<u64>>,
    links: HashMap<ProcId, HashSet<ProcId>>,
    trapping: HashSet<ProcId>,
    next_ref: u64,
}

/// Is `name` acceptable?
pub(crate) fn check_name(name: &str) -> Result<(), HubError> {
    if name.is_empty() {
        return Err(HubError::Invalid("a process name cannot be empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(HubError::Invalid(format!(
            "a process name is at most {MAX_NAME_LEN} bytes; this one has {}",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(HubError::Invalid(
            "a process name cannot contain control characters".into(),
        ));
    }
    Ok(())
}

impl Registry {
    /// Registers `name` for `proc` (a live process). `describe` names a process in errors.
    pub fn register(&mut self, name: &str, proc: ProcId, describe: &dyn Fn(ProcId) -> String) -> Result<(), HubError> {
        check_name(name)?;
        if let Some(&holder) = self.names.get(name) {
            if holder == proc {
                return Ok(());
            }
            return Err(HubError::Invalid(format!(
                "the name {name:?} is taken by {}; unregister it first, or wait for that process to end",
                describe(holder)
            )));
        }
        if let Some(old) = self.name_of.get(&proc) {
            return Err(HubError::Invalid(format!(
                "{} is already registered as {old:?}; a process has at most one name (unregister it first)",
                describe(proc)
            )));
        }
        self.names.insert(name.to_owned(), proc);
        self.name_of.insert(proc, name.to_owned());
        Ok(())
    }

    /// Drops `name`; returns who had it.
    pub fn unregister(&mut self, name: &str) -> Option<ProcId> {
        let p = self.names.remove(name)?;
        self.name_of.remove(&p);
        Some(p)
    }

    pub fn whereis(&self, name: &str) -> Option<ProcId> {
        self.names.get(name).copied()
    }

    #[cfg(test)]
    pub fn name_of(&self, p: ProcId) -> Option<&str> {
        self.name_of
            .get(&p)
            .or_else(|| self.dead_names.get(&p))
            .map(String::as_str)
    }

    /// How many names are registered (tests and diagnostics).
    #[cfg(test)]
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// A new monitor of `target` by `watcher`, unless `watcher` holds `limit` already.
    pub fn monitor(&mut self, watcher: ProcId, target: ProcId, limit: usize) -> Result<u64, HubError> {
        let mine = self.of_watcher.entry(watcher).or_default();
        if mine.len() >= limit {
            return Err(HubError::Limit(format!(
                "too many monitors: this process holds {limit} (HubLimits::max_monitors_per_process); \
                 demonitor the ones it no longer needs"
            )));
        }
        self.next_ref += 1;
        let r = self.next_ref;
        mine.insert(r);
        self.monitors.insert(r, (watcher, target));
        self.on_target.entry(target).or_default().push(r);
        Ok(r)
    }

    /// A reference for a monitor that fires at once (its target has already ended): counted
    /// nowhere, since nothing is kept.
    pub fn fired_ref(&mut self) -> u64 {
        self.next_ref += 1;
        self.next_ref
    }

    /// Removes a monitor `watcher` holds; true if it was active.
    pub fn demonitor(&mut self, watcher: ProcId, r: u64) -> bool {
        match self.monitors.get(&r) {
            Some(&(w, target)) if w == watcher => {
                self.monitors.remove(&r);
                if let Some(s) = self.of_watcher.get_mut(&w) {
                    s.remove(&r);
                }
                if let Some(v) = self.on_target.get_mut(&target) {
                    v.retain(|&x| x != r);
                    if v.is_empty() {
                        self.on_target.remove(&target);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Links `a` and `b` (both live), unless one of them holds `limit` links already.
    pub fn link(&mut self, a: ProcId, b: ProcId, limit: usize) -> Result<(), HubError> {
        if a == b {
            return Ok(());
        }
        if self.links.get(&a).is_some_and(|s| s.contains(&b)) {
            return Ok(());
        }
        let full = |p: ProcId| self.links.get(&p).is_some_and(|s| s.len() >= limit);
        if full(a) || full(b) {
            return Err(HubError::Limit(format!(
                "too many links: a process may have {limit} (HubLimits::max_monitors_per_process)"
            )));
        }
        self.links.entry(a).or_default().insert(b);
        self.links.entry(b).or_default().insert(a);
        Ok(())
    }

    pub fn unlink(&mut self, a: ProcId, b: ProcId) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(s) = self.links.get_mut(&x) {
                s.remove(&y);
                if s.is_empty() {
                    self.links.remove(&x);
                }
            }
        }
    }

    #[cfg(test)]
    pub fn linked(&self, a: ProcId, b: ProcId) -> bool {
        self.links.get(&a).is_some_and(|s| s.contains(&b))
    }

    /// Sets trapping for `p`; returns the previous setting.
    pub fn trap(&mut self, p: ProcId, on: bool) -> bool {
        if on {
            !self.trapping.insert(p)
        } else {
            self.trapping.remove(&p)
        }
    }

    /// `p` is dead to the hub (its exit status may not be known yet): its name is freed, and
    /// the monitors it held are dropped (nobody is left to receive their `Down`).
    pub fn proc_gone(&mut self, p: ProcId) {
        if let Some(name) = self.name_of.remove(&p) {
            self.names.remove(&name);
            self.dead_names.insert(p, name);
        }
        if let Some(mine) = self.of_watcher.remove(&p) {
            for r in mine {
                if let Some((_, target)) = self.monitors.remove(&r) {
                    if let Some(v) = self.on_target.get_mut(&target) {
                        v.retain(|&x| x != r);
                        if v.is_empty() {
                            self.on_target.remove(&target);
                        }
                    }
                }
            }
        }
    }

    /// `p`'s exit status is known: everything about it goes, and the hub is told whom to
    /// signal. `partners` carries whether each partner traps exits.
    pub fn proc_exited(&mut self, p: ProcId) -> Ended {
        self.proc_gone(p);
        let name = self.dead_names.remove(&p);
        let mut downs = Vec::new();
        for r in self.on_target.remove(&p).unwrap_or_default() {
            if let Some((w, _)) = self.monitors.remove(&r) {
                if let Some(s) = self.of_watcher.get_mut(&w) {
                    s.remove(&r);
                    if s.is_empty() {
                        self.of_watcher.remove(&w);
                    }
                }
                downs.push((w, r));
            }
        }
        downs.sort_by_key(|&(_, r)| r);
        let mut partners: Vec<(ProcId, bool)> = Vec::new();
        for q in self.links.remove(&p).unwrap_or_default() {
            if let Some(s) = self.links.get_mut(&q) {
                s.remove(&p);
                if s.is_empty() {
                    self.links.remove(&q);
                }
            }
            partners.push((q, self.trapping.contains(&q)));
        }
        partners.sort();
        self.trapping.remove(&p);
        Ended { name, downs, partners }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(p: ProcId) -> String {
        format!("#{}", p.0)
    }

    #[test]
    fn names_are_unique_and_one_per_process_and_freed_at_death() {
        let mut r = Registry::default();
        let (a, b) = (ProcId(1), ProcId(2));
        r.register("x", a, &d).unwrap();
        r.register("x", a, &d).unwrap(); // idempotent
        assert!(r.register("x", b, &d).is_err());
        assert!(r.register("y", a, &d).is_err());
        assert!(r.register("", b, &d).is_err());
        assert!(r.register(&"n".repeat(MAX_NAME_LEN + 1), b, &d).is_err());
        assert!(r.register("a\nb", b, &d).is_err());
        r.proc_gone(a);
        assert_eq!(r.whereis("x"), None);
        assert_eq!(r.name_of(a), Some("x"));
        r.register("x", b, &d).unwrap();
        let e = r.proc_exited(a);
        assert_eq!(e.name.as_deref(), Some("x"));
        assert_eq!(r.whereis("x"), Some(b));
        assert_eq!(r.name_count(), 1);
    }

    #[test]
    fn monitors_fire_once_and_are_bounded() {
        let mut r = Registry::default();
        let (w, t) = (ProcId(1), ProcId(2));
        let m1 = r.monitor(w, t, 2).unwrap();
        let m2 = r.monitor(w, t, 2).unwrap();
        assert!(matches!(r.monitor(w, t, 2), Err(HubError::Limit(_))));
        assert!(r.demonitor(w, m2));
        assert!(!r.demonitor(w, m2));
        assert!(!r.demonitor(ProcId(9), m1), "only the watcher may demonitor");
        let e = r.proc_exited(t);
        assert_eq!(e.downs, vec![(w, m1)]);
        assert_eq!(r.proc_exited(t), Ended::default());
        // The freed places count again.
        r.monitor(w, ProcId(3), 2).unwrap();
        r.monitor(w, ProcId(3), 2).unwrap();
    }

    #[test]
    fn a_dead_watchers_monitors_are_dropped() {
        let mut r = Registry::default();
        let (w, t) = (ProcId(1), ProcId(2));
        r.monitor(w, t, 10).unwrap();
        r.proc_gone(w);
        assert!(r.proc_exited(t).downs.is_empty());
    }

    #[test]
    fn links_are_symmetric_and_removed_by_either_end() {
        let mut r = Registry::default();
        let (a, b, c) = (ProcId(1), ProcId(2), ProcId(3));
        r.link(a, b, 1).unwrap();
        r.link(b, a, 1).unwrap(); // already linked
        assert!(matches!(r.link(a, c, 1), Err(HubError::Limit(_))));
        assert!(r.linked(b, a));
        r.trap(b, true);
        let e = r.proc_exited(a);
        assert_eq!(e.partners, vec![(b, true)]);
        assert!(!r.linked(b, a));
        r.link(b, c, 1).unwrap();
        r.unlink(c, b);
        assert!(r.proc_exited(b).partners.is_empty());
        assert!(!r.trap(b, false), "trapping is forgotten at exit");
    }
}
