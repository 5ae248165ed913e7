//! A stopwatch for `iter_custom` benchmarks that measures wall time (the default) or, with
//! `L2BTC_BENCH_CLOCK=cpu`, the CPU time of the calling thread (`/proc/thread-self/schedstat`, in
//! nanoseconds). CPU time makes single-threaded figures comparable on a shared, loaded machine (a
//! thread waiting for a core does not count); multi-threaded figures are always wall time.
//!
//! The kernel refreshes a running thread's CPU time at scheduler ticks, so one reading can lag by a
//! tick (1–4 ms): use iterations of 100 ms or more, as the UTXO benchmarks do.

use std::fs;
use std::time::{Duration, Instant};

/// Environment variable choosing the clock: `cpu` for thread CPU time, anything else for wall time.
pub const CLOCK_ENV: &str = "L2BTC_BENCH_CLOCK";

/// CPU time the calling thread has run, in nanoseconds; `None` where the kernel does not say.
pub fn thread_cpu_ns() -> Option<u64> {
    let text = fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Whether `L2BTC_BENCH_CLOCK=cpu` asks for thread CPU time (and the kernel offers it).
pub fn cpu_clock() -> bool {
    std::env::var(CLOCK_ENV).is_ok_and(|v| v == "cpu") && thread_cpu_ns().is_some()
}

/// A started measurement.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    wall: Instant,
    cpu: Option<u64>,
}

impl Stopwatch {
    /// Starts measuring wall time, or this thread's CPU time under `L2BTC_BENCH_CLOCK=cpu`.
    pub fn start() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: if cpu_clock() { thread_cpu_ns() } else { None },
        }
    }

    /// Starts measuring wall time whatever the environment says (multi-threaded work).
    pub fn wall() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: None,
        }
    }

    /// Time since [`Stopwatch::start`] on the chosen clock.
    pub fn elapsed(&self) -> Duration {
        match (self.cpu, self.cpu.and(thread_cpu_ns())) {
            (Some(start), Some(now)) => Duration::from_nanos(now.saturating_sub(start)),
            _ => self.wall.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let Some(before) = thread_cpu_ns() else {
            return; // not Linux
        };
        let mut x = 0u64;
        let wall = Instant::now();
        while wall.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = thread_cpu_ns().unwrap_or(before);
        assert!(after > before);
    }

    #[test]
    fn wall_stopwatch_measures_wall_time() {
        let w = Stopwatch::wall();
        std::thread::sleep(Duration::from_millis(5));
        assert!(w.elapsed() >= Duration::from_millis(5));
    }
}
