//! The `certprobe` binary: everything lives in the library; see [`certprobe::cli`].

fn main() -> std::process::ExitCode {
    certprobe::cli::main_entry()
}
