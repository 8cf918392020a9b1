//! [`ServerProcess`]: a server the harness started, on a loopback port, stopped by PID when
//! dropped (also when the run fails or panics).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::BenchError;
use crate::load::http::Connection;
use crate::server::HEALTH_PATH;

/// How long a server may take to answer its first health check (uvicorn importing `FastAPI` is
/// the slowest, about a second).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Name in messages and the log file's name.
    pub name: String,
    /// The program.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub envs: Vec<(String, String)>,
    /// Run it on this core only (through `taskset`).
    pub core: Option<usize>,
    /// How to tell it is ready.
    pub readiness: Readiness,
}

/// How the harness tells that a server is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// `GET /__bench__/health` answers 200.
    Http,
    /// `PING` answers `+PONG` (Redis).
    Redis,
}

/// A running server process.
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    child: Child,
    address: SocketAddr,
    log: PathBuf,
}

/// A loopback port free right now.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|error| BenchError::Load(format!("binding a loopback port: {error}")))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| BenchError::Load(format!("reading a loopback port: {error}")))
}

impl ServerProcess {
    /// Starts `launch` (its output going to `{log_dir}/{name}.log`), listening on `port`, and
    /// waits until it is ready.
    ///
    /// # Errors
    /// When it cannot be started, exits, or is not ready within 30 s; the error holds the end
    /// of its log.
    pub async fn start(
        launch: &Launch,
        port: u16,
        log_dir: &Path,
    ) -> Result<ServerProcess, BenchError> {
        std::fs::create_dir_all(log_dir).map_err(|e| BenchError::io(log_dir, e))?;
        let log = log_dir.join(format!("{}.log", launch.name));
        let file = std::fs::File::create(&log).map_err(|e| BenchError::io(&log, e))?;
        let err_file = file.try_clone().map_err(|e| BenchError::io(&log, e))?;
        let mut command = match launch.core {
            Some(core) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(core.to_string()).arg(&launch.program);
                command
            }
            None => Command::new(&launch.program),
        };
        command
            .args(&launch.args)
            .envs(launch.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file);
        let child = command.spawn().map_err(|error| BenchError::ServerStart {
            name: launch.name.clone(),
            reason: format!("{}: {error}", launch.program.to_string_lossy()),
        })?;
        let mut process = ServerProcess {
            name: launch.name.clone(),
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        process.wait_ready(launch.readiness).await?;
        Ok(process)
    }

    async fn wait_ready(&mut self, readiness: Readiness) -> Result<(), BenchError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(&format!("it exited ({status})")));
            }
            let ready = match readiness {
                Readiness::Http => http_ready(self.address).await,
                Readiness::Redis => redis_ready(self.address),
            };
            if ready {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.failure(&format!("not ready within {START_TIMEOUT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn failure(&self, what: &str) -> BenchError {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        BenchError::ServerStart {
            name: self.name.clone(),
            reason: format!(
                "{what}; the end of {}:\n{}",
                self.log.display(),
                tail.join("\n")
            ),
        }
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where it listens.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The CPU time it has used so far (see [`crate::measure::cpu_time`]).
    #[must_use]
    pub fn cpu_time(&self) -> Duration {
        crate::measure::cpu_time(self.pid()).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn http_ready(address: SocketAddr) -> bool {
    match Connection::open(address).await {
        Ok(mut connection) => connection
            .get(HEALTH_PATH, "health")
            .await
            .is_ok_and(|status| status.is_success()),
        Err(_) => false,
    }
}

fn redis_ready(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
