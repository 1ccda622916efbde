//! FIX tag=value framing and fields: never panics on any input.
//!
//! A message on the wire is `8=FIX.4.4␁9=<body length>␁<body>10=<checksum>␁`, where the body length counts the
//! bytes from the field after `9=` up to and including the `␁` before `10=`, and the checksum is the sum of every
//! byte before `10=` modulo 256, written as three digits. [`Decoder`] cuts a byte stream into messages and checks
//! both; [`Message`] indexes the fields of one; [`MessageBuilder`] writes one with length and checksum filled in.

use std::fmt;

pub const SOH: u8 = 0x01;
pub const BEGIN_STRING: &[u8] = b"FIX.4.4";
/// A body longer than this is refused as garbage rather than waited for: no message we exchange comes near it.
pub const MAX_BODY_LENGTH: usize = 1 << 20;
/// More fields than this in one message is refused (repeating groups in order entry are tiny).
pub const MAX_FIELDS: usize = 1024;

/// Why bytes on the wire are not a message. The session cannot trust the stream after any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("garbled stream: {0}")]
    Garbled(&'static str),
    #[error("BeginString is not FIX.4.4")]
    BeginString,
    #[error("BodyLength(9) is missing or not a number")]
    BodyLengthField,
    #[error("BodyLength(9) {0} is larger than {MAX_BODY_LENGTH}")]
    BodyTooLong(usize),
    #[error("BodyLength(9) {0} does not end where CheckSum(10) begins")]
    BodyLength(usize),
    #[error("CheckSum(10) is {got:03}, the bytes add up to {expected:03}")]
    CheckSum { got: u32, expected: u32 },
    #[error("malformed field: {0}")]
    Field(&'static str),
    #[error("MsgType(35) is not the first field of the body")]
    MsgTypeFirst,
    #[error("more than {MAX_FIELDS} fields")]
    TooManyFields,
}

/// One decoded message: the raw bytes (kept for the FIX log and for resends) and an index of its fields.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    raw: Vec<u8>,
    /// (tag, start, end) of each value in `raw`, in wire order (repeating groups keep their order).
    fields: Vec<(u32, u32, u32)>,
}

impl Message {
    /// Parses one complete message (framing, length, checksum, fields).
    pub fn parse(raw: &[u8]) -> Result<Message, FrameError> {
        match frame(raw)? {
            Framed::Complete(len) if len == raw.len() => Message::index(raw.to_vec()),
            Framed::Complete(_) => Err(FrameError::Garbled("bytes after CheckSum(10)")),
            Framed::Incomplete => Err(FrameError::Garbled("message is cut short")),
        }
    }

