//! `mlambda init`: scaffold mlambda.yaml, an example payload and an export script from `templates/init`, and with
//! `--ci` a CI workflow from `templates/ci`.
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::cli::InitArgs;
use crate::error::{Error, Result};
use crate::report::Report;

const FILES: [(&str, &str); 3] = [
    ("mlambda.yaml", include_str!("../../templates/init/mlambda.yaml")),
    ("payload.json", include_str!("../../templates/init/payload.json")),
    ("export_model.py", include_str!("../../templates/init/export_model.py")),
];

/// The CI workflows `--ci` writes: name, path in the project, text.
const CI: [(&str, &str, &str); 1] =
    [("github", ".github/workflows/mlambda.yml", include_str!("../../templates/ci/github.yml"))];

/// The files to write: the project's, and the CI workflow `--ci` names.
fn files(ci: Option<&str>) -> Result<Vec<(&'static str, &'static str)>> {
    let mut out = FILES.to_vec();
    if let Some(name) = ci {
        let Some((_, path, text)) = CI.iter().find(|(n, _, _)| *n == name) else {
            let known: Vec<&str> = CI.iter().map(|(n, _, _)| *n).collect();
            return Err(Error::user(format!(
                "unknown CI `{name}`; mlambda writes workflows for: {}",
                known.join(", ")
            ))
            .help("pass `--ci github`, or leave `--ci` out"));
        };
        out.push((path, text));
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
struct Outcome {
    dir: String,
    name: String,
    dry_run: bool,
    files: Vec<FileAction>,
}

#[derive(Debug, Serialize)]
struct FileAction {
    path: String,
    action: &'static str,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would scaffold" } else { "scaffolded" };
        writeln!(f, "{verb} `{}` in {}", self.name, self.dir)?;
        for file in &self.files {
            writeln!(f, "  {:<11} {}", file.action, file.path)?;
        }
        if !self.dry_run {
            writeln!(f, "next: export your model to model.onnx, list its features in mlambda.yaml, then `mlambda up`")?;
        }
        Ok(())
    }
}

/// A function, repository and model name from the directory name: lowercase, `-` for anything else.
fn project_name(dir: &Path) -> String {
    let base = std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_default();
    let name: String = base.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "my-model".into()
    } else {
        name
    }
}

pub async fn run(args: &InitArgs) -> Result<Report> {
    let dir = &args.dir;
    if dir.exists() && !dir.is_dir() {
        return Err(Error::user(format!("`{}` exists and is not a directory", dir.display()))
            .help("pass a directory to scaffold into"));
    }
    let files = files(args.ci.as_deref())?;
    let existing: Vec<&str> = files.iter().map(|(n, _)| *n).filter(|n| dir.join(n).exists()).collect();
    if !existing.is_empty() && !args.force {
        return Err(Error::user(format!(
            "`{}` already has {}; nothing was written",
            dir.display(),
            existing.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ))
        .help("pass `--force` to overwrite them, or scaffold into another directory"));
    }
    let name = project_name(dir);
    let actions = files
        .iter()
        .map(|(n, _)| FileAction {
            path: dir.join(n).display().to_string(),
            action: if existing.contains(n) { "overwrite" } else { "create" },
        })
        .collect();
    let outcome =
        Outcome { dir: dir.display().to_string(), name: name.clone(), dry_run: args.dry.dry_run, files: actions };
    if !args.dry.dry_run {
        std::fs::create_dir_all(dir).map_err(|e| crate::error::io_error(dir, "create directory", e))?;
        for (file, text) in files {
            let path = dir.join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| crate::error::io_error(parent, "create directory", e))?;
            }
            std::fs::write(&path, text.replace("{{name}}", &name))
                .map_err(|e| crate::error::io_error(&path, "write", e))?;
        }
    }
    Ok(Report::new(outcome, args.dry.dry_run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_comes_from_the_directory() {
        assert_eq!(project_name(Path::new("/tmp/Churn Model_2")), "churn-model-2");
        assert_eq!(project_name(Path::new("/")), "my-model");
    }

    #[test]
    fn an_unknown_ci_is_refused_naming_the_known_ones() {
        let e = files(Some("nope")).unwrap_err();
        assert!(e.message.contains("unknown CI `nope`") && e.message.contains("github"), "{}", e.message);
        assert_eq!(e.exit_code(), 1);
        assert_eq!(files(Some("github")).unwrap().last().map(|f| f.0), Some(".github/workflows/mlambda.yml"));
        assert_eq!(files(None).unwrap().len(), FILES.len());
    }

    #[test]
    fn the_scaffolded_config_is_valid_for_the_name() {
        let text = FILES[0].1.replace("{{name}}", "churn");
        let c = crate::config::parse(&text, Path::new("mlambda.yaml")).unwrap();
        assert_eq!(c.function.name, "churn");
        assert_eq!(c.model.features.as_deref(), Some(&["feature_a".to_string(), "feature_b".to_string()][..]));
    }
}
