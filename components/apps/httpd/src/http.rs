//! HTTP/1.1 request parsing and response writing, over byte buffers only (no sockets),
//! so partial reads, pipelining and bad input are unit-tested on the host.
//!
//! Supported: `Content-Length` bodies (no chunked transfer coding: 411), keep-alive by
//! HTTP version and `Connection`, `Expect: 100-continue`. Request heads are bounded by
//! `max_head` (431 beyond it) and bodies by `max_body` (413).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub keep_alive: bool,
    pub body: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed. `expect_continue`: the head is complete, asked for
    /// `100 Continue`, and the body has not all arrived.
    Incomplete { expect_continue: bool },
    /// A request and how many bytes of the buffer it used.
    Done(Request, usize),
    /// The request is bad: answer with this status and close.
    Error(u16),
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parse one request from the front of `buf`.
pub fn parse(buf: &[u8], max_head: usize, max_body: usize) -> Parse {
    let Some(head_len) = find_head_end(&buf[..buf.len().min(max_head + 4)]) else {
        return if buf.len() > max_head {
            Parse::Error(431)
        } else {
            Parse::Incomplete {
                expect_continue: false,
            }
        };
    };
    if head_len - 4 > max_head {
        return Parse::Error(431);
    }
    let Ok(head) = core::str::from_utf8(&buf[..head_len - 4]) else {
        return Parse::Error(400);
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parse::Error(400);
    };
    if !is_token(method)
        || !target.starts_with('/')
        || target.bytes().any(|b| b <= b' ' || b == 0x7f)
    {
        return Parse::Error(400);
    }
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/1.") && v.len() == 8 && v.as_bytes()[7].is_ascii_digit() => true,
        _ => {
            return Parse::Error(if version.starts_with("HTTP/") {
                505
            } else {
                400
            });
        }
    };
    let mut content_length: Option<usize> = None;
    let mut expect_continue = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parse::Error(400);
        };
        if !is_token(name) {
            return Parse::Error(400);
        }
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Parse::Error(400);
            }
            let n: usize = value.parse().unwrap_or(usize::MAX);
            if content_length.is_some_and(|c| c != n) {
                return Parse::Error(400);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Error(411);
        } else if name.eq_ignore_ascii_case("connection") {
            for opt in value.split(',') {
                let opt = opt.trim();
                if opt.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if opt.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                expect_continue = true;
            } else {
                return Parse::Error(417);
            }
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > max_body {
        return Parse::Error(413);
    }
    let total = head_len + body_len;
    if buf.len() < total {
        return Parse::Incomplete { expect_continue };
    }
    Parse::Done(
        Request {
            method: String::from(method),
            target: String::from(target),
            keep_alive,
            body: buf[head_len..total].to_vec(),
        },
        total,
    )
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra header lines, each without CRLF (`Allow: GET, PUT`).
    pub headers: Vec<String>,
    /// A HEAD response: headers as for GET, no body.
    pub head_only: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
            head_only: false,
        }
    }

    /// A short plain-text response: the reason phrase and a newline.
    pub fn status(status: u16) -> Response {
        Response::new(status, "text/plain", format!("{}\n", reason(status)))
    }

    /// Append the response's bytes to `out`.
    pub fn write(&self, keep_alive: bool, out: &mut Vec<u8>) {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nServer: weft-httpd\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for h in &self.headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        out.extend_from_slice(head.as_bytes());
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: usize = 8192;
    const B: usize = 1024;

    fn done(buf: &[u8]) -> (Request, usize) {
        match parse(buf, H, B) {
            Parse::Done(r, n) => (r, n),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn simple_get() {
        let (r, n) = done(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(n, 27);
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/");
        assert!(r.keep_alive);
        assert!(r.body.is_empty());
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!done(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            done(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            !done(b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n")
                .0
                .keep_alive
        );
    }

    #[test]
    fn partial_reads_byte_by_byte() {
        let req = b"PUT /kv/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        for i in 0..req.len() {
            assert_eq!(
                parse(&req[..i], H, B),
                Parse::Incomplete {
                    expect_continue: false
                },
                "at {i}"
            );
        }
        let (r, n) = done(req);
        assert_eq!(n, req.len());
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn pipelined() {
        let buf = b"GET /a HTTP/1.1\r\n\r\nPUT /kv/b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\n\r\nGET /d";
        let mut off = 0;
        let mut targets = Vec::new();
        while let Parse::Done(r, n) = parse(&buf[off..], H, B) {
            targets.push(r.target);
            off += n;
        }
        assert_eq!(targets, ["/a", "/kv/b", "/c"]);
        assert_eq!(&buf[off..], b"GET /d");
    }

    #[test]
    fn bad_requests() {
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET noslash HTTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / FTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad, H, B),
                Parse::Error(400),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(b"GET / HTTP/2.0\r\n\r\n", H, B), Parse::Error(505));
        assert_eq!(
            parse(
                b"PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                H,
                B
            ),
            Parse::Error(411)
        );
    }

    #[test]
    fn oversized() {
        assert_eq!(
            parse(b"PUT /kv/a HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", H, B),
            Parse::Error(413)
        );
        assert_eq!(
            parse(
                b"PUT /kv/a HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                H,
                B
            ),
            Parse::Error(400)
        );
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(H + 10, b'a');
        assert_eq!(parse(&big, H, B), Parse::Error(431));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&big, H, B), Parse::Error(431));
        // Exactly at the limit still parses.
        let mut ok = b"GET / HTTP/1.1\r\nX: ".to_vec();
        ok.resize(H, b'a');
        ok.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse(&ok, H, B), Parse::Done(..)));
    }

    #[test]
    fn expect_continue() {
        let head = b"PUT /kv/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(
            parse(head, H, B),
            Parse::Incomplete {
                expect_continue: true
            }
        );
        let mut full = head.to_vec();
        full.extend_from_slice(b"abc");
        assert_eq!(done(&full).0.body, b"abc");
        assert_eq!(
            parse(b"PUT /kv/a HTTP/1.1\r\nExpect: x\r\n\r\n", H, B),
            Parse::Error(417)
        );
    }

    #[test]
    fn response_bytes() {
        let mut out = Vec::new();
        Response::new(200, "text/plain", "hi").write(true, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nServer: weft-httpd\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
        );
        let mut out = Vec::new();
        let mut r = Response::status(405);
        r.headers.push(String::from("Allow: GET, PUT"));
        r.head_only = true;
        r.write(false, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(s.contains("Content-Length: 19\r\n"));
        assert!(s.contains("Allow: GET, PUT\r\n"));
        assert!(s.ends_with("Connection: close\r\n\r\n"));
    }
}