    fn index(raw: Vec<u8>) -> Result<Message, FrameError> {
        let mut fields = Vec::with_capacity(32);
        let mut at = 0usize;
        while at < raw.len() {
            let eq = raw[at..].iter().position(|&b| b == b'=').ok_or(FrameError::Field("no '=' after a tag"))? + at;
            let tag = parse_tag(&raw[at..eq]).ok_or(FrameError::Field("tag is not a positive number"))?;
            let end =
                raw[eq + 1..].iter().position(|&b| b == SOH).ok_or(FrameError::Field("no SOH after a value"))? + eq + 1;
            if end == eq + 1 {
                return Err(FrameError::Field("empty value"));
            }
            if fields.len() == MAX_FIELDS {
                return Err(FrameError::TooManyFields);
            }
            // The frame is at most MAX_BODY_LENGTH plus a few bytes, so offsets fit u32.
            fields.push((tag, (eq + 1) as u32, end as u32));
            at = end + 1;
        }
        if fields.get(2).map(|f| f.0) != Some(35) {
            return Err(FrameError::MsgTypeFirst);
        }
        Ok(Message { raw, fields })
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The first value of `tag`.
    pub fn get(&self, tag: u32) -> Option<&[u8]> {
        self.fields.iter().find(|f| f.0 == tag).map(|&(_, s, e)| &self.raw[s as usize..e as usize])
    }

    pub fn get_str(&self, tag: u32) -> Option<&str> {
        self.get(tag).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// An unsigned integer field; `None` when absent or not a number.
    pub fn get_u64(&self, tag: u32) -> Option<u64> {
        parse_u64(self.get(tag)?)
    }

    pub fn get_bool(&self, tag: u32) -> bool {
        self.get(tag) == Some(b"Y")
    }

    pub fn msg_type(&self) -> &[u8] {
        self.get(35).unwrap_or_default()
    }

    pub fn seq_num(&self) -> Option<u64> {
        self.get_u64(34)
    }

    /// Every (tag, value) in wire order.
    pub fn fields(&self) -> impl Iterator<Item = (u32, &[u8])> {
        self.fields.iter().map(|&(t, s, e)| (t, &self.raw[s as usize..e as usize]))
    }

    /// The message with `|` for SOH: how the FIX log and error messages show it.
    pub fn display(&self) -> String {
        printable(&self.raw)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

pub fn printable(raw: &[u8]) -> String {
    raw.iter()
        .map(|&b| {
            if b == SOH {
                '|'
            } else if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

fn parse_tag(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || b[0] == b'0' {
        return None;
    }
    b.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
}

pub fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &c| c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0')))
}

enum Framed {
    /// A whole, checked message of this many bytes starts the buffer.
    Complete(usize),
    Incomplete,
}

/// Checks the frame at the start of `buf` without indexing fields.
fn frame(buf: &[u8]) -> Result<Framed, FrameError> {
    // A prefix of `want` (the buffer may end inside it) or not.
    let opens = |at: usize, want: &[u8]| {
        let have = &buf[at.min(buf.len())..];
        let n = have.len().min(want.len());
        have[..n] == want[..n]
    };
    if !opens(0, b"8=") {
        return Err(FrameError::Garbled("a message must start with 8="));
    }
    let Some(end) = buf.iter().skip(2).take(16).position(|&b| b == SOH) else {
        return if buf.len() < 18 { Ok(Framed::Incomplete) } else { Err(FrameError::BeginString) };
    };
    if &buf[2..2 + end] != BEGIN_STRING {
        return Err(FrameError::BeginString);
    }
    let at = 2 + end + 1;
    if !opens(at, b"9=") {
        return Err(FrameError::BodyLengthField);
    }
    let digits = &buf[(at + 2).min(buf.len())..];
    let Some(soh) = digits.iter().take(8).position(|&b| b == SOH) else {
        return if digits.len() < 8 && digits.iter().all(u8::is_ascii_digit) {
            Ok(Framed::Incomplete)
        } else {
            Err(FrameError::BodyLengthField)
        };
    };
    let body_len = parse_u64(&digits[..soh]).ok_or(FrameError::BodyLengthField)? as usize;
    if body_len > MAX_BODY_LENGTH {
        return Err(FrameError::BodyTooLong(body_len));
    }
    let body_start = at + 2 + soh + 1;
    let trailer = body_start + body_len;
    // "10=" + three digits + SOH
    let total = trailer + 7;
    if buf.len() < total {
        // A trailer already visible where it should not be is a wrong length, not a short read.
        return Ok(Framed::Incomplete);
    }
    if &buf[trailer..trailer + 3] != b"10=" || buf[total - 1] != SOH || buf[trailer - 1] != SOH {
        return Err(FrameError::BodyLength(body_len));
    }
    let got = &buf[trailer + 3..total - 1];
    let got = parse_u64(got).ok_or(FrameError::CheckSum { got: 999, expected: checksum(&buf[..trailer]) })? as u32;
    let expected = checksum(&buf[..trailer]);
    if got != expected {
        return Err(FrameError::CheckSum { got, expected });
    }
    Ok(Framed::Complete(total))
}

pub fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b))) % 256
}

/// Cuts a byte stream into messages. Feed it what the socket read; take messages until it says it needs more.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `Ok(None)` if more bytes are needed, or why the stream is broken. After an error the
    /// decoder has skipped to the next `8=FIX` it can see (or dropped everything), so it can be used again.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        let pending = &self.buf[self.start..];
        if pending.is_empty() {
            return Ok(None);
        }
        match frame(pending) {
            Ok(Framed::Incomplete) => {
                self.compact();
                Ok(None)
            }
            Ok(Framed::Complete(len)) => {
                let raw = pending[..len].to_vec();
                self.start += len;
                Message::index(raw).map(Some)
            }
            Err(e) => {
                self.resync();
                Err(e)
            }
        }
    }

