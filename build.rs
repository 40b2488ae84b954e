//! Embeds the git commit in `--version` and `certprobe_build_info`.

use std::path::{Path, PathBuf};

fn git(args: &[&str]) -> Option<String> {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .or_else(|| std::env::var("CERTPROBE_GIT_COMMIT").ok())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CERTPROBE_GIT_COMMIT={commit}");
    // Rerun when HEAD moves. Ask git where HEAD and the current branch's ref live (in a linked
    // worktree `.git` is a file and HEAD is under the common dir's `worktrees/<name>/`), watch
    // only that branch (other worktrees commit to other refs) and only paths that exist: a
    // missing path makes cargo rerun this script, and rebuild the crate, on every build.
    let mut watch: Vec<PathBuf> = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch.push(Path::new(&dir).join("HEAD"));
    }
    if let (Some(common), Some(branch)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        let loose = Path::new(&common).join(&branch);
        watch.push(if loose.exists() {
            loose
        } else {
            Path::new(&common).join("packed-refs")
        });
    }
    for path in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-env-changed=CERTPROBE_GIT_COMMIT");
}
