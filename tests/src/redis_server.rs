//! Real `redis-server` processes for tests: started on free loopback ports, waited for, and
//! stopped by PID when dropped (also when the test panics).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `redis-server` process.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// Runs under callgrind (`start_under_callgrind`).
    callgrind: bool,
}

/// A port free now on 127.0.0.1, with `port + 10000` (the cluster bus) free too.
fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("a local address").port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port pair found");
}

fn binary(name: &str) -> &str {
    if Command::new(name).arg("--version").output().is_err() {
        panic!("`{name}` is not installed: run `bash scripts/test-all.sh`, which installs it");
    }
    name
}

/// Sends one inline command and reads the reply's first line (and a bulk body if any).
pub fn command(port: u16, line: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("{line}\r\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    if let Some(length) = first.strip_prefix('$') {
        let length: i64 = length.trim().parse().unwrap_or(-1);
        if length < 0 {
            return Ok(String::new());
        }
        let mut body = vec![0; usize::try_from(length).unwrap_or(0) + 2];
        reader.read_exact(&mut body)?;
        body.truncate(body.len() - 2);
        return Ok(String::from_utf8_lossy(&body).into_owned());
    }
    Ok(first.trim_end().to_owned())
}

impl RedisServer {
    /// A fresh single node (no persistence).
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// A node started with extra arguments (e.g. `--requirepass`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        Self::start_as(extra, false)
    }

    /// A node running under valgrind's callgrind, for counting the instructions Redis executes
    /// (`zero_instructions`, `instructions`): deterministic where CPU time is noisy.
    pub fn start_under_callgrind() -> RedisServer {
        Self::start_as(&[], true)
    }

    fn start_as(extra: &[&str], callgrind: bool) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("traffik-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            callgrind,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut process = if self.callgrind {
            let mut valgrind = Command::new("valgrind");
            valgrind
                .arg("--tool=callgrind")
                .arg(format!(
                    "--callgrind-out-file={}/callgrind.out.%p",
                    self.dir.display()
                ))
                .arg(binary("redis-server"));
            valgrind
        } else {
            Command::new(binary("redis-server"))
        };
        let child = process
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--loglevel", "warning", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match command(self.port, "PING") {
                Ok(reply) if reply == "+PONG" || reply.starts_with("-NOAUTH") => return,
                _ if Instant::now() > deadline => {
                    panic!("redis-server on {} never answered", self.port)
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Redis's clock (ms since the Unix epoch), by `TIME` on a connection of its own.
    pub fn time_ms(&self) -> u64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("a timeout");
        stream.write_all(b"TIME\r\n").expect("sends TIME");
        // `*2`, then two bulk strings: seconds and microseconds.
        let mut reader = BufReader::new(stream);
        let mut numbers = Vec::new();
        let mut line = String::new();
        while numbers.len() < 2 {
            line.clear();
            reader.read_line(&mut line).expect("a reply line");
            if let Ok(number) = line.trim().parse::<u64>() {
                numbers.push(number);
            }
        }
        numbers[0] * 1_000 + numbers[1] / 1_000
    }

    /// Sets callgrind's counts to zero (a server from `start_under_callgrind`).
    pub fn zero_instructions(&self) {
        self.callgrind_control("-z");
    }

    /// The instructions Redis executed since `zero_instructions` (a server from
    /// `start_under_callgrind`), from a dump callgrind writes now.
    pub fn instructions(&self) -> u64 {
        let dumps = || -> Vec<PathBuf> {
            std::fs::read_dir(&self.dir)
                .map(|entries| {
                    entries
                        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                        .filter(|path| path.to_string_lossy().contains("callgrind.out"))
                        .collect()
                })
                .unwrap_or_default()
        };
        for dump in dumps() {
            let _ = std::fs::remove_file(dump);
        }
        self.callgrind_control("-d");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for dump in dumps() {
                let text = std::fs::read_to_string(&dump).unwrap_or_default();
                if let Some(total) = text
                    .lines()
                    .find_map(|line| {
                        line.strip_prefix("totals:")
                            .or(line.strip_prefix("summary:"))
                    })
                    .and_then(|total| total.split_whitespace().next())
                    .and_then(|total| total.parse().ok())
                {
                    return total;
                }
            }
            assert!(Instant::now() < deadline, "callgrind wrote no dump");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn callgrind_control(&self, flag: &str) {
        let status = Command::new("callgrind_control")
            .arg(flag)
            .arg(self.pid().to_string())
            .stdout(Stdio::null())
            .status()
            .expect("callgrind_control runs");
        assert!(status.success(), "callgrind_control {flag} failed");
    }

    /// The process id (for `/proc/<pid>/stat`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the process (SIGKILL) and waits for it: Redis is gone, as after a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process (SIGSTOP): Redis hangs, its connections open and unanswered, as a
    /// server stuck in a long command or a frozen VM.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Resumes a [`freeze`](Self::freeze)d process (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Starts the process again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// How many times `command` (e.g. `evalsha`) has run, from `INFO commandstats`.
    pub fn calls(&self, command_name: &str) -> u64 {
        let info = command(self.port, "INFO commandstats").expect("INFO answers");
        let prefix = format!("cmdstat_{command_name}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|calls| calls.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three primaries (no replicas), built with `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled nodes and joins them, waiting until the cluster is ok.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let status = Command::new(binary("redis-cli"))
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            loop {
                let info = command(node.port(), "CLUSTER INFO").unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster never became ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster { nodes }
    }

    /// The seed URLs.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}
