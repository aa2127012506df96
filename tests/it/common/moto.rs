//! A throw-away `moto_server` (moto 5.2.5) as the AWS peer of an integration test.
//!
//! [`MotoServer::start`] picks a free loopback port, spawns `moto_server -H 127.0.0.1 -p PORT`
//! (the binary named by `MOTO_SERVER`, else `moto_server` on `PATH`), waits until
//! `GET /moto-api/` answers and kills the process when the value is dropped. Each test starts
//! its own server (about 1-2 s), so tests share no state and leave no process behind.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer after it was spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct MotoServer {
    child: Child,
    port: u16,
    log: File,
}

impl MotoServer {
    /// Starts a server and waits until it answers. Panics with a clear message if `moto_server`
    /// cannot be found or does not come up.
    pub fn start() -> Self {
        let binary = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_string());
        let port = free_port();
        let log = tempfile::tempfile().expect("temporary file for the moto_server log");
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log.try_clone().expect("clone log handle"))
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "moto_server not found: run scripts/test (it installs moto[server]==5.2.5) \
                 [looked for {binary:?}; set MOTO_SERVER to its path]"
            ),
            Err(e) => panic!("cannot start {binary:?}: {e}"),
        };
        let mut server = MotoServer { child, port, log };
        server.wait_until_ready();
        server
    }

    /// Base URL to give the SDK as `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Clears all of moto's state (`POST /moto-api/reset`).
    pub async fn reset(&self) {
        let resp = reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.endpoint()))
            .send()
            .await
            .expect("POST /moto-api/reset");
        assert!(
            resp.status().is_success(),
            "moto reset answered {}",
            resp.status()
        );
    }

    fn wait_until_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll moto_server") {
                panic!("moto_server exited early ({status}):\n{}", self.log_text());
            }
            if http_get_ok(self.port, "/moto-api/") {
                return;
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                let port = self.port;
                panic!(
                    "moto_server did not answer on port {port} within {STARTUP_TIMEOUT:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&mut self) -> String {
        let mut s = String::new();
        let _ = self.log.seek(SeekFrom::Start(0));
        let _ = self.log.read_to_string(&mut s);
        s
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago (bind port 0, read it, close).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether `GET path` on the loopback port answers with a 2xx status.
fn http_get_ok(port: u16, path: &str) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    if stream.read_exact(&mut head).is_err() {
        return false;
    }
    // "HTTP/1.1 200"
    head.starts_with(b"HTTP/1.") && head[9] == b'2'
}
