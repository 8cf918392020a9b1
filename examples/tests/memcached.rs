//! The memcached example end to end: two instances of the example's binary sharing one real
//! memcached admit exactly 5 of `GET /` between them, with the quickstart's body and headers.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use traffik_tests::memcached_server::MemcachedServer;

/// The example's binary, next to this test's (`target/<profile>/examples/`); `cargo test`
/// builds it with the examples, and a run of this test alone builds it here.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("memcached{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "traffik-examples", "--example", "memcached"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the example builds");
    }
    path
}

/// One instance of the example, stopped (by PID) when dropped.
struct Instance {
    child: Child,
    address: String,
}

impl Instance {
    fn start(binary: &PathBuf, memcached: &str) -> Instance {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let child = Command::new(binary)
            .env("TRAFFIK_ADDR", &address)
            .env("MEMCACHED_URL", memcached)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example starts");
        let instance = Instance { child, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&instance.address).is_err() {
            assert!(Instant::now() < deadline, "the example never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        instance
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_one_memcached_admit_exactly_five() {
    let server = MemcachedServer::start();
    let binary = example_binary();
    let instances = [
        Instance::start(&binary, &server.url()),
        Instance::start(&binary, &server.url()),
    ];
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for round in 0..10 {
        let instance = &instances[round % 2];
        let response = client
            .get(format!("http://{}/", instance.address))
            .send()
            .await
            .expect("the example answers");
        let status = response.status().as_u16();
        if round == 0 {
            assert_eq!(response.headers()["x-ratelimit-limit"], "5");
            assert_eq!(response.headers()["x-ratelimit-remaining"], "4");
            let body: serde_json::Value =
                serde_json::from_str(&response.text().await.expect("a body")).expect("JSON");
            assert_eq!(body["remaining"], 4, "{body}");
        } else if status == 429 {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=10).contains(&retry_after), "{retry_after}");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429, 429, 429, 429, 429],
        "five per 10 s, shared by both instances"
    );
}
