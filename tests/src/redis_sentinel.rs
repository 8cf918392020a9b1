//! A real Redis Sentinel setup for tests: a master, a replica (`--replicaof`) and one sentinel
//! (`redis-server <conf> --sentinel`, so no `redis-sentinel` package is needed) with a quorum of
//! one and short timeouts, on free loopback ports; every process is stopped by PID when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::{RedisServer, command};

/// The master's name in the sentinel's configuration.
pub const MASTER_NAME: &str = "mymaster";

/// A master, its replica and a sentinel watching them.
#[derive(Debug)]
pub struct RedisSentinel {
    sentinel: Option<Child>,
    sentinel_port: u16,
    dir: PathBuf,
    servers: [RedisServer; 2],
}

impl RedisSentinel {
    /// Starts the master, the replica (waiting until it has synced) and the sentinel (waiting
    /// until it knows the replica, so that `SENTINEL FAILOVER` has one to promote).
    pub fn start() -> RedisSentinel {
        Self::start_with_password(None)
    }

    /// As [`start`](Self::start), with both servers requiring `password` (`requirepass`, and
    /// `masterauth` for replication), which the sentinel is given (`sentinel auth-pass`).
    pub fn start_with_password(password: Option<&str>) -> RedisSentinel {
        let auth: Vec<&str> = password
            .map(|password| vec!["--requirepass", password, "--masterauth", password])
            .unwrap_or_default();
        let master = RedisServer::start_with(&auth);
        let master_port = master.port().to_string();
        let mut replica_args = auth.clone();
        replica_args.extend(["--replicaof", "127.0.0.1", &master_port]);
        let replica = RedisServer::start_with(&replica_args);
        wait_until("the replica syncs with the master", || {
            array(replica.port(), password, "INFO replication")
                .is_ok_and(|info| info.concat().contains("master_link_status:up"))
        });
        let sentinel_port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "traffik-sentinel-{}-{sentinel_port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let config = dir.join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {sentinel_port}\n\
                 bind 127.0.0.1\n\
                 protected-mode no\n\
                 daemonize no\n\
                 dir {dir}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n\
                 {auth_pass}",
                dir = dir.display(),
                master = master.port(),
                auth_pass = password
                    .map(|password| format!("sentinel auth-pass {MASTER_NAME} {password}\n"))
                    .unwrap_or_default(),
            ),
        )
        .expect("the sentinel's configuration is written");
        // The sentinel rewrites its configuration file, so it is one it may write.
        let sentinel = Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel starts (bash scripts/test-all.sh installs it)");
        let setup = RedisSentinel {
            sentinel: Some(sentinel),
            sentinel_port,
            dir,
            servers: [master, replica],
        };
        wait_until("the sentinel knows the replica", || {
            setup.replicas().iter().any(|flags| flags == "slave")
        });
        setup
    }

    /// The sentinel's URL.
    pub fn sentinel_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.sentinel_port)
    }

    /// The sentinel's port.
    pub fn sentinel_port(&self) -> u16 {
        self.sentinel_port
    }

    /// The port of the master the sentinel names now (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    pub fn master_port(&self) -> Option<u16> {
        let reply = array(
            self.sentinel_port,
            None,
            &format!("SENTINEL GET-MASTER-ADDR-BY-NAME {MASTER_NAME}"),
        )
        .ok()?;
        reply.get(1)?.parse().ok()
    }

    /// The server listening on `port` (the master or the replica).
    pub fn server(&self, port: u16) -> &RedisServer {
        self.servers
            .iter()
            .find(|server| server.port() == port)
            .expect("one of the two servers")
    }

    /// Kills the server on `port` (SIGKILL), as a crash would.
    pub fn kill(&mut self, port: u16) {
        self.servers
            .iter_mut()
            .filter(|server| server.port() == port)
            .for_each(RedisServer::kill);
    }

    /// Waits (at most 30 s) until the sentinel names a master other than the one on `port`
    /// (after it failed over by itself); returns its port.
    pub fn wait_for_new_master(&self, port: u16) -> u16 {
        let new = self.other(port).port();
        wait_until("the sentinel names a new master", || {
            self.master_port() == Some(new)
        });
        new
    }

    /// The server that is not on `port`.
    pub fn other(&self, port: u16) -> &RedisServer {
        self.servers
            .iter()
            .find(|server| server.port() != port)
            .expect("one of the two servers")
    }

    /// Forces a failover (`SENTINEL FAILOVER`) and waits (at most 30 s) until the sentinel
    /// names the other server; returns its port.
    pub fn failover(&self) -> u16 {
        let old = self.master_port().expect("the sentinel names a master");
        let reply = command(
            self.sentinel_port,
            &format!("SENTINEL FAILOVER {MASTER_NAME}"),
        )
        .expect("the sentinel answers");
        assert_eq!(reply, "+OK", "SENTINEL FAILOVER refused");
        let new = self.other(old).port();
        wait_until("the sentinel names the new master", || {
            self.master_port() == Some(new)
        });
        new
    }

    /// The flags of each replica the sentinel knows (`slave`, `slave,s_down`…).
    fn replicas(&self) -> Vec<String> {
        let Ok(reply) = array(
            self.sentinel_port,
            None,
            &format!("SENTINEL REPLICAS {MASTER_NAME}"),
        ) else {
            return Vec::new();
        };
        // A flat list of each replica's field names and values, replicas one after the other.
        reply
            .windows(2)
            .filter(|pair| pair[0] == "flags")
            .map(|pair| pair[1].clone())
            .collect()
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        if let Some(mut sentinel) = self.sentinel.take() {
            let _ = sentinel.kill();
            let _ = sentinel.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `done` every 50 ms for at most 30 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port free now on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a loopback port")
        .port()
}

/// Sends one inline command (after `AUTH password` when given) and reads its reply, flattened
/// to its bulk and simple strings and integers (nested arrays are read in order).
pub fn array(port: u16, password: Option<&str>, line: &str) -> std::io::Result<Vec<String>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    if let Some(password) = password {
        stream.write_all(format!("AUTH {password}\r\n").as_bytes())?;
    }
    stream.write_all(format!("{line}\r\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    if password.is_some() {
        let mut accepted = String::new();
        reader.read_line(&mut accepted)?;
        if !accepted.starts_with("+OK") {
            return Err(std::io::Error::other(accepted.trim_end().to_owned()));
        }
    }
    let mut items = Vec::new();
    let mut pending = 1_i64;
    while pending > 0 {
        pending -= 1;
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        let (kind, rest) = header.split_at(header.len().min(1));
        match kind {
            "*" => pending += rest.parse::<i64>().unwrap_or(0).max(0),
            "$" => {
                let length: i64 = rest.parse().unwrap_or(-1);
                if length >= 0 {
                    let mut body = vec![0; usize::try_from(length).unwrap_or(0) + 2];
                    reader.read_exact(&mut body)?;
                    body.truncate(body.len() - 2);
                    items.push(String::from_utf8_lossy(&body).into_owned());
                }
            }
            "-" => {
                return Err(std::io::Error::other(rest.to_owned()));
            }
            _ => items.push(rest.to_owned()),
        }
    }
    Ok(items)
}
