//! Reading the files a config names (the config itself, PEM bundles, keys, the web config) as
//! hostile input (issue 16, item 5): the file is opened non-blocking (a FIFO never blocks the
//! open), anything that is not a regular file (FIFO, `/dev/zero`, a directory, a socket) is
//! refused, and the size is capped, both by `fstat` and while reading (a file that grows
//! between the two is still cut off). Errors are [`ReadError`] and, for PEM files,
//! [`PemError`]: one reader and one set of messages for the config loader, the ad-hoc command
//! line, the web config and the healthcheck.

use std::io::Read;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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

/// Why a file named by the config (or the command line) could not be read. The message names
/// the file and what is wrong with it, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening, `fstat` or reading failed.
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A FIFO, a device, a directory, a socket.
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    /// Larger than the cap, by `fstat`.
    #[error("{} is {len} bytes, more than the limit of {max} bytes", path.display())]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    /// Grew past the cap between `fstat` and the read.
    #[error("{} grew past the limit of {max} bytes while being read", path.display())]
    Grew { path: PathBuf, max: u64 },
    /// [`read_capped_string`]: the bytes are not UTF-8.
    #[error("{} is not UTF-8 text", path.display())]
    NotUtf8 {
        path: PathBuf,
        #[source]
        source: std::string::FromUtf8Error,
    },
}

/// The bytes of `path`, a regular file of at most `max` bytes. The error says what is wrong
/// (without the contents): "cannot read …", "… is a FIFO, not a regular file", "… is N bytes,
/// more than the limit of M bytes".
pub fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = opts.open(path).map_err(io)?;
    let md = file.metadata().map_err(io)?;
    if !md.file_type().is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: describe(md.file_type()),
        });
    }
    if md.len() > max {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            len: md.len(),
            max,
        });
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    file.take(max + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > max {
        return Err(ReadError::Grew {
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_string(path: &Path, max: u64) -> Result<String, ReadError> {
    String::from_utf8(read_capped(path, max)?).map_err(|source| ReadError::NotUtf8 {
        path: path.to_path_buf(),
        source,
    })
}

/// Why a PEM file could not be used: unreadable, not PEM, or without what it should hold.
/// The message names the file, never its contents (a key file's bytes are never echoed).
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A PEM section does not decode ([`crate::chain::pem_error_text`] says how).
    #[error("{} is not valid PEM: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
    /// [`read_pem_chain`]: no CERTIFICATE section.
    #[error("{} contains no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    /// [`read_pem_key`]: no private key section.
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey { path: PathBuf },
}

/// Every CERTIFICATE section of a PEM file of at most [`MAX_PEM_BYTES`] (possibly none).
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let bytes = read_capped(path, MAX_PEM_BYTES)?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::Invalid {
            path: path.to_path_buf(),
            detail: crate::chain::pem_error_text(&e),
        })
}

/// [`read_pem_certs`], refusing a file without any certificate (a chain to present).
pub fn read_pem_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = read_pem_certs(path)?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key of a PEM key file of at most [`MAX_KEY_BYTES`], and the file's
/// bytes (for digests).
pub fn read_pem_key(path: &Path) -> Result<(PrivateKeyDer<'static>, Vec<u8>), PemError> {
    let bytes = read_capped(path, MAX_KEY_BYTES)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| PemError::NoKey {
        path: path.to_path_buf(),
    })?;
    Ok((key, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_directories_and_oversized_files_are_refused() {
        let e = read_capped(Path::new("/dev/zero"), MAX_CONFIG_BYTES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("character device, not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_capped(dir.path(), 10).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let t = std::time::Instant::now();
        let e = read_capped(&fifo, 10).unwrap_err().to_string();
        assert!(e.contains("a FIFO, not a regular file"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        let big = dir.path().join("big.pem");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_PEM_BYTES + 1)
            .unwrap();
        let e = read_capped(&big, MAX_PEM_BYTES).unwrap_err().to_string();
        assert!(e.contains("more than the limit of 16777216 bytes"), "{e}");
        let ok = dir.path().join("ok");
        std::fs::write(&ok, b"hello").unwrap();
        assert_eq!(read_capped(&ok, 5).unwrap(), b"hello");
    }
}
