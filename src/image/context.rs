//! The build context as a value: the rendered Dockerfile, `bootstrap` and the baked model, packed into a
//! reproducible tar whose sha256 names the image. Pure code, no I/O, so plans and tests see exactly what Docker gets.
use std::collections::BTreeMap;

use mlambda_runtime::env;
use serde::Serialize;
use sha2::{Digest, Sha256};

const TEMPLATE: &str = include_str!("../../templates/Dockerfile");

/// Where a baked model lives in the image; the runtime reads `MODEL_PATH`.
pub const BAKED_MODEL_PATH: &str = "/opt/model.onnx";

/// One file of the context.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

/// What `--dry-run` shows for each file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The packed context.
#[derive(Debug, Clone)]
pub struct Context {
    pub tar: Vec<u8>,
    /// sha256 of `tar`; the default image tag carries its first 12 digits.
    pub sha256: String,
    pub files: Vec<FileSummary>,
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Packs entries in order with fixed owners and timestamps, so the same inputs always give the same bytes
/// (and so the same tag, and the legacy builder's cache hits).
pub fn assemble(entries: &[Entry]) -> std::io::Result<Context> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut files = Vec::with_capacity(entries.len());
    for e in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(e.data.len() as u64);
        header.set_mode(e.mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append_data(&mut header, &e.path, e.data.as_slice())?;
        files.push(FileSummary { path: e.path.clone(), size: e.data.len() as u64, sha256: sha256_hex(&e.data) });
    }
    let tar = builder.into_inner()?;
    let sha256 = sha256_hex(&tar);
    Ok(Context { tar, sha256, files })
}

/// The inputs of the Dockerfile template.
#[derive(Debug, Clone)]
pub struct DockerfileSpec {
    pub base: String,
    pub bake_model: bool,
    pub features: Option<Vec<String>>,
    pub model_version: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub mlambda_version: String,
}

/// Renders `templates/Dockerfile`.
pub fn render_dockerfile(spec: &DockerfileSpec) -> String {
    // One ENV and one LABEL instruction: every instruction is a container commit, slow on vfs.
    let mut env = vec![
        format!("{}={}", env::MODEL_VERSION, quote(&spec.model_version)),
        format!("{}={}", env::METRICS_NAMESPACE, quote(&spec.namespace)),
    ];
    if let Some(features) = &spec.features {
        env.insert(0, format!("{}={}", env::MODEL_FEATURES, quote(&features.join(","))));
    }
    let model = if spec.bake_model {
        env.insert(0, format!("{}={BAKED_MODEL_PATH}", env::MODEL_PATH));
        format!("COPY model.onnx {BAKED_MODEL_PATH}\n")
    } else {
        String::new()
    };
    let labels: Vec<String> = spec.labels.iter().map(|(k, v)| format!("{}={}", quote(k), quote(v))).collect();
    TEMPLATE
        .replace("{{mlambda_version}}", &spec.mlambda_version)
        .replace("{{base}}", &spec.base)
        .replace("{{model}}", &model)
        .replace("{{env}}", &env.join(" \\\n    "))
        .replace("{{labels}}", &labels.join(" \\\n      "))
}

/// A double-quoted Dockerfile word: backslash, quote and `$` (which ENV would expand) are escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' | '"' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What the ELF headers say about a `bootstrap` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfInfo {
    /// `e_machine`: 62 x86_64, 183 aarch64.
    pub machine: u16,
    /// Has a `PT_INTERP` program header, i.e. needs a dynamic loader a scratch image does not have.
    pub dynamic: bool,
}

impl ElfInfo {
    pub fn arch(&self) -> &'static str {
        match self.machine {
            62 => "x86_64",
            183 => "arm64",
            3 => "x86",
            40 => "arm",
            _ => "unknown",
        }
    }
}

/// Reads the ELF header and program headers; `Err` says why the bytes are not a usable executable.
pub fn parse_elf(b: &[u8]) -> Result<ElfInfo, &'static str> {
    if b.len() < 52 || &b[..4] != b"\x7fELF" {
        return Err("is not an ELF executable");
    }
    let is64 = match b[4] {
        1 => false,
        2 => true,
        _ => return Err("has an unknown ELF class"),
    };
    let le = match b[5] {
        1 => true,
        2 => false,
        _ => return Err("has an unknown ELF byte order"),
    };
    let u16_at = |o: usize| -> Option<u64> {
        let s: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(u64::from(if le { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) }))
    };
    let u32_at = |o: usize| -> Option<u64> {
        let s: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(u64::from(if le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) }))
    };
    let u64_at = |o: usize| -> Option<u64> {
        let s: [u8; 8] = b.get(o..o + 8)?.try_into().ok()?;
        Some(if le { u64::from_le_bytes(s) } else { u64::from_be_bytes(s) })
    };
    let truncated = "has truncated ELF headers";
    let machine = u16_at(18).ok_or(truncated)? as u16;
    let (phoff, phentsize, phnum) =
        if is64 { (u64_at(32), u16_at(54), u16_at(56)) } else { (u32_at(28), u16_at(42), u16_at(44)) };
    let (phoff, phentsize, phnum) = (phoff.ok_or(truncated)?, phentsize.ok_or(truncated)?, phnum.ok_or(truncated)?);
    let mut dynamic = false;
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).map_err(|_| truncated)?;
        const PT_INTERP: u64 = 3;
        if u32_at(at).ok_or(truncated)? == PT_INTERP {
            dynamic = true;
        }
    }
    Ok(ElfInfo { machine, dynamic })
}

