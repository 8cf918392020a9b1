//! Real `memcached` processes for tests: started on free loopback ports, waited for, and
//! stopped by PID when dropped (also when the test panics).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `memcached` process.
#[derive(Debug)]
pub struct MemcachedServer {
    child: Option<Child>,
    port: u16,
    /// Arguments added to the defaults (`-C`: no compare-and-swap).
    extra: Vec<String>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a local address").port()
}

/// Sends one text-protocol line and reads the first line of the reply.
pub fn command(port: u16, line: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("{line}\r\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    Ok(reply.trim_end().to_owned())
}

impl MemcachedServer {
    /// A fresh server (64 MB, loopback only).
    pub fn start() -> MemcachedServer {
        MemcachedServer::start_with(&[])
    }

    /// A fresh server with `extra` arguments after the defaults (e.g. `-C`, no CAS).
    pub fn start_with(extra: &[&str]) -> MemcachedServer {
        let mut server = MemcachedServer {
            child: None,
            port: free_port(),
            extra: extra.iter().map(|&arg| arg.to_owned()).collect(),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        if Command::new("memcached").arg("-V").output().is_err() {
            panic!(
                "`memcached` is not installed: run `bash scripts/test-all.sh`, which installs it"
            );
        }
        let child = Command::new("memcached")
            .args(["-l", "127.0.0.1", "-p", &self.port.to_string(), "-U", "0"])
            .args(["-m", "64", "-c", "1024", "-u", "root"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("memcached starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match command(self.port, "version") {
                Ok(reply) if reply.starts_with("VERSION") => return,
                _ if Instant::now() > deadline => {
                    panic!("memcached on {} never answered", self.port)
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `memcache://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("memcache://127.0.0.1:{}", self.port)
    }

    /// Kills the process (SIGKILL) and waits for it: memcached is gone, as after a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port (after [`kill`](Self::kill)), empty.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// How many items the server holds (`stats`' `curr_items`).
    pub fn items(&self) -> u64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("a timeout");
        stream.write_all(b"stats\r\n").expect("writes");
        for line in BufReader::new(stream).lines() {
            let line = line.expect("reads");
            if let Some(count) = line.strip_prefix("STAT curr_items ") {
                return count.trim().parse().expect("a number");
            }
            if line == "END" {
                break;
            }
        }
        panic!("no curr_items in stats")
    }
}

impl Drop for MemcachedServer {
    fn drop(&mut self) {
        self.kill();
    }
}
