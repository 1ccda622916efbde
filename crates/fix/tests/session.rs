//! The initiator session against a counterparty written here byte by byte, for what QuickFIX will not send:
//! garbage, a wrong checksum or body length, a number too low, and requests the session itself must answer.

use fix::codec::{Decoder, Message, MessageBuilder};
use fix::session::{self, SessionConfig, SessionEvent, SessionHandle, SessionStatus};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The broker's side of one connection.
struct Counterparty {
    stream: TcpStream,
    decoder: Decoder,
    next_out: u64,
}

impl Counterparty {
    fn accept(listener: &TcpListener) -> Counterparty {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Counterparty { stream, decoder: Decoder::new(), next_out: 1 }
    }

    fn read(&mut self) -> Message {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(m) = self.decoder.next_message().unwrap() {
                return m;
            }
            let n = self.stream.read(&mut buf).expect("the session writes");
            assert!(n > 0, "the session closed the connection");
            self.decoder.extend(&buf[..n]);
        }
    }

    /// Reads until a message of `kind` arrives, skipping heartbeats.
    fn read_kind(&mut self, kind: &str) -> Message {
        loop {
            let m = self.read();
            if m.msg_type() == kind.as_bytes() {
                return m;
            }
            assert_eq!(m.msg_type(), b"0", "expected {kind}, got {m:?}");
        }
    }

    fn message(&mut self, kind: &str, fields: &[(u32, &str)]) -> Vec<u8> {
        self.next_out += 1;
        self.message_numbered(kind, self.next_out - 1, fields)
    }

    fn message_numbered(&self, kind: &str, seq: u64, fields: &[(u32, &str)]) -> Vec<u8> {
        let mut b = MessageBuilder::new(kind);
        b.field(49, "BROKER").field(56, "TS").int(34, seq).field(52, "20261206-12:00:00.000");
        for (t, v) in fields {
            b.field(*t, v);
        }
        b.finish()
    }

    fn send(&mut self, kind: &str, fields: &[(u32, &str)]) {
        let raw = self.message(kind, fields);
        self.stream.write_all(&raw).unwrap();
    }

    fn logon(&mut self) -> Message {
        let ours = self.read_kind("A");
        self.send("A", &[(98, "0"), (108, "30")]);
        ours
    }
}

/// Writes bytes that are not a valid message.
type Corrupt = fn(&mut Counterparty) -> Vec<u8>;

fn start(port: u16, dir: &std::path::Path) -> (SessionHandle, mpsc::UnboundedReceiver<SessionEvent>) {
    let mut config = SessionConfig::new("127.0.0.1", port, "TS", "BROKER", dir.to_path_buf());
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(100);
    session::start(config, clock::WallClock::shared()).unwrap()
}

/// A session logged on to a counterparty of ours, with what keeps it alive.
struct Live {
    listener: TcpListener,
    dir: tempfile::TempDir,
    handle: SessionHandle,
    events: mpsc::UnboundedReceiver<SessionEvent>,
    c: Counterparty,
}

fn live() -> Live {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (handle, mut events) = start(port, dir.path());
    let mut c = Counterparty::accept(&listener);
    c.logon();
    logged_on(&mut events);
    Live { listener, dir, handle, events, c }
}

