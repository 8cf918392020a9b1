//! [`Machine`]: what the results were measured on, and pinning the server and the client to
//! cores of their own.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// Which cores the servers and the load client run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinning {
    /// Every server process (and `redis-server`) runs on this core.
    pub server_core: usize,
    /// The load client (this process) runs on this core.
    pub client_core: usize,
}

/// The machine a run was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu: String,
    /// Cores this process may run on.
    pub cores: usize,
    /// The kernel release.
    pub kernel: String,
    /// Cores the servers and the client were pinned to, if they were.
    pub pinning: Option<Pinning>,
}

impl Machine {
    /// Reads the machine's description (not pinned yet: see [`Machine::pin_client`]).
    pub fn describe() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(
            |_| "unknown".to_owned(),
            |release| release.trim().to_owned(),
        );
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            kernel,
            pinning: None,
        }
    }

    /// One line for the report.
    #[must_use]
    pub fn summary(&self) -> String {
        let pinning = match self.pinning {
            Some(p) => format!(
                "servers pinned to core {}, the load client to core {}",
                p.server_core, p.client_core
            ),
            None => "not pinned".to_owned(),
        };
        format!(
            "{} cores ({}), Linux {}; {pinning}",
            self.cores, self.cpu, self.kernel
        )
    }

    /// Pins this process (the load client) to its own core, leaving core 0 for the servers,
    /// when the machine has at least two cores and `taskset` is there; records it. Threads
    /// started later inherit the pinning, so call it before building the runtime.
    pub fn pin_client(&mut self) -> Option<Pinning> {
        if self.cores < 2 {
            return None;
        }
        let pinning = Pinning {
            server_core: 0,
            client_core: 1,
        };
        let pinned = Command::new("taskset")
            .args(["-a", "-p", "-c"])
            .arg(pinning.client_core.to_string())
            .arg(std::process::id().to_string())
            .output()
            .is_ok_and(|output| output.status.success());
        self.pinning = pinned.then_some(pinning);
        self.pinning
    }
}
