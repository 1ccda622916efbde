//! QuickFIX as the broker for tests: starts `quickfix_broker.py` and drives it through its control port. Shared by
//! the FIX adapter's tests and the server's (`#[path]`-included there).
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub fn quickfix_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import quickfix"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("TS_REQUIRE_QUICKFIX").is_none(),
            "TS_REQUIRE_QUICKFIX is set but python3 cannot import quickfix"
        );
        eprintln!("skipped: python3 cannot import quickfix (install the quickfix==1.16.0 wheel; see .ci/run)");
    }
    ok
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// QuickFIX as the broker, driven through its control port.
pub struct Peer {
    child: Child,
    control: BufReader<TcpStream>,
    pub port: u16,
}

impl Peer {
    pub fn start(dir: &Path, size_limit: u64) -> Peer {
        let (port, control_port) = (free_port(), free_port());
        // Both crates whose tests use this live under crates/.
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fix-broker/tests/peer/quickfix_broker.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--control-port", &control_port.to_string()])
            .args(["--size-limit", &size_limit.to_string(), "--dir"])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "READY", "the QuickFIX broker started");
        let control = TcpStream::connect(("127.0.0.1", control_port)).unwrap();
        Peer { child, control: BufReader::new(control), port }
    }

    pub fn cmd(&mut self, c: Value) -> Value {
        let mut line = c.to_string();
        line.push('\n');
        self.control.get_mut().write_all(line.as_bytes()).unwrap();
        let mut answer = String::new();
        self.control.read_line(&mut answer).unwrap();
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert!(v.get("error").is_none(), "{c}: {v}");
        v
    }

    pub fn price(&mut self, symbol: &str, price: &str) {
        self.cmd(json!({"cmd": "price", "symbol": symbol, "price": price}));
    }

    /// The broker's order for our order id (by the ClOrdID's middle part).
    pub fn order_of(&mut self, id: u64) -> (String, Value) {
        let status = self.cmd(json!({"cmd": "status"}));
        let orders = status["orders"].as_object().unwrap().clone();
        orders
            .into_iter()
            .find(|(_, o)| o["cl_ord_id"].as_str().is_some_and(|c| c.split('.').nth(1) == Some(&id.to_string())))
            .unwrap_or_else(|| panic!("the broker has no order {id}: {status}"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
