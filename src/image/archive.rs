//! The zip package (`function.package: zip`): `bootstrap` at the root and the baked model, in an archive whose
//! bytes depend only on its inputs, so the same build always gives the same sha256 and the same `CodeSha256`.
use std::io::{Cursor, Read, Write};

use base64::Engine as _;

use super::context::{sha256_hex, Entry, FileSummary};

/// Where Lambda unpacks a zip package (`LAMBDA_TASK_ROOT`); a baked model is read from here.
pub const TASK_ROOT: &str = "/var/task";

/// Deflate at a fixed level: another level (or another default) would change the bytes.
const LEVEL: i64 = 6;

/// A packed zip.
#[derive(Debug, Clone)]
pub struct Archive {
    pub bytes: Vec<u8>,
    /// Hex sha256 of `bytes`: the content address of its S3 key.
    pub sha256: String,
    pub files: Vec<FileSummary>,
}

/// Lambda's `CodeSha256` of a zip: base64 of the raw sha256 digest (not hex).
pub fn code_sha256(hex_sha256: &str) -> Option<String> {
    let raw = hex::decode(hex_sha256).ok().filter(|r| r.len() == 32)?;
    Some(base64::engine::general_purpose::STANDARD.encode(raw))
}

/// Packs entries sorted by name, each with its mode, the zip epoch (1980-01-01) as its time and deflate at a
/// fixed level: no clock, owner or order of the caller reaches the bytes.
pub fn pack(entries: &[Entry]) -> zip::result::ZipResult<Archive> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut files = Vec::with_capacity(sorted.len());
    for e in sorted {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(LEVEL))
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(e.mode);
        w.start_file(e.path.as_str(), options)?;
        w.write_all(&e.data)?;
        files.push(FileSummary { path: e.path.clone(), size: e.data.len() as u64, sha256: sha256_hex(&e.data) });
    }
    let bytes = w.finish()?.into_inner();
    let sha256 = sha256_hex(&bytes);
    Ok(Archive { bytes, sha256, files })
}

/// One file of a zip and its unix mode; `invoke --local` runs the package's own `bootstrap` this way.
pub fn read_file(bytes: &[u8], name: &str) -> zip::result::ZipResult<(Vec<u8>, Option<u32>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))?;
    let mut file = archive.by_name(name)?;
    let mode = file.unix_mode();
    let mut data = Vec::with_capacity(file.size() as usize);
    file.read_to_end(&mut data)?;
    Ok((data, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(order: &[&str]) -> Vec<Entry> {
        order
            .iter()
            .map(|p| Entry {
                path: p.to_string(),
                mode: if *p == "bootstrap" { 0o755 } else { 0o644 },
                data: format!("{p} bytes ").repeat(1000).into_bytes(),
            })
            .collect()
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes_whatever_their_order() {
        let a = pack(&entries(&["bootstrap", "model.onnx"])).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = pack(&entries(&["model.onnx", "bootstrap"])).unwrap();
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["bootstrap", "model.onnx"]);
        let other = pack(&entries(&["bootstrap"])).unwrap();
        assert_ne!(a.sha256, other.sha256);
    }

    #[test]
    fn bootstrap_is_executable_and_compressed_and_reads_back() {
        let a = pack(&entries(&["bootstrap", "model.onnx"])).unwrap();
        assert!(a.bytes.len() < 2 * 15_000, "deflated: {} bytes", a.bytes.len());
        let (data, mode) = read_file(&a.bytes, "bootstrap").unwrap();
        assert_eq!(data, entries(&["bootstrap"])[0].data);
        assert_eq!(mode.map(|m| m & 0o777), Some(0o755));
        assert_eq!(read_file(&a.bytes, "model.onnx").unwrap().1.map(|m| m & 0o777), Some(0o644));
        let mut archive = zip::ZipArchive::new(Cursor::new(&a.bytes)).unwrap();
        let file = archive.by_index(0).unwrap();
        assert_eq!(file.compression(), zip::CompressionMethod::Deflated);
        assert_eq!(file.last_modified().map(|t| (t.year(), t.month(), t.day())), Some((1980, 1, 1)));
    }

    #[test]
    fn code_sha256_is_base64_of_the_raw_digest() {
        // sha256("") in hex and as Lambda's CodeSha256 would print it
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(code_sha256(hex).as_deref(), Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="));
        assert_eq!(code_sha256("zz"), None);
    }
}
