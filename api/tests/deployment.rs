//! The container set-up: compose.yaml validates with docker-compose and names the whole
//! stack, and the Dockerfile builds every binary in stages into a slim image run as a
//! non-root user.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn compose_file_is_valid_and_has_the_whole_stack() {
    let compose = root().join("compose.yaml");
    let check = Command::new("docker-compose")
        .arg("-f")
        .arg(&compose)
        .args(["config", "--quiet"])
        .output()
        .expect("docker-compose on PATH (scripts/test installs it)");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let services = Command::new("docker-compose")
        .arg("-f")
        .arg(&compose)
        .args(["config", "--services"])
        .output()
        .expect("docker-compose runs");
    let mut services: Vec<String> = String::from_utf8_lossy(&services.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    services.sort();
    assert_eq!(
        services,
        // grafana and prometheus are the `monitoring` profile's.
        [
            "admin",
            "api",
            "grafana",
            "mail",
            "postgres",
            "prometheus",
            "redis",
            "worker"
        ]
    );
    let resolved = Command::new("docker-compose")
        .arg("-f")
        .arg(&compose)
        .arg("config")
        .output()
        .expect("docker-compose runs");
    let text = String::from_utf8_lossy(&resolved.stdout);
    assert!(
        text.contains("--appendonly"),
        "Redis keeps an append-only file"
    );
    assert!(
        text.contains("condition: service_healthy"),
        "start order waits for health"
    );
    assert!(!text.contains("container_name"), "workers can be scaled");
}

#[test]
fn dockerfile_builds_in_stages_and_runs_as_non_root() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.contains("cargo chef cook"),
        "dependency layer cached with cargo-chef"
    );
    assert!(
        dockerfile.matches("\nFROM ").count() >= 3,
        "multi-stage build"
    );
    assert!(dockerfile.contains("FROM debian:bookworm-slim AS runtime"));
    for binary in ["intake-api", "intake-worker", "intake-admin", "intakectl"] {
        assert!(dockerfile.contains(binary), "{binary} is built");
    }
    let user = dockerfile
        .lines()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "USER root");
}
