//! Address parsing (`Addr::parse`, `split_host_port`) on arbitrary strings.
//!
//! Properties, for any UTF-8 string `s`:
//! - neither call panics, nor does the error's text;
//! - `Addr::parse` succeeds only where `split_host_port` does, with the same
//!   host;
//! - a parsed address reads back from its `Display` form: parsing
//!   `a.to_string()` gives `a` again (same network, host and port). This
//!   holds because a parsed host never contains `[` or `]`, and `Display`
//!   brackets exactly the hosts that contain `:`; the port is a `u32`, so
//!   `+1`, `007` or `-0` come back as `1`, `7`, `0` — equal as addresses,
//!   not as text, which is why the property is on `Addr` and not on `s`.
//! - `join_host_port` of the split parts splits back to the same parts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnet_core::{join_host_port, split_host_port, Addr};

const NETWORK: &str = "lonetvectors";

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let split = split_host_port(s);
    if let Ok((host, port)) = split {
        let joined = join_host_port(host, port);
        assert_eq!(
            split_host_port(&joined),
            Ok((host, port)),
            "join_host_port({host:?}, {port:?}) = {joined:?}"
        );
    }
    match Addr::parse(NETWORK, s) {
        Ok(a) => {
            let (host, _) = split.expect("Addr::parse succeeded where split_host_port failed");
            assert_eq!(a.host(), host);
            assert_eq!(a.network(), NETWORK);
            let shown = a.to_string();
            assert_eq!(
                Addr::parse(NETWORK, &shown).as_ref(),
                Ok(&a),
                "{s:?} parsed to {a:?}, displayed as {shown:?}"
            );
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
