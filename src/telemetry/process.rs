//! Process metrics read from `/proc/self` on each scrape, and build info.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::time::{SystemTime, UNIX_EPOCH};

/// `process_*` metrics as the Go and Rust Prometheus clients name them.
#[derive(Debug)]
pub struct ProcessCollector {
    start_time_seconds: f64,
}

impl ProcessCollector {
    pub fn new() -> Self {
        let start_time_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self { start_time_seconds }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

/// What `/proc/self/stat` and `/proc/self/fd` tell about this process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
}

impl ProcessStats {
    /// Reads the current stats; fields that cannot be read stay zero, so a
    /// scrape never fails because of /proc.
    pub fn read() -> Self {
        let mut stats = Self::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            stats.parse_stat(&stat);
        }
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            stats.max_fds = parse_max_open_files(&limits).unwrap_or(0);
        }
        stats
    }

    fn parse_stat(&mut self, stat: &str) {
        // The command name (field 2) may contain spaces; fields after it are
        // counted from the closing parenthesis.
        let Some(after_comm) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return;
        };
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        // Field numbers from proc(5), minus the 3 fields before `after_comm`'s first one.
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let ticks = clock_ticks_per_second();
        let utime = field(14).unwrap_or(0);
        let stime = field(15).unwrap_or(0);
        self.cpu_seconds = (utime + stime) as f64 / ticks;
        self.virtual_bytes = field(23).unwrap_or(0);
        self.resident_bytes = field(24).unwrap_or(0) * page_size();
    }
}

fn parse_max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

// Linux fixes USER_HZ at 100 and the page size at 4 KiB on the platforms we
// ship for; reading them would need libc.
fn clock_ticks_per_second() -> f64 {
    100.0
}

fn page_size() -> u64 {
    4096
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = ProcessStats::read();
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                stats.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stats.virtual_bytes as f64,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                stats.open_fds as f64,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                stats.max_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                self.start_time_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let stats = ProcessStats::read();
        assert!(stats.resident_bytes > 0);
        assert!(stats.open_fds > 0);
        assert!(stats.max_fds >= stats.open_fds);
    }

    #[test]
    fn parses_stat_with_spaces_in_command_name() {
        let mut stats = ProcessStats::default();
        let line = "42 (my (odd) cmd) S 1 1 1 0 -1 0 0 0 0 0 250 150 0 0 20 0 4 0 100 8192000 300";
        stats.parse_stat(line);
        assert_eq!(stats.cpu_seconds, 4.0);
        assert_eq!(stats.virtual_bytes, 8_192_000);
        assert_eq!(stats.resident_bytes, 300 * 4096);
    }
}
