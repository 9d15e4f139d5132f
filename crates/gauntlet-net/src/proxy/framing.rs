//! Where HTTP/1.1 requests begin and end in a client's byte stream, so a fault can act on
//! one request (answer it without the upstream, or hold it back) while the bytes still flow
//! through untouched. Heads are parsed by `httparse`; a body is counted by its
//! `content-length`. Anything else — HTTP/2, TLS, a chunked or upgraded request, a head
//! over 64 KiB — turns the connection opaque: bytes still pass, request faults stop there.

const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug, PartialEq)]
enum State {
    /// Collecting a request head; `started` once its first byte was seen.
    Head {
        bytes: Vec<u8>,
        started: bool,
    },
    /// Counting the body's remaining bytes.
    Body(u64),
    /// The request ended with the last bytes; report it before anything else.
    Ended,
    Opaque,
}

/// What the next stretch of bytes is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A request begins with the next bytes (nothing consumed).
    RequestStart,
    /// These bytes belong to the current request (or to an opaque stream).
    Bytes,
    /// The current request is complete (nothing consumed).
    RequestEnd,
    /// The stream just became opaque: a head that did not parse, or a body that is not
    /// counted by length. Bytes follow as `Bytes`.
    Opaque,
}

#[derive(Debug)]
pub(crate) struct RequestFramer {
    state: State,
    /// Completed requests.
    pub requests: u64,
}

impl RequestFramer {
    pub fn new() -> Self {
        Self {
            state: State::Head {
                bytes: Vec::new(),
                started: false,
            },
            requests: 0,
        }
    }

    pub fn opaque() -> Self {
        Self {
            state: State::Opaque,
            requests: 0,
        }
    }

    pub fn is_opaque(&self) -> bool {
        self.state == State::Opaque
    }

    /// A request ended and must be reported even if no bytes are left.
    pub fn has_pending_end(&self) -> bool {
        self.state == State::Ended
    }

    /// Consumes a prefix of `data` (possibly none) and says what it was.
    pub fn step(&mut self, data: &[u8]) -> (usize, Event) {
        match &mut self.state {
            State::Opaque => (data.len(), Event::Bytes),
            State::Ended => {
                self.requests += 1;
                self.state = State::Head {
                    bytes: Vec::new(),
                    started: false,
                };
                (0, Event::RequestEnd)
            }
            State::Body(remaining) => {
                let used = (*remaining).min(data.len() as u64);
                *remaining -= used;
                if *remaining == 0 {
                    self.state = State::Ended;
                }
                (used as usize, Event::Bytes)
            }
            State::Head { started, .. } if !*started => {
                *started = true;
                (0, Event::RequestStart)
            }
            State::Head { bytes, .. } => {
                let Some(used) = head_end(bytes, data) else {
                    bytes.extend_from_slice(data);
                    if bytes.len() > MAX_HEAD || looks_wrong(bytes) {
                        self.state = State::Opaque;
                        return (0, Event::Opaque);
                    }
                    return (data.len(), Event::Bytes);
                };
                bytes.extend_from_slice(&data[..used]);
                self.state = match body_of(bytes) {
                    Some(0) => State::Ended,
                    Some(length) => State::Body(length),
                    None => {
                        // The head itself still goes through; the rest is opaque.
                        self.state = State::Opaque;
                        return (used, Event::Opaque);
                    }
                };
                (used, Event::Bytes)
            }
        }
    }
}

/// How many bytes of `data` complete a head that began with `before`: the offset just past
/// the `\r\n\r\n` that ends it, which may straddle the two.
fn head_end(before: &[u8], data: &[u8]) -> Option<usize> {
    const END: &[u8] = b"\r\n\r\n";
    for carried in (1..=3.min(before.len())).rev() {
        let needed = 4 - carried;
        if before.ends_with(&END[..carried])
            && data.len() >= needed
            && data[..needed] == END[carried..]
        {
            return Some(needed);
        }
    }
    data.windows(4).position(|w| w == END).map(|p| p + 4)
}

/// A partial head that can no longer become a valid request.
fn looks_wrong(bytes: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    httparse::Request::new(&mut headers).parse(bytes).is_err()
}

/// The body length of a complete head; `None` when the body is not counted by length
/// (chunked, an upgrade, CONNECT) or the head does not parse.
fn body_of(head: &[u8]) -> Option<u64> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    if request.method == Some("CONNECT") {
        return None;
    }
    let mut length = 0;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding")
            || header.name.eq_ignore_ascii_case("upgrade")
        {
            return None;
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(header.value)
                .ok()?
                .trim()
                .parse()
                .ok()?;
        }
    }
    Some(length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `data` in pieces of the given sizes; returns the events with their byte counts.
    fn run(data: &[u8], cuts: &[usize]) -> (Vec<(Event, usize)>, RequestFramer) {
        let mut framer = RequestFramer::new();
        let mut events = Vec::new();
        let mut at = 0;
        let mut pieces = cuts.iter().cycle();
        while at < data.len() {
            let end = (at + pieces.next().copied().unwrap_or(1).max(1)).min(data.len());
            let mut offset = at;
            while offset < end || framer.has_pending_end() {
                let (used, event) = framer.step(&data[offset..end]);
                offset += used;
                events.push((event, used));
            }
            at = end;
        }
        (events, framer)
    }

    const TWO: &[u8] = b"POST /items HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhelloGET /a HTTP/1.1\r\nhost: x\r\n\r\n";

    #[test]
    fn two_requests_are_found_however_the_bytes_arrive() {
        for cut in [1, 2, 3, 7, 50, 1000] {
            let (events, framer) = run(TWO, &[cut]);
            let starts = events
                .iter()
                .filter(|(e, _)| *e == Event::RequestStart)
                .count();
            let ends = events
                .iter()
                .filter(|(e, _)| *e == Event::RequestEnd)
                .count();
            let bytes: usize = events.iter().map(|(_, n)| n).sum();
            assert_eq!((starts, ends, bytes), (2, 2, TWO.len()), "cut {cut}");
            assert_eq!(framer.requests, 2);
        }
    }

    #[test]
    fn a_chunked_body_or_http2_goes_opaque() {
        let chunked =
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let (events, framer) = run(chunked, &[1000]);
        assert!(framer.is_opaque());
        assert!(events.iter().any(|(e, _)| *e == Event::Opaque));
        assert_eq!(events.iter().map(|(_, n)| n).sum::<usize>(), chunked.len());
        let (_, framer) = run(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &[1000]);
        assert!(framer.is_opaque());
        let (_, framer) = run(&[0x16, 0x03, 0x01, 0x02, 0x00], &[1000]);
        assert!(framer.is_opaque(), "a TLS hello is not HTTP/1.1");
    }

    proptest! {
        /// Any bytes in any pieces: every byte is accounted for exactly once, and no panic.
        #[test]
        fn every_byte_passes_once(data in proptest::collection::vec(any::<u8>(), 0..400),
                                  cuts in proptest::collection::vec(1usize..40, 1..6)) {
            let (events, _) = run(&data, &cuts);
            prop_assert_eq!(events.iter().map(|(_, n)| n).sum::<usize>(), data.len());
        }
    }
}
