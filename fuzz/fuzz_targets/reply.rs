//! `parse_reply` on arbitrary bytes, as the dialer of `pyhost:5` on a fixed
//! network.
//!
//! Properties:
//! - it never panics, and neither does the error's text;
//! - an accepted reply names an address on the network and on the dialed
//!   host, and the line that `connected_line` writes for it parses back to
//!   the same address.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lonet::handshake::{connected_line, parse_reply};
use virtnet_core::Addr;

const NETWORK: &str = "lonetvectors";

fn dst() -> &'static Addr {
    static DST: OnceLock<Addr> = OnceLock::new();
    DST.get_or_init(|| Addr::parse(NETWORK, "pyhost:5").expect("a valid address"))
}

fuzz_target!(|line: &[u8]| {
    let dst = dst();
    match parse_reply(line, NETWORK, dst) {
        Ok(accepted) => {
            assert_eq!(accepted.network(), NETWORK);
            assert_eq!(accepted.host(), dst.host());
            let again = connected_line(NETWORK, &accepted);
            assert_eq!(
                parse_reply(&again, NETWORK, dst),
                Ok(accepted.clone()),
                "connected_line({accepted:?}) = {again:?} does not read back"
            );
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
