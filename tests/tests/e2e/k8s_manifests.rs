//! The Kubernetes manifests pass the offline check (`scripts/check-k8s.sh`: every kustomization
//! rendered, then validated strictly against the Kubernetes schemas), and the check fails on
//! broken copies, so a green check means something. Needs `kubectl` (or `kustomize`) and
//! `python3` on the PATH; the validator is installed from PyPI on first use.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_path_buf()
}

/// Runs the check on `k8s_dir`; its exit status and everything it printed.
fn check(k8s_dir: &Path) -> (bool, String) {
    let output = Command::new("bash")
        .arg(repository().join("scripts/check-k8s.sh"))
        .arg(k8s_dir)
        .output()
        .expect("bash runs the check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A copy of `k8s/` in a fresh temporary directory, removed on drop.
struct Copy(PathBuf);

impl Copy {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tierline-k8s-{}", uuid::Uuid::new_v4()));
        let status = Command::new("cp")
            .arg("-r")
            .arg(repository().join("k8s"))
            .arg(&dir)
            .status()
            .expect("cp runs");
        assert!(status.success(), "copying k8s/");
        Self(dir)
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.0.join(file);
        let text = std::fs::read_to_string(&path).expect("manifest");
        assert!(text.contains(from), "{file} contains {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_overlay_renders_and_validates() {
    let (valid, output) = check(&repository().join("k8s"));
    assert!(valid, "{output}");
    for rendered in ["ok   base ", "ok   overlays/dev ", "ok   overlays/prod "] {
        assert!(
            output.contains(rendered),
            "{rendered:?} missing from:\n{output}"
        );
    }
}

#[test]
fn a_wrong_type_fails_the_check() {
    let broken = Copy::new();
    broken.edit(
        "base/customer/deployment.yaml",
        "containerPort: 50051",
        "containerPort: fifty",
    );
    let (valid, output) = check(&broken.0);
    assert!(!valid, "{output}");
    assert!(
        output.contains("FAIL overlays/prod") && output.contains("containerPort"),
        "{output}"
    );
}

#[test]
fn an_unknown_field_fails_the_check() {
    let broken = Copy::new();
    // A typo in a probe: without strict validation the probe would be silently dropped.
    broken.edit(
        "base/scoring/deployment.yaml",
        "failureThreshold: 2",
        "failureTreshold: 2",
    );
    let (valid, output) = check(&broken.0);
    assert!(!valid, "{output}");
    assert!(output.contains("failureTreshold"), "{output}");
}

#[test]
fn a_kustomization_that_cannot_render_fails_the_check() {
    let broken = Copy::new();
    broken.edit(
        "overlays/prod/kustomization.yaml",
        "- path: pdb.yaml",
        "- path: missing.yaml",
    );
    let (valid, output) = check(&broken.0);
    assert!(!valid, "{output}");
    assert!(
        output.contains("FAIL overlays/prod: kustomize could not render it"),
        "{output}"
    );
}
