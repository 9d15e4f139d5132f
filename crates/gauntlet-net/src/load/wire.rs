//! HTTP/1.1 on a raw keep-alive connection, for the load generator's hot loop: a request's
//! bytes are composed once and written as they are; an answer's head is parsed in place by
//! `httparse` and its body skipped by its framing (RFC 9112 §6.3), with no response value
//! built and nothing allocated per request. A load needs only the status and whether the
//! connection can carry the next request; everything else a client does is hyper's job
//! elsewhere (probes, webhooks, HTTP/2).

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer's head may be this long; a longer one is an error, not a bigger buffer.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// Room made before each read.
const READ_SIZE: usize = 16 * 1024;

/// One keep-alive connection and the bytes read from it but not yet used.
pub(super) struct Connection {
    stream: TcpStream,
    buffer: BytesMut,
}

/// What a load records of one exchange.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Answer {
    pub status: u16,
    /// The connection can carry the next request (no `close`, body not ended by closing).
    pub reusable: bool,
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
    close: bool,
}

impl Connection {
    pub async fn open(authority: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            buffer: BytesMut::with_capacity(READ_SIZE),
        })
    }

    /// Writes `request` (a whole request, composed by [`compose`]) and reads its answer to
    /// the end, past any interim (1xx) answers. `head_request`: the answer has no body.
    pub async fn exchange(&mut self, request: &[u8], head_request: bool) -> Result<Answer, String> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        loop {
            let head = self.read_head(head_request).await?;
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            self.skip_body(head.framing).await?;
            return Ok(Answer {
                status: head.status,
                reusable: !head.close && head.framing != Framing::UntilClose && head.status != 101,
            });
        }
    }

    /// Reads more bytes into the buffer; the peer closing is an error here (mid-answer).
    async fn fill(&mut self) -> Result<(), String> {
        self.buffer.reserve(READ_SIZE);
        match self.stream.read_buf(&mut self.buffer).await {
            Ok(0) => Err("connection closed".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("receive: {e}")),
        }
    }

    async fn read_head(&mut self, head_request: bool) -> Result<Head, String> {
        loop {
            if let Some((used, head)) = parse_head(&self.buffer, head_request)? {
                self.buffer.advance(used);
                return Ok(head);
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(format!("invalid response: a head over {MAX_HEAD} bytes"));
            }
            self.fill().await?;
        }
    }

    async fn skip_body(&mut self, framing: Framing) -> Result<(), String> {
        match framing {
            Framing::Empty => Ok(()),
            Framing::Length(length) => self.skip(length).await,
            Framing::Chunked => self.skip_chunks().await,
            Framing::UntilClose => loop {
                self.buffer.clear();
                self.buffer.reserve(READ_SIZE);
                match self.stream.read_buf(&mut self.buffer).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(format!("receive: {e}")),
                }
            },
        }
    }

    /// Drops the next `length` bytes, reading as needed.
    async fn skip(&mut self, mut length: u64) -> Result<(), String> {
        loop {
            let here = length.min(self.buffer.len() as u64);
            self.buffer.advance(here as usize);
            length -= here;
            if length == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    async fn skip_chunks(&mut self) -> Result<(), String> {
        loop {
            let size = match httparse::parse_chunk_size(&self.buffer) {
                Ok(httparse::Status::Complete((used, size))) => {
                    self.buffer.advance(used);
                    size
                }
                Ok(httparse::Status::Partial) if self.buffer.len() <= MAX_HEAD => {
                    self.fill().await?;
                    continue;
                }
                _ => return Err("invalid response: a malformed chunk size".into()),
            };
            if size == 0 {
                return self.skip_trailers().await;
            }
            self.skip(size).await?;
            while self.buffer.len() < 2 {
                self.fill().await?;
            }
            if &self.buffer[..2] != b"\r\n" {
                return Err("invalid response: a chunk not ended by CRLF".into());
            }
            self.buffer.advance(2);
        }
    }

    /// The trailer lines after the last chunk, up to the empty line that ends the answer.
    async fn skip_trailers(&mut self) -> Result<(), String> {
        let mut seen = 0;
        loop {
            match self.buffer.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.buffer.advance(2);
                    return Ok(());
                }
                Some(line) => {
                    seen += line + 2;
                    self.buffer.advance(line + 2);
                }
                None if seen + self.buffer.len() > MAX_HEAD => {
                    return Err(format!("invalid response: trailers over {MAX_HEAD} bytes"));
                }
                None => self.fill().await?,
            }
        }
    }
}

/// A complete answer head at the start of `bytes` and its length, or `None` while it is
/// still partial.
fn parse_head(bytes: &[u8], head_request: bool) -> Result<Option<(usize, Head)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let used = match response.parse(bytes) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("invalid response: {e}")),
    };
    let status = response.code.unwrap_or_default();
    // HTTP/1.0 closes after the answer unless it says keep-alive.
    let mut close = response.version == Some(0);
    let (mut length, mut chunked, mut encoded) = (None, false, false);
    for header in response.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or("invalid response: a malformed content-length")?;
            if length.is_some_and(|l| l != value) {
                return Err("invalid response: two different content-lengths".into());
            }
            length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked only when it is the last coding; any other ends with the connection.
            encoded = true;
            chunked = tokens(header.value)
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in tokens(header.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && response.version == Some(0) {
                    close = false;
                }
            }
        }
    }
    let framing = if head_request || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if encoded {
        Framing::UntilClose
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    Ok(Some((
        used,
        Head {
            status,
            framing,
            close,
        },
    )))
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(|t| t.trim_ascii())
}

