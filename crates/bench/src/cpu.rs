//! CPU time of processes from /proc, so the report can say who used the two cores during a
//! measured window: the server, or the load generator itself.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds of a process (`None` for "self" is never the case on Linux).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the man page (utime, stime) are 11 and 12 after the name and state.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

/// Average cores used by the server (`pid`) and by this load generator between two instants.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub server: Option<f64>,
    pub loadgen: Option<f64>,
}

/// The average of equally long windows.
pub fn mean(samples: &[CpuUse]) -> CpuUse {
    let average = |values: Vec<Option<f64>>| -> Option<f64> {
        let values: Option<Vec<f64>> = values.into_iter().collect();
        values.filter(|v| !v.is_empty()).map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };
    CpuUse {
        server: average(samples.iter().map(|s| s.server).collect()),
        loadgen: average(samples.iter().map(|s| s.loadgen).collect()),
    }
}

/// Samples at `start` and at `end` (both in the future or now), without blocking the caller.
pub fn sample_window(pid: u32, start: Instant, end: Instant) -> tokio::task::JoinHandle<CpuUse> {
    tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        let t0 = Instant::now();
        let (s0, l0) = (cpu_seconds(Some(pid)), cpu_seconds(None));
        tokio::time::sleep_until(end.into()).await;
        let elapsed = t0.elapsed().max(Duration::from_millis(1)).as_secs_f64();
        let (s1, l1) = (cpu_seconds(Some(pid)), cpu_seconds(None));
        let cores = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / elapsed);
        CpuUse { server: cores(s0, s1), loadgen: cores(l0, l1) }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_cpu_time() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(super::cpu_seconds(None).is_some());
    }
}
