//! `flexsc bench`: the comparison report has every result the issue names, with sane
//! figures. (It asserts no speed: ratios are the report's business, not a test's.)

use std::process::Command;

#[test]
fn bench_reports_every_comparison() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("bench.json");
    let svg = dir.path().join("svg");
    let out = Command::new(env!("CARGO_BIN_EXE_flexsc"))
        // Three samples a side: this checks the report, not the figures.
        .args(["bench", "--rounds", "3", "--json"])
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .expect("flexsc bench runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("| comparison | baseline |"), "{table}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid JSON");
    assert!(doc["machine"]["cpus"].as_u64().unwrap_or(0) >= 1);
    let results = doc["results"].as_array().expect("results");
    for name in [
        "single_getppid",
        "batch64_getppid",
        "batch64_write_devnull",
        "batch64_pread4k",
        "batch64_pwrite64",
        "vs_io_uring_batch64_pread4k",
        "batch64_pread4k_io_uring_backend",
        "batch64_pwrite64_io_uring_backend",
        "vs_io_uring_batch64_pwrite64",
        "mixed_work_equal_cores",
        "async_pread4k_vs_tokio_fs",
        "async_pread4k_vs_io_uring",
    ] {
        let r = results.iter().find(|r| r["name"] == name);
        let needs_uring = name.starts_with("vs_io_uring") || name.ends_with("vs_io_uring");
        if needs_uring && r.is_none() && doc["machine"]["io_uring"] == false {
            eprintln!("SKIPPED {name}: io_uring is unavailable here");
            continue;
        }
        if name.starts_with("mixed_work") && r.is_none() && doc["machine"]["cpus"].as_u64() < Some(2) {
            eprintln!("SKIPPED {name}: needs two usable cores");
            continue;
        }
        let r = r.unwrap_or_else(|| panic!("{name} missing from {doc:#}"));
        for key in ["ours_ns", "baseline_ns", "ratio"] {
            let v = r[key].as_f64().unwrap_or(-1.0);
            assert!(v.is_finite() && v > 0.0, "{name}.{key} = {v}");
        }
        assert!(r["baseline"].as_str().is_some_and(|b| !b.is_empty()));
    }
    // Raw io_uring against direct calls, for each operation of the batch rows: the floor
    // under the io_uring backend's ratios, reported beside them, not as a flexsc result.
    if doc["machine"]["io_uring"] != false {
        let raw = doc["raw_io_uring_vs_direct"]
            .as_array()
            .expect("raw_io_uring_vs_direct");
        for op in ["pread4k", "write_devnull", "pwrite64"] {
            let name = format!("raw_io_uring_batch64_{op}");
            let r = raw
                .iter()
                .find(|r| r["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{name} missing from {doc:#}"));
            let v = r["ratio"].as_f64().unwrap_or(-1.0);
            assert!(v.is_finite() && v > 0.0, "{name}.ratio = {v}");
            assert!(
                results.iter().all(|r| r["name"] != name.as_str()),
                "{name} is not a flexsc result"
            );
        }
        assert!(table.contains("raw io_uring ÷ direct syscalls"), "{table}");
    } else {
        eprintln!("SKIPPED raw_io_uring_vs_direct: io_uring is unavailable here");
    }
    // The speed targets, each judged against its result (no speed is asserted).
    let targets = doc["targets"].as_array().expect("targets");
    for name in ["single_getppid", "batch64_getppid", "vs_io_uring_batch64_pread4k"] {
        if name.starts_with("vs_io_uring") && doc["machine"]["io_uring"] == false {
            eprintln!("SKIPPED target {name}: io_uring is unavailable here");
            continue;
        }
        let t = targets
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("target {name} missing from {doc:#}"));
        let (ratio, at_most) = (
            t["ratio"].as_f64().unwrap_or(-1.0),
            t["at_most"].as_f64().unwrap_or(-1.0),
        );
        assert!(ratio > 0.0 && at_most > 0.0, "{t}");
        assert_eq!(t["met"].as_bool(), Some(ratio <= at_most), "{t}");
    }
    assert!(table.contains("| target | ratio | at most | met |"), "{table}");
    // With a service core the report says how close a single call came to its floor: the
    // call plus one cache-line round trip, which is more than the call alone.
    if doc["machine"]["cpus"].as_u64() >= Some(2) {
        let floor = doc["single_call_floor_ratio"].as_f64().unwrap_or(-1.0);
        assert!(
            floor.is_finite() && floor > 1.0,
            "single_call_floor_ratio = {floor}"
        );
        assert!(table.contains("against a floor of"), "{table}");
    }
    let plot = std::fs::read_to_string(svg.join("batch_sweep.svg")).expect("the sweep plot");
    assert!(
        plot.contains("<svg") && plot.contains("calls per batch"),
        "an SVG chart"
    );
}

#[test]
fn bench_rejects_unknown_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_flexsc"))
        .args(["bench", "--fast"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option"));
}
