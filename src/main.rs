//! The `certprobe` binary: everything lives in the library; see [`certprobe::cli`].

/// jemalloc returns freed pages to the OS on a timer (configured in `.cargo/config.toml`), where
/// glibc malloc keeps a reload's transient resident; see docs/dependencies.md.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    certprobe::cli::main_entry()
}
