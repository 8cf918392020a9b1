//! Server CPU time, read from `/proc`: the time every thread of a process has spent on a CPU.

use std::io;
use std::path::Path;
use std::time::Duration;

/// CPU time used so far by every live thread of process `pid`, in nanoseconds where the
/// kernel keeps scheduler statistics (`/proc/<pid>/task/<tid>/schedstat`), else in clock ticks
/// (`/proc/<pid>/stat`, 10 ms each).
///
/// # Errors
/// When the process does not exist or `/proc` cannot be read.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let mut total = Duration::ZERO;
    let mut any = false;
    for task in std::fs::read_dir(&tasks)? {
        let schedstat = task?.path().join("schedstat");
        // A thread may exit between listing and reading.
        if let Ok(text) = std::fs::read_to_string(schedstat)
            && let Some(ns) = text.split_whitespace().next().and_then(|n| n.parse().ok())
        {
            total += Duration::from_nanos(ns);
            any = true;
        }
    }
    if any { Ok(total) } else { ticks(pid) }
}

fn ticks(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> u64 { fields.get(n).and_then(|f| f.parse().ok()).unwrap_or(0) };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    Ok(Duration::from_millis((field(11) + field(12)) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_grows_with_work() {
        let pid = std::process::id();
        let before = cpu_time(pid).expect("our own /proc entry");
        let mut x = 1u64;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        let after = cpu_time(pid).expect("our own /proc entry");
        assert!(after > before, "{before:?} then {after:?}");
    }

    #[test]
    fn a_missing_process_is_an_error() {
        assert!(cpu_time(u32::MAX).is_err());
    }
}
