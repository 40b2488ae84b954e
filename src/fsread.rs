//! Reading the files a config names (the config itself, PEM bundles, keys, the web config) as
//! hostile input (issue 16, item 5): the file is opened non-blocking (a FIFO never blocks the
//! open), anything that is not a regular file (FIFO, `/dev/zero`, a directory, a socket) is
//! refused, and the size is capped, both by `fstat` and while reading (a file that grows
//! between the two is still cut off).

use std::io::Read;
use std::path::Path;

/// Largest config file: about 100,000 endpoints of the richest documented shape (docs/reliability.md).
pub const MAX_CONFIG_BYTES: u64 = 256 * 1024 * 1024;
/// Largest PEM certificate bundle (the Mozilla bundle is ~220 KB).
pub const MAX_PEM_BYTES: u64 = 16 * 1024 * 1024;
/// Largest private key file.
pub const MAX_KEY_BYTES: u64 = 1024 * 1024;
/// Largest exporter web config file.
pub const MAX_WEB_CONFIG_BYTES: u64 = 1024 * 1024;

fn describe(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// The bytes of `path`, a regular file of at most `max` bytes. The error says what is wrong
/// (without the contents): "cannot read …", "… is a FIFO, not a regular file", "… is N bytes,
/// more than the limit of M bytes".
pub fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = opts
        .open(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let md = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !md.file_type().is_file() {
        return Err(format!(
            "{} is {}, not a regular file",
            path.display(),
            describe(md.file_type())
        ));
    }
    if md.len() > max {
        return Err(format!(
            "{} is {} bytes, more than the limit of {max} bytes",
            path.display(),
            md.len()
        ));
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.len() as u64 > max {
        return Err(format!(
            "{} grew past the limit of {max} bytes while being read",
            path.display()
        ));
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_string(path: &Path, max: u64) -> Result<String, String> {
    String::from_utf8(read_capped(path, max)?)
        .map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_directories_and_oversized_files_are_refused() {
        let e = read_capped(Path::new("/dev/zero"), MAX_CONFIG_BYTES).unwrap_err();
        assert!(e.contains("character device, not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_capped(dir.path(), 10).unwrap_err();
        assert!(e.contains("directory"), "{e}");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let t = std::time::Instant::now();
        let e = read_capped(&fifo, 10).unwrap_err();
        assert!(e.contains("a FIFO, not a regular file"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        let big = dir.path().join("big.pem");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_PEM_BYTES + 1)
            .unwrap();
        let e = read_capped(&big, MAX_PEM_BYTES).unwrap_err();
        assert!(e.contains("more than the limit of 16777216 bytes"), "{e}");
        let ok = dir.path().join("ok");
        std::fs::write(&ok, b"hello").unwrap();
        assert_eq!(read_capped(&ok, 5).unwrap(), b"hello");
    }
}
