//! `Display` of a snapshot: plain-text tables.

use std::fmt;

use super::{ExitInfo, ProcId, RunState, Snapshot, StartedBy};

/// A duration in microseconds, short: `850us`, `12.3ms`, `4.20s`, `3m07s`.
pub(crate) fn dur(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1_000..=999_999 => format!("{:.1}ms", us as f64 / 1e3),
        1_000_000..=59_999_999 => format!("{:.2}s", us as f64 / 1e6),
        _ => format!("{}m{:02}s", us / 60_000_000, (us / 1_000_000) % 60),
    }
}

/// `2026-12-02 13:50:01.234 UTC` from microseconds since the epoch.
pub(crate) fn utc(us: u64) -> String {
    let secs = us / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        (us / 1000) % 1000
    )
}

pub(crate) fn state(s: &RunState) -> String {
    match s {
        RunState::Starting => "starting".into(),
        RunState::Running => "running".into(),
        RunState::Exiting => "exiting".into(),
        RunState::Ended(ExitInfo::Exited(c)) => format!("exited {c}"),
        RunState::Ended(ExitInfo::Signaled(s)) => format!("killed by signal {s}"),
    }
}

fn method(m: StartedBy) -> &'static str {
    match m {
        StartedBy::Root => "root",
        StartedBy::Spawn => "spawn",
        StartedBy::ForkServer => "forkserver",
        StartedBy::Fork => "fork",
    }
}

/// Writes rows as columns padded to their widest cell.
fn table(f: &mut fmt::Formatter<'_>, head: &[&str], rows: &[Vec<String>]) -> fmt::Result {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let line = |f: &mut fmt::Formatter<'_>, cells: Vec<&str>| -> fmt::Result {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            s.push(' ');
            s.push_str(c);
            if i + 1 < cells.len() {
                let pad = w[i].saturating_sub(c.chars().count());
                s.extend(std::iter::repeat_n(' ', pad + 1));
            }
        }
        writeln!(f, "{}", s.trim_end())
    };
    line(f, head.to_vec())?;
    for r in rows {
        line(f, r.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

impl Snapshot {
    fn short(&self, p: ProcId) -> String {
        match self.process(p) {
            Some(r) => format!("{}({})", r.name, r.pid),
            None => format!("#{}", p.0),
        }
    }
}

impl fmt::Display for Snapshot {
    /// Tables of processes, objects and pools, then the waits (and any deadlock).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "multiproc snapshot, {} (taken by the hub)", utc(self.taken_at_us))?;
        writeln!(f, "PROCESSES ({})", self.processes.len())?;
        let rows: Vec<Vec<String>> = self
            .processes
            .iter()
            .map(|p| {
                vec![
                    p.pid.to_string(),
                    p.name.clone(),
                    if p.proc == p.parent {
                        "-".into()
                    } else {
                        self.short(p.parent)
                    },
                    state(&p.state),
                    method(p.started_by).into(),
                    if p.daemon { "yes" } else { "no" }.into(),
                    if p.mailbox_bytes > 0 {
                        format!("{} ({} B)", p.mailbox, p.mailbox_bytes)
                    } else {
                        p.mailbox.to_string()
                    },
                ]
            })
            .collect();
        table(
            f,
            &["PID", "NAME", "PARENT", "STATE", "START", "DAEMON", "MAILBOX"],
            &rows,
        )?;
        writeln!(f, "OBJECTS ({})", self.objects.len())?;
        let rows: Vec<Vec<String>> = self
            .objects
            .iter()
            .map(|o| {
                let list = |v: &[ProcId]| {
                    if v.is_empty() {
                        "-".to_owned()
                    } else {
                        v.iter().map(|p| self.short(*p)).collect::<Vec<_>>().join(" ")
                    }
                };
                let waiters = if o.waiters.is_empty() {
                    "-".to_owned()
                } else {
                    o.waiters
                        .iter()
                        .map(|w| format!("{} {} {}", self.short(w.proc), w.op, dur(w.waited_us)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                vec![
                    format!("#{}", o.id.0 & 0xffff_ffff),
                    o.kind.clone(),
                    self.short(o.creator),
                    list(&o.held_by),
                    o.depth.map_or("-".into(), |d| d.to_string()),
                    o.unfinished.map_or("-".into(), |d| d.to_string()),
                    waiters,
                    if o.note.is_empty() { "-".into() } else { o.note.clone() },
                ]
            })
            .collect();
        table(
            f,
            &[
                "ID",
                "KIND",
                "CREATOR",
                "HELD BY",
                "DEPTH",
                "UNFINISHED",
                "WAITERS",
                "NOTE",
            ],
            &rows,
        )?;
        if !self.pools.is_empty() {
            writeln!(f, "POOLS ({})", self.pools.len())?;
            let rows: Vec<Vec<String>> = self
                .pools
                .iter()
                .map(|p| {
                    vec![
                        format!("{}/{}", self.short(p.owner), p.pool),
                        p.workers.len().to_string(),
                        p.queued.to_string(),
                        p.running.to_string(),
                        p.done.to_string(),
                        p.replaced.to_string(),
                        p.workers.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(" "),
                    ]
                })
                .collect();
            table(
                f,
                &[
                    "POOL",
                    "WORKERS",
                    "QUEUED",
                    "RUNNING",
                    "DONE",
                    "REPLACED",
                    "WORKER PIDS",
                ],
                &rows,
            )?;
        }
        writeln!(f, "WAITS")?;
        let g = self.waits();
        for line in g.to_string().lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_a_known_instant() {
        // 2026-12-02 13:50:01.234 UTC
        assert_eq!(utc(1_796_219_401_234_000), "2026-12-02 13:50:01.234 UTC");
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(dur(850), "850us");
        assert_eq!(dur(12_340), "12.3ms");
        assert_eq!(dur(4_200_000), "4.20s");
        assert_eq!(dur(187_000_000), "3m07s");
    }
}
