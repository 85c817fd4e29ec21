//! Readings from `/proc` (Linux): a process's RSS and CPU ticks, the machine's
//! busy ticks, this process's open-files limit. A reading that fails is 0 or
//! `None`: a bench prints it rather than stopping halfway.

/// Resident set size of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The `stat` file of process `pid`, for [`cpu_ticks`].
pub fn stat_of(pid: u32) -> String {
    format!("/proc/{pid}/stat")
}

/// The `stat` file of thread `tid` of this process, for [`cpu_ticks`].
pub fn thread_stat(tid: u32) -> String {
    format!("/proc/self/task/{tid}/stat")
}

/// utime + stime (fields 14 and 15) of a `/proc/.../stat` file, in clock ticks.
pub fn cpu_ticks(stat: &str) -> u64 {
    std::fs::read_to_string(stat)
        .ok()
        .and_then(|s| {
            // The command name in field 2 may hold spaces; count after its ')'.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// The id of the calling thread, from the `/proc/thread-self` link.
pub fn thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Clock ticks per second of `/proc/.../stat` (USER_HZ; 100 when unknown).
pub fn ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The soft limit on open files of this process (inherited by its children).
pub fn nofile_soft() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Busy and total jiffies of all CPUs, from the first line of `/proc/stat`.
pub fn system_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle.min(total), total)
}
