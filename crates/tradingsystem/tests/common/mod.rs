//! Starts the real `tradingsystem` binary on a free port with a temporary data dir.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
    /// Every line the server wrote to stderr so far.
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    /// Starts the server and waits for its "listening on" line (the port is chosen by the OS).
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tradingsystem"));
        cmd.arg("serve")
            .env("TS_DATA_DIR", data_dir)
            .env("TS_LISTEN", "127.0.0.1:0")
            .env("TS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("TS_LOG", "warn")
            // Tests make many calls quickly; the limits themselves are tested with low values passed in `env`.
            .env("TS_RATE_LIMIT_PER_MINUTE", "1000000")
            .env("TS_LOGIN_RATE_LIMIT_PER_MINUTE", "100000")
            .env_remove("TS_DATABASE_URL")
            .current_dir(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tradingsystem");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(rest) = line.strip_prefix("TradingSystem listening on ") {
                        let addr = rest.split_whitespace().next().unwrap_or_default().to_string();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                // Keep draining so the server never blocks on a full pipe.
                if std::env::var("TS_TEST_SERVER_LOG").is_ok() {
                    eprintln!("[server] {line}");
                }
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(60)).expect("server did not start in 60 s");
        Server {
            child: Some(child),
            base,
            data_dir: data_dir.to_path_buf(),
            client: reqwest::Client::new(),
            stderr: lines,
        }
    }

    /// A client-only handle to the same server (does not own or stop the process).
    pub fn handle(&self) -> Server {
        Server {
            child: None,
            base: self.base.clone(),
            data_dir: self.data_dir.clone(),
            client: self.client.clone(),
            stderr: self.stderr.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn login(&self, user: &str, password: &str) -> String {
        let r = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login {user}");
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    }

    pub async fn admin(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user through the API and returns its token.
    pub async fn user(&self, admin: &str, name: &str, role: &str) -> String {
        let r = self
            .client
            .post(self.url("/api/v1/users"))
            .bearer_auth(admin)
            .json(&json!({"username": name, "password": "password-123", "role": role}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create {name}");
        self.login(name, "password-123").await
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, method: reqwest::Method, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self.client.request(method, self.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends `body` as it is written (a `Value` would pass numbers through a binary float first).
    pub async fn post_raw(&self, token: &str, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, token, path, body).await
    }

    /// SIGKILL: no shutdown hook runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: the graceful path.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls until `f` returns Some, for at most 5 s.
pub async fn eventually<T, F, Fut>(f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(Duration::from_secs(5), f).await
}

/// Polls until `f` returns Some, for at most `limit`.
pub async fn eventually_within<T, F, Fut>(limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not reached in {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes synthetic market data of PETR4 under `dir` (`dir/market/...`) from the 2025-03-10 session, with
/// `tradingsystem market generate` and `extra` arguments (`--kind`, `--ticks`, ...).
pub fn generate_market_data(dir: &Path, extra: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_tradingsystem"))
        .args(["market", "generate", "--symbol", "PETR4", "--start", "2025-03-10", "--seed", "7"])
        .args(extra)
        .arg("--out")
        .arg(dir)
        .output()
        .expect("run market generate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A failed command's stderr, checked to be one line.
pub fn one_line_error(o: &std::process::Output) -> String {
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one-line error, got: {err}");
    err
}
