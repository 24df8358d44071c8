//! CPU time and peak memory of a process, from /proc.

/// CPU time of `pid`, all its threads, in seconds (None once it has exited):
/// the scheduler's exact on-CPU time (`/proc/PID/task/*/schedstat`), or
/// utime + stime where that is missing. utime and stime come in clock ticks
/// (10 ms), which rounded each of 32 lightly loaded channel processes to 0.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    schedstat_seconds(pid).or_else(|| tick_seconds(pid))
}

fn schedstat_seconds(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let s = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    (ns > 0).then_some(ns as f64 / 1e9)
}

fn tick_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// Peak resident set (VmHWM) of `pid` in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Resident set now (VmRSS) of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_resolves_a_few_milliseconds() {
        let thread_cpu = || {
            let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime fills the timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
            t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
        };
        let me = std::process::id();
        let before = super::cpu_seconds(me).unwrap();
        let start = thread_cpu();
        while thread_cpu() - start < 0.005 {
            std::hint::black_box(0u64);
        }
        // The scheduler adds a running task's time when it stops running.
        std::thread::sleep(std::time::Duration::from_millis(1));
        let spent = super::cpu_seconds(me).unwrap() - before;
        // Clock ticks (10 ms) would often read 0 here.
        assert!(spent >= 0.004 && spent < 1.0, "{spent}");
    }
}