fn logged_on(events: &mut mpsc::UnboundedReceiver<SessionEvent>) {
    loop {
        match events.blocking_recv().expect("the session runs") {
            SessionEvent::LoggedOn => return,
            SessionEvent::LoggedOut { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn broken_bytes_are_answered_with_a_logout_and_the_session_comes_back() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (handle, mut events) = start(port, dir.path());
    let cases: [(&str, Corrupt); 3] = [
        ("garbled", |_| b"this is not FIX\x01".to_vec()),
        ("CheckSum", |c| {
            let mut raw = c.message("0", &[]);
            let n = raw.len();
            let wrong: &[u8] = if &raw[n - 4..n - 1] == b"000" { b"001" } else { b"000" };
            raw[n - 4..n - 1].copy_from_slice(wrong);
            raw
        }),
        ("BodyLength", |c| {
            let raw = String::from_utf8(c.message("0", &[])).unwrap();
            let (head, rest) = raw.split_once("\x019=").unwrap();
            let (len, body) = rest.split_once('\x01').unwrap();
            format!("{head}\x019={}\x01{body}", len.parse::<u32>().unwrap() + 3).into_bytes()
        }),
    ];
    let mut c = Counterparty::accept(&listener);
    c.logon();
    logged_on(&mut events);
    for (what, bad) in cases {
        let raw = bad(&mut c);
        c.stream.write_all(&raw).unwrap();
        // A wrong body length is only visible once the bytes it claims have arrived.
        let next = c.message("0", &[]);
        let _ = c.stream.write_all(&next);
        let logout = c.read_kind("5");
        assert!(logout.get_str(58).is_some_and(|t| t.contains(what)), "{what}: {logout:?}");
        // It drops the connection and comes back with the next number, no reset.
        let mut again = Counterparty::accept(&listener);
        again.next_out = c.next_out;
        let logon = again.logon();
        assert!(logon.get(141).is_none());
        logged_on(&mut events);
        // The messages lost with the broken connection (ours included) are a gap the session asks for; the
        // broker fills it, and the session is whole again.
        let resend = again.read_kind("2");
        let (from, to) = (resend.get_u64(7).unwrap(), again.next_out.to_string());
        let gap_fill = again.message_numbered("4", from, &[(43, "Y"), (123, "Y"), (36, &to)]);
        again.stream.write_all(&gap_fill).unwrap();
        until("the gap is filled", || handle.info().next_target_seq == again.next_out);
        c = again;
    }
    assert_eq!(handle.info().status, SessionStatus::LoggedOn);
    handle.stop();
}

#[test]
fn the_session_answers_test_requests_resend_requests_and_refuses_a_number_too_low() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (handle, mut events) = start(port, dir.path());
    let mut c = Counterparty::accept(&listener);
    let logon = c.logon();
    assert_eq!(logon.seq_num(), Some(1));
    logged_on(&mut events);

    c.send("1", &[(112, "T1")]);
    let hb = c.read_kind("0");
    assert_eq!(hb.get_str(112), Some("T1"));

    // Two orders go out (numbers 3 and 4, after the logon and the heartbeat); then the broker asks for all.
    let mut order = MessageBuilder::new("D");
    order.field(11, "c1").field(55, "PETR4");
    handle.send(order).unwrap();
    let mut order = MessageBuilder::new("D");
    order.field(11, "c2").field(55, "PETR4");
    handle.send(order).unwrap();
    let first = c.read_kind("D");
    assert_eq!(first.seq_num(), Some(3));
    c.read_kind("D");
    c.send("2", &[(7, "1"), (16, "0")]);
    let fill = c.read_kind("4");
    assert_eq!((fill.seq_num(), fill.get_str(123), fill.get_u64(36)), (Some(1), Some("Y"), Some(3)));
    let again = c.read_kind("D");
    assert_eq!((again.seq_num(), again.get_str(43), again.get_str(11)), (Some(3), Some("Y"), Some("c1")));
    assert_eq!(again.get(122), first.get(52), "OrigSendingTime is the first sending's time");
    assert_eq!(c.read_kind("D").get_str(11), Some("c2"));

    // An application message reaches the application; a number below the expected one without PossDup is fatal.
    c.send("8", &[(11, "c1"), (150, "0")]);
    match events.blocking_recv() {
        Some(SessionEvent::App(m)) => assert_eq!(m.get_str(11), Some("c1")),
        other => panic!("{other:?}"),
    }
    c.next_out -= 1;
    c.send("0", &[]);
    let logout = c.read_kind("5");
    assert!(logout.get_str(58).is_some_and(|t| t.contains("too low")), "{logout:?}");
    until("the session notices", || !handle.is_logged_on());
    handle.stop();
}

#[test]
fn reset_on_logon_starts_both_sides_at_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    // A first session uses some numbers and stops.
    let (handle, mut events) = start(port, dir.path());
    let mut c = Counterparty::accept(&listener);
    c.logon();
    logged_on(&mut events);
    c.send("1", &[(112, "T")]);
    c.read_kind("0");
    handle.stop();
    c.read_kind("5");
    c.send("5", &[]);
    until("the first session stops", || handle.info().status == SessionStatus::Stopped);
    assert!(handle.info().next_sender_seq > 2);

    let mut config = SessionConfig::new("127.0.0.1", port, "TS", "BROKER", dir.path().to_path_buf());
    config.reset_on_logon = true;
    let (handle, mut events) = session::start(config, clock::WallClock::shared()).unwrap();
    let mut c = Counterparty::accept(&listener);
    let logon = c.read_kind("A");
    assert_eq!((logon.seq_num(), logon.get_str(141)), (Some(1), Some("Y")));
    c.send("A", &[(98, "0"), (108, "30"), (141, "Y")]);
    logged_on(&mut events);
    assert_eq!((handle.info().next_sender_seq, handle.info().next_target_seq), (2, 2));
    handle.stop();
}

#[test]
fn outside_its_schedule_the_session_does_not_connect() {
    use chrono::Datelike;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::new("127.0.0.1", port, "TS", "BROKER", dir.path().to_path_buf());
    // Every day but today, São Paulo time.
    let today = chrono::Utc::now().with_timezone(&chrono_tz::America::Sao_Paulo).weekday();
    let days: Vec<String> = (1..7).map(|d| today.num_days_from_monday() + d).map(|d| weekday(d % 7)).collect();
    config.schedule = Some(fix::Schedule::parse("00:00", "23:59", &days).unwrap());
    let (handle, _events) = session::start(config, clock::WallClock::shared()).unwrap();
    until("the session sees it is out of schedule", || handle.info().status == SessionStatus::OutOfSchedule);
    assert!(matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "no connection");
    assert!(matches!(handle.send(MessageBuilder::new("D")), Err(session::SendError::NotLoggedOn(_))));
    handle.stop();
}

fn weekday(from_monday: u32) -> String {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][from_monday as usize].to_string()
}

