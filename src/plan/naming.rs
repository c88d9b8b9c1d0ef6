//! Names and keys derived from the config, in one place so every command agrees on them.

/// `<prefix>/<name>/<version>/model.onnx`, the recipe's `models/churn/v3/…` layout.
pub fn model_key(prefix: &str, name: &str, version: &str) -> String {
    format!("{}/model.onnx", model_dir(prefix, name, version))
}

/// The manifest that sits beside a model version.
pub fn manifest_key(prefix: &str, name: &str, version: &str) -> String {
    format!("{}/manifest.json", model_dir(prefix, name, version))
}

/// The key prefix holding every version of a model.
pub fn model_root(prefix: &str, name: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{name}/")
    } else {
        format!("{prefix}/{name}/")
    }
}

fn model_dir(prefix: &str, name: &str, version: &str) -> String {
    format!("{}{version}", model_root(prefix, name))
}

/// `<prefix>/<function>/<sha256>.zip`: a zip package's content-addressed key, so a key never holds two contents.
pub fn package_key(prefix: &str, function: &str, sha256: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{function}/{sha256}.zip")
    } else {
        format!("{prefix}/{function}/{sha256}.zip")
    }
}

/// The key `package_key` gave the zip whose Lambda `CodeSha256` (base64 of the raw digest) is `code_sha256`;
/// `None` for a value that is not a sha256 digest.
pub fn package_key_of_code(prefix: &str, function: &str, code_sha256: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(code_sha256).ok().filter(|r| r.len() == 32)?;
    Some(package_key(prefix, function, &hex::encode(raw)))
}

/// The default image tag: the model version plus the first 12 hex digits of the build context hash,
/// so the same inputs always give the same tag and IMMUTABLE tags never collide.
pub fn image_tag(model_version: &str, context_sha256: &str) -> String {
    let clean: String = model_version
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' })
        .collect();
    format!("{clean}-{}", &context_sha256[..12.min(context_sha256.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_sha256_names_the_key_its_zip_was_pushed_to() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let code = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        assert_eq!(package_key_of_code("packages", "churn", code), Some(package_key("packages", "churn", hex)));
        assert_eq!(package_key_of_code("packages", "churn", "c2hvcnQ="), None, "not a sha256 digest");
        assert_eq!(package_key_of_code("packages", "churn", "not base64!"), None);
    }

    #[test]
    fn package_keys_are_content_addressed_under_the_function() {
        assert_eq!(package_key("packages", "churn", "ab12"), "packages/churn/ab12.zip");
        assert_eq!(package_key("/code/", "churn", "ab12"), "code/churn/ab12.zip");
        assert_eq!(package_key("", "churn", "ab12"), "churn/ab12.zip");
    }

    #[test]
    fn keys_follow_the_recipes_layout() {
        assert_eq!(model_key("models", "churn", "v3"), "models/churn/v3/model.onnx");
        assert_eq!(manifest_key("/models/", "churn", "v3"), "models/churn/v3/manifest.json");
        assert_eq!(model_root("", "churn"), "churn/");
    }

    #[test]
    fn the_default_tag_is_stable_and_tag_safe() {
        assert_eq!(image_tag("v3", "0123456789abcdef"), "v3-0123456789ab");
        assert_eq!(image_tag("2024/01 b", "ab"), "2024-01-b-ab");
    }
}