/// Whether a Cargo.toml is mlambda's own workspace root (a `[workspace]` whose members include `runtime`),
/// where `build` can compile `bootstrap` itself.
pub fn is_mlambda_workspace(cargo_toml: &str) -> bool {
    let Some(ws) = cargo_toml.split("[workspace]").nth(1) else {
        return false;
    };
    let section = ws.split("\n[").next().unwrap_or("");
    section.lines().skip_while(|l| !l.trim_start().starts_with("members")).take(8).any(|l| l.contains("\"runtime\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(bake: bool) -> DockerfileSpec {
        DockerfileSpec {
            base: "scratch".into(),
            bake_model: bake,
            features: Some(vec!["a".into(), "b".into()]),
            model_version: "v1".into(),
            namespace: "ChurnModel".into(),
            labels: BTreeMap::from([("org.mlambda.model.version".to_string(), "v1".to_string())]),
            mlambda_version: "0.1.0".into(),
        }
    }

    #[test]
    fn the_dockerfile_sets_the_entrypoint_env_and_labels() {
        let d = render_dockerfile(&spec(false));
        assert!(d.contains("FROM scratch\nCOPY bootstrap /bootstrap\nENV MODEL_FEATURES=\"a,b\" \\\n"), "{d}");
        assert!(d.contains("MODEL_VERSION=\"v1\" \\\n    METRICS_NAMESPACE=\"ChurnModel\"\n"), "{d}");
        assert!(d.contains("LABEL \"org.mlambda.model.version\"=\"v1\"\n"), "{d}");
        assert!(d.ends_with("ENTRYPOINT [\"/bootstrap\"]\n"), "{d}");
        assert!(!d.contains("MODEL_PATH") && !d.contains("{{"), "{d}");
    }

    #[test]
    fn a_baked_model_is_copied_and_pointed_to() {
        let d = render_dockerfile(&spec(true));
        assert!(d.contains("COPY model.onnx /opt/model.onnx\nENV MODEL_PATH=/opt/model.onnx \\\n"), "{d}");
    }

    #[test]
    fn quoting_stops_env_expansion_and_escapes() {
        assert_eq!(quote(r#"a"b\c$HOME"#), r#""a\"b\\c\$HOME""#);
    }

    #[test]
    fn the_same_files_give_the_same_tar_and_hash() {
        let files = || vec![Entry { path: "Dockerfile".into(), mode: 0o644, data: b"FROM scratch\n".to_vec() }];
        let (a, b) = (assemble(&files()).unwrap(), assemble(&files()).unwrap());
        assert_eq!(a.tar, b.tar);
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.files[0].size, 13);
        let mut archive = tar::Archive::new(a.tar.as_slice());
        let names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        assert_eq!(names, ["Dockerfile"]);
        let other = assemble(&[Entry { path: "Dockerfile".into(), mode: 0o644, data: b"FROM x\n".to_vec() }]).unwrap();
        assert_ne!(a.sha256, other.sha256);
    }

    /// A minimal 64-bit little-endian ELF with the given program header types.
    fn elf64(machine: u16, phdrs: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * phdrs.len()];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, t) in phdrs.iter().enumerate() {
            b[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
        }
        b
    }

    #[test]
    fn pt_interp_marks_a_dynamic_binary() {
        assert_eq!(parse_elf(&elf64(62, &[6, 3, 1])).unwrap(), ElfInfo { machine: 62, dynamic: true });
        let stat = parse_elf(&elf64(183, &[1, 1])).unwrap();
        assert!(!stat.dynamic);
        assert_eq!(stat.arch(), "arm64");
        assert_eq!(parse_elf(b"#!/bin/sh\necho hi\n").unwrap_err(), "is not an ELF executable");
        let mut cut = elf64(62, &[1, 3]);
        cut.truncate(100);
        assert_eq!(parse_elf(&cut).unwrap_err(), "has truncated ELF headers");
    }

    #[test]
    fn this_machines_true_is_dynamic() {
        // Debian's coreutils are dynamically linked: a real-world check of the parser.
        if let Ok(b) = std::fs::read("/bin/true") {
            assert!(parse_elf(&b).unwrap().dynamic);
        }
    }

    #[test]
    fn the_workspace_is_recognised_by_its_runtime_member() {
        assert!(is_mlambda_workspace("[package]\nname = \"mlambda\"\n\n[workspace]\nmembers = [\"runtime\"]\n"));
        assert!(is_mlambda_workspace("[workspace]\nmembers = [\n  \"cli\",\n  \"runtime\",\n]\n"));
        assert!(!is_mlambda_workspace("[package]\nname = \"x\"\n[dependencies]\nruntime = \"1\"\n"));
        assert!(!is_mlambda_workspace("[workspace]\nmembers = [\"a\"]\n[dependencies]\nx = \"runtime\"\n"));
    }
}
