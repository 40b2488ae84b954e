//! Arbitrary bytes -> (lossy) UTF-8 -> `Config::from_yaml`: must never panic; errors are fine.
//!
//! No filesystem side effects: the loader only ever *reads* (PEM bundles, client certificate and
//! key), relative paths resolve against a directory that does not exist (`/nonexistent`, so every
//! relative read is ENOENT, `..` included), and inputs naming an absolute path are skipped so that
//! a fuzzed `pem_files: [/dev/zero]` cannot turn into an endless read of a device file.

#![no_main]

use std::path::{Path, PathBuf};

use certprobe::config::raw::RawConfig;
use certprobe::config::{parse_yaml, BaseDir, Config};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "<fuzz>";

/// Whether the (already deserializable) config names a file by absolute path.
fn names_an_absolute_path(raw: &RawConfig) -> bool {
    let stores = raw
        .trust_stores
        .iter()
        .flat_map(|m| m.values())
        .flat_map(|s| s.pem_files.iter().map(|f| f.value.as_str()));
    let client = raw.endpoints.iter().flat_map(|e| {
        [e.client_cert.as_ref(), e.client_key.as_ref()]
            .into_iter()
            .flatten()
            .map(|s| s.value.as_str())
    });
    stores.chain(client).any(|p| Path::new(p).is_absolute())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The same deserialization `from_yaml` starts with: if it fails, `from_yaml` fails at the
    // same step before touching any file; if it succeeds, look at the paths first.
    if let Ok(raw) = parse_yaml::<RawConfig>(&text, ORIGIN) {
        if names_an_absolute_path(&raw) {
            return;
        }
    }
    let result = Config::from_yaml(&text, ORIGIN, BaseDir(PathBuf::from("/nonexistent")));
    if let Err(errors) = result {
        // Every error must render (operators read them); rendering must not panic either.
        for e in &errors.0 {
            let _ = e.to_string();
        }
    }
});
