//! Arbitrary bytes -> `probe::legacy::parse_server_flight`: must never panic.
//!
//! The capture loop calls the parser on a growing buffer, so a prefix of the input is parsed
//! too, and what a successful parse returns must be consistent with its input.

#![no_main]

use certprobe::probe::legacy::{cipher_suite_name, parse_server_flight, version_name};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    match parse_server_flight(bytes) {
        Ok(flight) => {
            // Certificates are slices of the input: they cannot add up to more than it.
            let total: usize = flight.certificates.iter().map(Vec::len).sum();
            assert!(total <= bytes.len(), "certificates larger than the input");
            let _ = flight.is_complete();
            let _ = version_name(flight.version);
            let _ = cipher_suite_name(flight.cipher_suite);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&data[..data.len() / 2]);
});
