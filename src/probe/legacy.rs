//! Legacy capture for servers that only speak TLS 1.0/1.1 or CBC-only suites: a hand-built
//! ClientHello, then ServerHello + Certificate parsing (cleartext before TLS 1.3).
