//! The models folder, looked up one way for the binary, the benchmarks and every test:
//! `$SWITCHYARD_MODELS` when set, else the workspace's `models/`, which
//! `scripts/fetch-models.sh` fills.

use std::path::{Path, PathBuf};

/// The environment variable that names another models folder.
pub const ENV: &str = "SWITCHYARD_MODELS";

/// A model file or folder that is not where it should be.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is missing: run scripts/fetch-models.sh (or set SWITCHYARD_MODELS to the folder holding it)",
    .0.display()
)]
pub struct Missing(pub PathBuf);

/// The models folder: `$SWITCHYARD_MODELS`, or `models/` at the root of this workspace.
pub fn dir() -> PathBuf {
    std::env::var_os(ENV)
        .map(PathBuf::from)
        .unwrap_or_else(workspace_models)
}

/// `name` (a file or a folder) in the models folder, when it is there.
pub fn find(name: &str) -> Result<PathBuf, Missing> {
    let path = dir().join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(Missing(path))
    }
}

fn workspace_models() -> PathBuf {
    // This crate is crates/models, two levels below the workspace root.
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(crate_dir)
        .join("models")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_folder_is_the_workspace_models_folder() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert_eq!(
            workspace_models().canonicalize().ok(),
            root.join("models").canonicalize().ok()
        );
        assert!(workspace_models().ends_with("models"));
        assert!(!workspace_models().to_string_lossy().contains(".."));
    }

    #[test]
    fn a_missing_model_says_how_to_fetch_it() {
        let message = Missing(PathBuf::from("/x/none.gguf")).to_string();
        assert!(message.contains("/x/none.gguf"), "{message}");
        assert!(message.contains("scripts/fetch-models.sh"), "{message}");
        assert!(message.contains(ENV), "{message}");
    }
}
