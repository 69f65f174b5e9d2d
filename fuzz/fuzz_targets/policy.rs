//! The policy loader: any text either parses into a policy that decides without panicking, or
//! is refused with a field path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zhucan_domain::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text) {
        Ok(p) => {
            // A policy that loads must survive a round trip through its own JSON.
            let json = serde_json::to_string(&p).expect("serialise a parsed policy");
            Policy::parse(&json).expect("a parsed policy parses again");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