#[test]
fn when_both_sides_have_gaps_a_resend_request_ahead_of_its_turn_is_answered() {
    let Live { listener: _listener, dir: _dir, handle, events: _events, mut c } = live();
    let mut order = MessageBuilder::new("D");
    order.field(11, "c1");
    handle.send(order).unwrap();
    c.read_kind("D");
    // The broker lost our messages and we lost three of its: its next two messages are a Logon-time gap and a
    // ResendRequest for everything of ours, both numbered ahead of what we expect.
    c.next_out += 3;
    c.send("2", &[(7, "1"), (16, "0")]);
    // We answer its request (a gap fill over our Logon, then the order again) and ask for ours.
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = c.read();
        if m.msg_type() != b"0" {
            got.push((String::from_utf8_lossy(m.msg_type()).into_owned(), m.get_str(43).map(str::to_string)));
        }
    }
    assert!(got.contains(&("D".into(), Some("Y".into()))), "{got:?}");
    assert!(got.contains(&("4".into(), Some("Y".into()))), "{got:?}");
    assert!(got.iter().any(|(t, _)| t == "2"), "our own resend request: {got:?}");
    handle.stop();
}

#[test]
fn an_operator_reset_logs_out_and_logs_on_again_at_one() {
    let Live { listener, dir: _dir, handle, mut events, mut c } = live();
    c.send("1", &[(112, "T")]);
    c.read_kind("0");
    handle.reset_sequence().unwrap();
    let logout = c.read_kind("5");
    assert!(logout.get_str(58).is_some_and(|t| t.contains("reset")), "{logout:?}");
    let mut again = Counterparty::accept(&listener);
    let logon = again.read_kind("A");
    assert_eq!((logon.seq_num(), logon.get_str(141)), (Some(1), Some("Y")));
    again.send("A", &[(98, "0"), (108, "30"), (141, "Y")]);
    logged_on(&mut events);
    assert_eq!((handle.info().next_sender_seq, handle.info().next_target_seq), (2, 2));
    handle.stop();
}
