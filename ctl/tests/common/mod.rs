//! Running the real `intakectl` binary, for every test file of this crate.

use serde_json::Value;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("JSON output ({e}): {}", self.stdout))
    }
}

pub async fn intakectl(url: &str, token: &str, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_intakectl"))
        .args(args)
        .env("INTAKE_ADMIN_URL", url)
        .env("INTAKE_ADMIN_TOKEN", token)
        .output()
        .await
        .expect("intakectl runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