    /// Bytes held that are not a message yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    fn resync(&mut self) {
        let pending = &self.buf[self.start..];
        let next = pending.windows(5).skip(1).position(|w| w == b"8=FIX").map(|p| p + 1);
        match next {
            Some(p) => self.start += p,
            None => {
                self.buf.clear();
                self.start = 0;
            }
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Writes one message: header fields first, then the body, then BodyLength and CheckSum.
pub struct MessageBuilder {
    body: Vec<u8>,
}

impl MessageBuilder {
    pub fn new(msg_type: &str) -> MessageBuilder {
        let mut body = Vec::with_capacity(256);
        body.extend_from_slice(b"35=");
        body.extend_from_slice(msg_type.as_bytes());
        body.push(SOH);
        MessageBuilder { body }
    }

    /// Adds a field. A value holding SOH would corrupt the frame, so SOH is replaced by a space.
    pub fn field(&mut self, tag: u32, value: impl AsRef<[u8]>) -> &mut Self {
        write_u64(&mut self.body, u64::from(tag));
        self.body.push(b'=');
        for &b in value.as_ref() {
            self.body.push(if b == SOH { b' ' } else { b });
        }
        self.body.push(SOH);
        self
    }

    pub fn int(&mut self, tag: u32, value: u64) -> &mut Self {
        write_u64(&mut self.body, u64::from(tag));
        self.body.push(b'=');
        write_u64(&mut self.body, value);
        self.body.push(SOH);
        self
    }

    /// Appends fields already in wire form (`tag=value␁...`), as [`MessageBuilder::body_fields`] returns them.
    pub fn raw_fields(&mut self, fields: &[u8]) -> &mut Self {
        self.body.extend_from_slice(fields);
        self
    }

    pub fn msg_type(&self) -> &[u8] {
        let end = self.body[3..].iter().position(|&b| b == SOH).unwrap_or(0) + 3;
        &self.body[3..end]
    }

    /// The body's fields after MsgType, as added so far (what a resend copies).
    pub fn body_fields(&self) -> &[u8] {
        let end = self.body.iter().position(|&b| b == SOH).map_or(self.body.len(), |p| p + 1);
        &self.body[end..]
    }

    /// The finished message.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 32);
        out.extend_from_slice(b"8=FIX.4.4\x019=");
        write_u64(&mut out, self.body.len() as u64);
        out.push(SOH);
        out.extend_from_slice(&self.body);
        let sum = checksum(&out);
        out.extend_from_slice(b"10=");
        out.push(b'0' + (sum / 100) as u8);
        out.push(b'0' + (sum / 10 % 10) as u8);
        out.push(b'0' + (sum % 10) as u8);
        out.push(SOH);
        out
    }
}

fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(s: &str) -> Vec<u8> {
        s.replace('|', "\x01").into_bytes()
    }

    fn heartbeat() -> Vec<u8> {
        let mut b = MessageBuilder::new("0");
        b.field(49, "US").field(56, "BROKER").int(34, 7).field(52, "20261206-12:00:00.000");
        b.finish()
    }

    #[test]
    fn builds_and_parses_with_length_and_checksum() {
        let raw = heartbeat();
        let m = Message::parse(&raw).unwrap();
        assert_eq!(m.msg_type(), b"0");
        assert_eq!(m.seq_num(), Some(7));
        assert_eq!(m.get_str(49), Some("US"));
        assert!(m.display().starts_with("8=FIX.4.4|9=51|35=0|49=US|"), "{}", m.display());
    }

    #[test]
    fn a_known_message_checks() {
        // Length and checksum computed by hand from the FIX 4.4 rules.
        let raw = wire("8=FIX.4.4|9=5|35=0|10=163|");
        assert_eq!(checksum(&raw[..raw.len() - 7]), 163);
        let m = Message::parse(&raw).unwrap();
        assert_eq!(m.msg_type(), b"0");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let good = heartbeat();
        let text = String::from_utf8(good.clone()).unwrap();
        let bad_sum = text.replacen(&text[text.len() - 4..text.len() - 1], "000", 1);
        assert!(matches!(Message::parse(bad_sum.as_bytes()), Err(FrameError::CheckSum { .. })));
        let bad_len = text.replacen("9=51", "9=50", 1);
        assert!(matches!(Message::parse(bad_len.as_bytes()), Err(FrameError::BodyLength(50))));
        assert_eq!(Message::parse(b"hello"), Err(FrameError::Garbled("a message must start with 8=")));
        assert_eq!(Message::parse(&wire("8=FIX.4.2|9=5|35=0|10=161|")), Err(FrameError::BeginString));
        assert_eq!(Message::parse(&wire("8=FIX.4.4|9=x|35=0|10=161|")), Err(FrameError::BodyLengthField));
    }

    #[test]
    fn the_decoder_waits_for_more_and_resyncs_after_garbage() {
        let one = heartbeat();
        let mut stream = b"garbage\x01".to_vec();
        stream.extend_from_slice(&one);
        stream.extend_from_slice(&one);
        let mut d = Decoder::new();
        // Byte by byte: nothing is lost across reads.
        let mut got = 0;
        let mut errors = 0;
        for b in &stream {
            d.extend(std::slice::from_ref(b));
            loop {
                match d.next_message() {
                    Ok(Some(_)) => got += 1,
                    Ok(None) => break,
                    Err(_) => errors += 1,
                }
            }
        }
        assert_eq!(got, 2);
        assert!(errors >= 1);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn values_cannot_break_the_frame() {
        let mut b = MessageBuilder::new("D");
        b.field(58, "a\x01b");
        let m = Message::parse(&b.finish()).unwrap();
        assert_eq!(m.get(58), Some(&b"a b"[..]));
    }
}
