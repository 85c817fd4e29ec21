//! CPU per unit of work (a round, a call) of the parties of a measurement:
//! the server process, two threads of this process, and the rest of the machine,
//! so a figure taken on a shared 2-core machine can be judged.

use super::procfs::{cpu_ticks, system_ticks};

/// CPU ticks of the server, the responders' thread, the clients' thread, this
/// whole process and the whole machine at one moment.
#[derive(Clone, Copy)]
pub struct Cpu {
    server: u64,
    responders: u64,
    clients: u64,
    bench: u64,
    busy: u64,
    total: u64,
}

/// CPU use over a measurement: ms per unit of each party, and how many cores
/// other processes on the machine kept busy meanwhile.
pub struct Usage {
    pub server: f64,
    pub responders: f64,
    pub clients: f64,
    pub others: f64,
}

/// Where to read each party's ticks (`/proc/.../stat` paths) and how to scale them.
pub struct CpuMeter {
    pub server: String,
    pub responders: String,
    pub clients: String,
    /// Clock ticks per second.
    pub hz: f64,
    /// Cores of the machine.
    pub cores: f64,
}

impl CpuMeter {
    pub fn sample(&self) -> Cpu {
        let (busy, total) = system_ticks();
        Cpu {
            server: cpu_ticks(&self.server),
            responders: cpu_ticks(&self.responders),
            clients: cpu_ticks(&self.clients),
            bench: cpu_ticks("/proc/self/stat"),
            busy,
            total,
        }
    }

    /// The use since `before`, divided over `units`.
    pub fn per(&self, before: Cpu, units: f64) -> Usage {
        let now = self.sample();
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
        let ms = |a: u64, b: u64| d(a, b) / self.hz * 1e3 / units.max(1.0);
        // /proc/stat counts every CPU: its total grows `cores` times as fast as a
        // process's clock.
        let ours = d(now.server, before.server) + d(now.bench, before.bench);
        let wall = d(now.total, before.total) / self.cores.max(1.0);
        Usage {
            server: ms(now.server, before.server),
            responders: ms(now.responders, before.responders),
            clients: ms(now.clients, before.clients),
            others: ((d(now.busy, before.busy) - ours) / wall.max(1.0)).max(0.0),
        }
    }
}
