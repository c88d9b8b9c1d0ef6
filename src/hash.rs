//! Streamed sha256 of files: read in blocks, so a large model never sits in memory to be hashed.
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Feeds the file at `path` into `hasher` one block at a time; returns the bytes read.
pub fn update_from_file(hasher: &mut Sha256, path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(size);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// The sha256 (hex) and size of a file.
pub fn file_sha256(path: &Path) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let size = update_from_file(&mut hasher, path)?;
    Ok((hex::encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_hashes_like_its_bytes_across_block_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        let bytes: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let (sha, size) = file_sha256(&path).unwrap();
        assert_eq!((sha, size), (hex::encode(Sha256::digest(&bytes)), bytes.len() as u64));
        assert!(file_sha256(&dir.path().join("missing")).is_err());
    }
}