/// The bytes of one request: its line, `host` (the header map's, else `authority`), the other
/// headers as given, and the body framed by its length.
pub(super) fn compose(
    method: &hyper::Method,
    target: &str,
    authority: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(hyper::header::HOST) {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(authority.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        // The framing is the body's own; a given length or coding could contradict it.
        if name == hyper::header::CONTENT_LENGTH || name == hyper::header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let carries_body = !body.is_empty()
        || matches!(
            *method,
            hyper::Method::POST | hyper::Method::PUT | hyper::Method::PATCH
        );
    if carries_body {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::net::TcpListener;

    /// A server that reads one request head, then writes `answer` in pieces of `piece`
    /// bytes (each its own write) and closes when `close_after`; returns what it read.
    async fn scripted(
        answer: Vec<u8>,
        piece: usize,
        close_after: bool,
    ) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed before its request ended");
                seen.extend_from_slice(&buf[..n]);
            }
            for part in answer.chunks(piece.max(1)) {
                stream.write_all(part).await.unwrap();
                stream.flush().await.unwrap();
            }
            if !close_after {
                // Hold the connection open until the client goes.
                let _ = stream.read(&mut buf).await;
            }
            seen
        });
        (authority, server)
    }

    async fn exchange(answer: &[u8], piece: usize, close_after: bool) -> Result<Answer, String> {
        let (authority, server) = scripted(answer.to_vec(), piece, close_after).await;
        let mut connection = Connection::open(&authority).await.unwrap();
        let request = compose(
            &hyper::Method::GET,
            "/x",
            &authority,
            &hyper::HeaderMap::new(),
            b"",
        );
        let outcome = connection.exchange(&request, false).await;
        // Whatever was answered, the whole answer was consumed: nothing is left over.
        if outcome.is_ok() {
            assert!(connection.buffer.is_empty(), "{:?}", connection.buffer);
        }
        drop(connection);
        server.await.unwrap();
        outcome
    }

    const FRAMINGS: &[(&[u8], u16, bool)] = &[
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", 200, true),
        (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 503, true),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\n",
            200,
            true,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, true),
        (b"HTTP/1.1 304 Not Modified\r\ncontent-length: 99\r\n\r\n", 304, true),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
            201,
            true,
        ),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok", 200, false),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", 200, false),
        (
            b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\nConnection: Keep-Alive\r\n\r\nok",
            200,
            true,
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            200,
            true,
        ),
    ];

    #[tokio::test]
    async fn every_framing_is_read_to_its_end_however_the_bytes_arrive() {
        for (answer, status, reusable) in FRAMINGS {
            for piece in [1, 3, 7, 4096] {
                let got = exchange(answer, piece, false).await;
                assert_eq!(
                    got,
                    Ok(Answer {
                        status: *status,
                        reusable: *reusable
                    }),
                    "{} in pieces of {piece}",
                    String::from_utf8_lossy(answer)
                );
            }
        }
    }

    #[tokio::test]
    async fn a_body_without_length_ends_with_the_connection() {
        let answer = b"HTTP/1.1 200 OK\r\n\r\nall of this until the close";
        let got = exchange(answer, 5, true).await;
        assert_eq!(
            got,
            Ok(Answer {
                status: 200,
                reusable: false
            })
        );
        let gzip = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nzzzz";
        assert_eq!(
            exchange(gzip, 4096, true).await.map(|a| a.reusable),
            Ok(false)
        );
    }

    #[tokio::test]
    async fn a_cut_or_malformed_answer_is_an_error() {
        let cases: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            b"NOT HTTP AT ALL\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-le",
            b"",
        ];
        for answer in cases {
            let got = exchange(answer, 3, true).await;
            assert!(got.is_err(), "{}: {got:?}", String::from_utf8_lossy(answer));
        }
    }

    #[tokio::test]
    async fn the_request_is_written_as_composed() {
        let (authority, server) = scripted(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
            4096,
            false,
        )
        .await;
        let mut headers = hyper::HeaderMap::new();
        headers.insert("x-team", "checkout".parse().unwrap());
        headers.insert("content-length", "999".parse().unwrap());
        let request = compose(&hyper::Method::POST, "/a?b=1", &authority, &headers, b"{}");
        let mut connection = Connection::open(&authority).await.unwrap();
        assert_eq!(
            connection.exchange(&request, false).await.unwrap().status,
            200
        );
        drop(connection);
        let seen = String::from_utf8(server.await.unwrap()).unwrap();
        assert_eq!(
            seen,
            format!(
                "POST /a?b=1 HTTP/1.1\r\nhost: {authority}\r\nx-team: checkout\r\ncontent-length: 2\r\n\r\n{{}}"
            )
        );
    }

    proptest! {
        /// Any bytes as an answer head: a head, a wait for more, or an error — never a panic,
        /// and a complete head never claims more bytes than it was given.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                           head_request in any::<bool>()) {
            if let Ok(Some((used, _))) = parse_head(&bytes, head_request) {
                prop_assert!(used <= bytes.len());
            }
        }

        /// A valid answer with any status, body and framing reads back as that status.
        #[test]
        fn a_valid_answer_reads_back(status in (200u16..600).prop_filter("no body allowed", |s| *s != 204 && *s != 304), body in proptest::collection::vec(any::<u8>(), 0..64),
                                     chunked in any::<bool>()) {
            let mut answer = format!("HTTP/1.1 {status} X\r\n").into_bytes();
            if chunked {
                answer.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                if !body.is_empty() {
                    answer.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                    answer.extend_from_slice(&body);
                    answer.extend_from_slice(b"\r\n");
                }
                answer.extend_from_slice(b"0\r\n\r\n");
            } else {
                answer.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
                answer.extend_from_slice(&body);
            }
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let got = runtime.block_on(exchange(&answer, 13, false));
            prop_assert_eq!(got.map(|a| a.status), Ok(status));
        }
    }
}
