//! Fuzzes the daemon's socket request decoder with arbitrary request lines.
//!
//! Beyond "never panics": an accepted request must survive being encoded and decoded again,
//! and an error reply must go out as one JSON line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use svc::protocol::{Response, decode_request, encode_request, encode_response};

fuzz_target!(|line: &[u8]| {
    match decode_request(line) {
        Ok(req) => {
            let again = decode_request(encode_request(&req).as_bytes());
            assert_eq!(again.as_ref(), Ok(&req), "request does not round-trip");
        }
        Err(e) => {
            assert!(!e.message.is_empty(), "error reply without a message: {e:?}");
            let reply = encode_response(&Response::Error(e));
            assert_eq!(reply.find('\n'), Some(reply.len() - 1), "reply is not one line: {reply:?}");
        }
    }
});
