//! What each request gets, over any key-value store ([`Kv`]): no sockets, no bindings.
//!
//! ```text
//! GET|HEAD /          a small HTML page
//! GET|HEAD /kv/KEY    the value (200) or 404
//! PUT /kv/KEY         store the body as the value (200 "stored")
//! ```
//! Keys are 1..=255 bytes of visible ASCII after `/kv/` (no `/`, `?`, `#`); anything
//! else is 400. Other methods on these paths are 405 with `Allow`; other paths 404.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::http::{Request, Response};

pub trait Kv {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>>;
    /// Store durably; `Err` with a one-line reason.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String>;
    /// False when there is no store (the block device could not be opened).
    fn available(&self) -> bool {
        true
    }
}

pub const INDEX: &str = "<!doctype html>
<html><head><meta charset=\"utf-8\"><title>weft httpd</title></head>
<body><h1>weft httpd</h1>
<p>An HTTP/1.1 server in a WebAssembly component, on a smoltcp stack component, in a weft unikernel.</p>
<p><code>GET /kv/KEY</code> and <code>PUT /kv/KEY</code> read and write the key-value store on the block device <code>storage</code>.</p>
</body></html>
";

pub const MAX_KEY: usize = 255;

fn valid_key(k: &str) -> bool {
    (1..=MAX_KEY).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#'))
}

fn method_not_allowed(allow: &str) -> Response {
    let mut r = Response::status(405);
    r.headers.push(format!("Allow: {allow}"));
    r
}

pub fn route(req: &Request, kv: &mut impl Kv) -> Response {
    let head = req.method == "HEAD";
    let mut resp = if req.target == "/" {
        match req.method.as_str() {
            "GET" | "HEAD" => Response::new(200, "text/html; charset=utf-8", INDEX),
            _ => method_not_allowed("GET, HEAD"),
        }
    } else if let Some(key) = req.target.strip_prefix("/kv/") {
        if !valid_key(key) {
            Response::status(400)
        } else if !kv.available() {
            Response::status(503)
        } else {
            match req.method.as_str() {
                "GET" | "HEAD" => match kv.get(key.as_bytes()) {
                    Some(v) => Response::new(200, "application/octet-stream", v),
                    None => Response::status(404),
                },
                "PUT" => match kv.put(key.as_bytes(), &req.body) {
                    Ok(()) => Response::new(200, "text/plain", "stored\n"),
                    Err(e) => Response::new(500, "text/plain", format!("{e}\n")),
                },
                _ => method_not_allowed("GET, HEAD, PUT"),
            }
        }
    } else {
        Response::status(404)
    };
    resp.head_only = head;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Parse, parse};
    use alloc::collections::BTreeMap;

    #[derive(Default)]
    struct Mem(BTreeMap<Vec<u8>, Vec<u8>>);

    impl Kv for Mem {
        fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
            self.0.get(key).cloned()
        }
        fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
            self.0.insert(key.to_vec(), value.to_vec());
            Ok(())
        }
    }

    fn req(raw: &str, kv: &mut Mem) -> (u16, String) {
        let Parse::Done(r, _) = parse(raw.as_bytes(), 8192, 1 << 20) else {
            panic!("unparsed: {raw}");
        };
        let resp = route(&r, kv);
        let mut out = Vec::new();
        resp.write(r.keep_alive, &mut out);
        (resp.status, String::from_utf8(out).unwrap())
    }

    #[test]
    fn index_and_kv() {
        let mut kv = Mem::default();
        let (s, out) = req("GET / HTTP/1.1\r\n\r\n", &mut kv);
        assert_eq!(s, 200);
        assert!(out.contains(&format!("Content-Length: {}\r\n", INDEX.len())));
        assert!(out.ends_with(INDEX));
        let (s, out) = req("HEAD / HTTP/1.1\r\n\r\n", &mut kv);
        assert_eq!(s, 200);
        assert!(out.contains(&format!("Content-Length: {}\r\n", INDEX.len())));
        assert!(out.ends_with("\r\n\r\n"));
        assert_eq!(req("GET /kv/a HTTP/1.1\r\n\r\n", &mut kv).0, 404);
        assert_eq!(
            req(
                "PUT /kv/a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz",
                &mut kv
            )
            .0,
            200
        );
        let (s, out) = req("GET /kv/a HTTP/1.1\r\n\r\n", &mut kv);
        assert_eq!(s, 200);
        assert!(
            out.ends_with("\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nxyz"),
            "{out}"
        );
    }

    #[test]
    fn errors() {
        let mut kv = Mem::default();
        let (s, out) = req("POST / HTTP/1.1\r\n\r\n", &mut kv);
        assert_eq!(s, 405);
        assert!(out.contains("Allow: GET, HEAD\r\n"));
        assert_eq!(req("DELETE /kv/a HTTP/1.1\r\n\r\n", &mut kv).0, 405);
        assert_eq!(req("GET /nope HTTP/1.1\r\n\r\n", &mut kv).0, 404);
        assert_eq!(req("GET /kv/ HTTP/1.1\r\n\r\n", &mut kv).0, 400);
        assert_eq!(req("GET /kv/a/b HTTP/1.1\r\n\r\n", &mut kv).0, 400);
        let long = format!("GET /kv/{} HTTP/1.1\r\n\r\n", "k".repeat(256));
        assert_eq!(req(&long, &mut kv).0, 400);
        let (_, out) = req("GET /nope HTTP/1.1\r\n\r\n", &mut kv);
        assert!(
            out.contains("Content-Length: 10\r\n") && out.ends_with("Not Found\n"),
            "{out}"
        );
    }
}
