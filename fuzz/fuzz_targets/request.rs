//! `parse_request` on arbitrary bytes, as the acceptor of a fixed network.
//!
//! Properties:
//! - it never panics, and neither do the error's texts;
//! - an accepted request names two addresses on the network, and the line
//!   that `request_line` writes for them parses back to the same two.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lonet::handshake::{parse_request, request_line};

const NETWORK: &str = "lonetvectors";

fuzz_target!(|line: &[u8]| {
    match parse_request(line, NETWORK) {
        Ok((src, dst)) => {
            assert_eq!(src.network(), NETWORK);
            assert_eq!(dst.network(), NETWORK);
            let again = request_line(NETWORK, &src, &dst);
            assert_eq!(
                parse_request(&again, NETWORK),
                Ok((src.clone(), dst.clone())),
                "request_line({src:?}, {dst:?}) = {again:?} does not read back"
            );
        }
        Err(err) => {
            let _ = err.to_string();
            let _ = err.reply_text();
            let _ = err.reply_line(NETWORK);
        }
    }
});
