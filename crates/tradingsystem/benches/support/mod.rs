//! The full server in-process for the HTTP/WebSocket benchmarks: a temporary data dir (under `TS_BENCH_DIR` when
//! set), SQLite, the per-user rate limit off (a benchmark is one client going as fast as it can), logged in as admin.

// Each benchmark compiles its own copy and uses part of it.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::time::Duration;

pub const PASSWORD: &str = "bench-password-1";

/// The configuration the benchmark's server runs with: `env` (name, value) pairs on top of the defaults.
pub fn config(env: &[(&str, &str)]) -> (tempfile::TempDir, tradingsystem::config::Config) {
    let base = std::env::var("TS_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    std::fs::create_dir_all(&base).expect("bench dir");
    let dir = tempfile::tempdir_in(&base).expect("tempdir");
    std::env::set_var("TS_DATA_DIR", dir.path());
    std::env::set_var("TS_ADMIN_PASSWORD", PASSWORD);
    std::env::set_var("TS_RATE_LIMIT_PER_MINUTE", "0");
    std::env::remove_var("TS_DATABASE_URL");
    std::env::remove_var("TS_TELEGRAM_BOT_TOKEN");
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    (dir, tradingsystem::config::load(None).expect("config"))
}

pub struct Running {
    pub addr: std::net::SocketAddr,
    pub base: String,
    pub token: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts `cfg` on a free port and logs in.
pub async fn start(cfg: tradingsystem::config::Config) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tradingsystem::serve::run_with(cfg, None, listener, async {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    let token = loop {
        let r = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status() == 200 {
                break r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Running { addr, base, token, stop, server }
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}
