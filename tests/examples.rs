//! The examples of the async API run and do their job: the echo server's self-check
//! passes, and the file hasher's hashes match an independent computation.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/<name>`. A plain `cargo test` builds the examples first; a
/// filtered one (`--test examples`) does not, so build it then.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let path = dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--example", name]);
        if dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building example {name} failed");
    }
    assert!(path.exists(), "{} missing after building it", path.display());
    path
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[test]
fn echo_server_self_check_passes() {
    let out = Command::new(example("echo_server"))
        .args(["--clients", "16", "--messages", "50"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("16 of 16 clients"), "{stdout}");
}

#[test]
fn echo_server_rejects_bad_options() {
    let out = Command::new(example("echo_server"))
        .arg("--clients")
        .arg("many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--clients takes a whole number"));
}

#[test]
fn hash_files_matches_an_independent_hash() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for (i, size) in [0usize, 1, 4095, 4096, 65_537, 300_000].into_iter().enumerate() {
        let sub = dir.path().join(format!("d{}", i % 2));
        std::fs::create_dir_all(&sub).unwrap();
        let path = sub.join(format!("f{i}"));
        let data: Vec<u8> = (0..size).map(|j| (j * 31 + i) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        expected.push(format!("{:016x}  {}", fnv1a(&data), path.display()));
    }
    let out = Command::new(example("hash_files"))
        .args(["--jobs", "3"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn hash_files_reports_unreadable_paths() {
    let out = Command::new(example("hash_files"))
        .arg("/nonexistent/flexsc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/flexsc"));
}
