//! The certprobe binary runs on jemalloc with the settings of `.cargo/config.toml` compiled in
//! (two arenas, freed pages returned after one second): the soak's RSS criterion depends on it
//! (docs/reliability.md). `stats_print` makes jemalloc print its effective options at exit.

use std::process::Command;

#[test]
fn the_binary_uses_jemalloc_with_the_repository_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats = String::from_utf8_lossy(&out.stderr);
    for option in [
        "opt.narenas: 2\n",
        "opt.dirty_decay_ms: 1000 ",
        "opt.muzzy_decay_ms: 0 ",
    ] {
        assert!(
            stats.contains(option),
            "jemalloc option {option:?} not in effect; stats:\n{}",
            &stats[..stats.len().min(4000)]
        );
    }
}

#[test]
fn run_time_settings_still_override_the_compiled_in_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_certprobe"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true,narenas:3")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("opt.narenas: 3\n"));
}
