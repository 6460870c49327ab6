//! `hrm train` end to end on a tiny model, and the errors a new user meets.

use std::path::Path;
use std::process::{Command, Output};

/// `hrm args` in `cwd`, logging warnings only.
fn command(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hrm"));
    command.args(args).current_dir(cwd).env("RUST_LOG", "warn");
    command
}

fn hrm(args: &[&str], cwd: &Path) -> Output {
    command(args, cwd).output().unwrap()
}

/// Starts `hrm args` in the background with its output captured.
fn spawn(args: &[&str], cwd: &Path) -> std::process::Child {
    command(args, cwd).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
}

/// Runs `hrm` with `input` on its standard input (a pipe).
fn hrm_piped(args: &[&str], cwd: &Path, input: &str) -> Output {
    use std::io::Write;
    let mut child = command(args, cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

const CONFIG: &str = r#"
[model]
arch = "hrm"
vocab_size = 0
h_layers = 1
l_layers = 1
halt_max_steps = 2

[model.block]
d_model = 32
n_heads = 4
max_seq_len = 32

[data]
seq_len = 16
batch_size = 4
validation_fraction = 0.1

[[data.sources]]
name = "tiny"
path = "tiny.txt"

[run]
steps = 6
eval_every = 3
eval_batches = 2
checkpoint_every = 3
"#;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<String> = (0..120).map(|i| format!("story {i}: the cat sat on the mat and the dog ran.")).collect();
    std::fs::write(dir.path().join("tiny.txt"), docs.join("\n<|endoftext|>\n")).unwrap();
    std::fs::write(dir.path().join("tiny.toml"), CONFIG).unwrap();
    dir
}

#[test]
fn trains_then_resumes_a_finished_run() {
    let dir = setup();
    let out = hrm(&["train", "--config", "tiny.toml", "--output", "run", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Finished at step 6"), "{}", text(&out));
    for file in
        ["config.toml", "char_tokenizer.json", "metrics.jsonl", "train.log", "checkpoints/latest", "checkpoints/best"]
    {
        assert!(dir.path().join("run").join(file).exists(), "{file} missing");
    }
    let out = hrm(&["eval", "run", "--batches", "2"], dir.path());
    assert!(out.status.success() && text(&out).contains("bits/byte"), "{}", text(&out));
    assert!(text(&out).contains("step-000000006"), "{}", text(&out));
    let out = hrm(&["eval", "run", "--batches", "2", "--checkpoint", "step-3"], dir.path());
    assert!(out.status.success() && text(&out).contains("step-000000003"), "{}", text(&out));
    let out = hrm(&["generate", "run", "--checkpoint", "best", "--prompt", "the", "--max-tokens", "4"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let out = hrm(&["eval", "run", "--compare-text", "tiny.txt", "--samples", "2", "--sample-tokens", "8"], dir.path());
    assert!(out.status.success() && text(&out).contains("character-trigram similarity 0."), "{}", text(&out));
    let out = hrm(&["eval", "run", "--compare-text", "tiny.txt", "--json"], dir.path());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let ceiling = report["reference_halves"].as_f64().unwrap_or_default();
    assert!(ceiling > 0.9 && report["trigram_similarity"].as_f64().is_some(), "{}", text(&out));
    let out = hrm(&["eval", "run", "--text", "tiny.txt", "--mode", "fast"], dir.path());
    assert!(out.status.success() && text(&out).contains("bits/byte over"), "{}", text(&out));
    let out = hrm(&["analyze", "run", "--text", "the cat sat"], dir.path());
    assert!(out.status.success() && text(&out).contains("round trip ok"), "{}", text(&out));
    assert!(dir.path().join("run/analysis/step-000000006/analysis.json").exists(), "{}", text(&out));
    let out = hrm(&["generate", "run", "--prompt", "the cat", "--max-tokens", "12", "--seed", "1"], dir.path());
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("the cat"), "{}", text(&out));
    let out = hrm_piped(&["chat", "run", "--max-tokens", "8"], dir.path(), "mode fast\nthe cat\nstatus\nquit\n");
    let chat = text(&out);
    assert!(out.status.success() && chat.contains("Reasoning mode fast: N=1 T=1."), "{chat}");
    assert!(chat.matches("Bot: ").count() == 1 && chat.contains("tokens/s"), "{chat}");
    assert!(chat.contains("trained on: tiny") && chat.contains("mode: fast"), "{chat}");
    let out = hrm(&["sweep", "run", "--max-tokens", "4", "--vocabulary-docs", "50"], dir.path());
    assert!(out.status.success() && text(&out).contains("80 outputs written"), "{}", text(&out));
    let report = std::fs::read_to_string(dir.path().join("run/sweeps/step-000000006.json")).unwrap();
    assert!(report.contains("\"schema\": \"hrm-sweep/1\"") && report.contains("\"word_formation\": "), "{report}");
    assert!(report.contains("\"trigram_similarity\": 0."), "{report}");
    // Starting the same config on the run's folder points to --resume; --resume-or-start does it.
    let again = ["train", "--config", "tiny.toml", "--output", "run", "--quiet"];
    let out = hrm(&again, dir.path());
    let said = text(&out);
    assert!(!out.status.success() && said.contains("already holds a run of this config"), "{said}");
    assert!(said.contains("step 6") && said.contains("hrm train --resume run"), "{said}");
    let out = hrm(&[&again[..], &["--resume-or-start"]].concat(), dir.path());
    assert!(out.status.success() && text(&out).contains("Finished at step 6"), "{}", text(&out));
    let other = hrm(&[&again[..], &["--resume-or-start", "--set", "model.h_layers=2"]].concat(), dir.path());
    assert!(!other.status.success() && text(&other).contains("another model config"), "{}", text(&other));
    // The saved config names the data by absolute path, so --resume works from anywhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = hrm(&["train", "--resume", run.to_str().unwrap(), "--quiet"], elsewhere.path());
    assert!(out.status.success() && text(&out).contains("Finished at step 6"), "{}", text(&out));
}

#[test]
fn set_overrides_reach_the_run() {
    let dir = setup();
    let out = hrm(
        &["train", "-c", "tiny.toml", "-o", "run", "--set", "run.steps=3", "--set", "optim.lr=3e-4", "--quiet"],
        dir.path(),
    );
    assert!(out.status.success() && text(&out).contains("Finished at step 3"), "{}", text(&out));
    let saved = std::fs::read_to_string(dir.path().join("run/config.toml")).unwrap();
    assert!(saved.contains("steps = 3") && saved.contains("lr = 0.0003"), "{saved}");
}

#[test]
fn batch_size_sets_the_micro_batch_and_its_probe_runs_a_step() {
    let dir = setup();
    let out = hrm(
        &["train", "-c", "tiny.toml", "-o", "run", "--batch-size", "3", "--set", "run.steps=2", "--quiet"],
        dir.path(),
    );
    assert!(out.status.success() && text(&out).contains("Finished at step 2"), "{}", text(&out));
    let saved = std::fs::read_to_string(dir.path().join("run/config.toml")).unwrap();
    assert!(saved.contains("batch_size = 3"), "{saved}");
    // The child `--batch-size auto` runs per candidate, on the saved config (vocabulary set):
    // it succeeds when the steps fit.
    let probe = ["probe-batch", "--config", "run/config.toml", "--batch", "5", "--device", "cpu", "--dtype", "f32"];
    let out = hrm(&[&probe[..], &["--activation-checkpointing", "balanced"]].concat(), dir.path());
    assert!(out.status.success() && text(&out).contains("batch 5 fits: loss "), "{}", text(&out));
    assert!(!text(&hrm(&["--help"], dir.path())).contains("probe-batch"), "the probe is internal");
}

#[test]
fn user_errors_say_what_is_wrong() {
    let dir = setup();
    let cases: [(&[&str], &str); 14] = [
        (&["train", "--config", "missing.toml"], "cannot read config missing.toml"),
        (&["train", "--config", "tiny.toml", "--set", "run.stepz=5", "--quiet"], "stepz"),
        (&["train", "--config", "tiny.toml", "--set", "model.block.n_heads=3", "--quiet", "-o", "r2"], "d_model"),
        (&["train", "--config", "tiny.toml", "--device", "tpu"], "possible values: cpu, cuda, wgpu, metal"),
        (&["train", "--config", "tiny.toml", "--device", "cuda", "--quiet"], "built without Cuda support"),
        (&["train", "--config", "tiny.toml", "--device", "libtorch", "--quiet"], "--features tch"),
        (&["train", "--resume", "tiny.toml"], "config.toml"),
        (&["train", "--config", "tiny.toml", "--devices", "cuda:0,wgpu:1"], "mixes device kinds"),
        (&["train", "--config", "tiny.toml", "--gpus", "2"], "--gpus needs a GPU --device"),
        (&["generate", "no-such-run"], "not an hrm run folder"),
        (&["generate", "run", "--checkpoint", "newest"], "expected latest, best, step-N or a checkpoint folder"),
        (&["train", "--config", "tiny.toml", "--batch-size", "auto", "--quiet"], "on the CPU give a number"),
        (&["train", "--config", "tiny.toml", "--batch-size", "0"], "`0`: expected a number of sequences"),
        (&["train", "--resume", "run", "--batch-size", "8"], "cannot be used with"),
    ];
    for (args, expected) in cases {
        let out = hrm(args, dir.path());
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(text(&out).contains(expected), "{args:?}: expected {expected:?} in:\n{}", text(&out));
    }
    // A run folder written by another format, and a checkpoint of another model.
    assert!(hrm(&["train", "-c", "tiny.toml", "-o", "old", "--quiet"], dir.path()).status.success());
    for step in [3, 6] {
        let manifest = dir.path().join(format!("old/checkpoints/step-{step:09}/manifest.json"));
        let old = std::fs::read_to_string(&manifest).unwrap().replace("\"format_version\": 1", "\"format_version\": 0");
        std::fs::write(&manifest, old).unwrap();
    }
    let out = hrm(&["generate", "old"], dir.path());
    assert!(!out.status.success() && text(&out).contains("use the hrm release that wrote it"), "{}", text(&out));
    let config = dir.path().join("old/config.toml");
    let bigger = std::fs::read_to_string(&config).unwrap().replace("d_model = 32", "d_model = 64");
    std::fs::write(&config, bigger).unwrap();
    for step in [3, 6] {
        let manifest = dir.path().join(format!("old/checkpoints/step-{step:09}/manifest.json"));
        let back =
            std::fs::read_to_string(&manifest).unwrap().replace("\"format_version\": 0", "\"format_version\": 1");
        std::fs::write(&manifest, back).unwrap();
    }
    let out = hrm(&["eval", "old"], dir.path());
    assert!(!out.status.success() && text(&out).contains("put back the run's own config.toml"), "{}", text(&out));
    assert_eq!(text(&out).trim().lines().count(), 1, "one line: {}", text(&out));
    // A finished run folder is not overwritten by a new run.
    assert!(
        hrm(&["train", "-c", "tiny.toml", "-o", "run", "--set", "run.steps=1", "--quiet"], dir.path()).status.success()
    );
    let out = hrm(&["train", "-c", "tiny.toml", "-o", "run", "--quiet"], dir.path());
    assert!(!out.status.success() && text(&out).contains("already holds a run"), "{}", text(&out));
}

#[test]
fn two_cpu_ranks_train_and_resume_only_on_two() {
    let dir = setup();
    let train = ["train", "-c", "tiny.toml", "-o", "run", "--devices", "cpu,cpu", "--set", "run.steps=4", "--quiet"];
    let out = hrm(&train, dir.path());
    assert!(out.status.success() && text(&out).contains("Finished at step 4"), "{}", text(&out));
    let log = std::fs::read_to_string(dir.path().join("run/train.log")).unwrap();
    assert!(log.contains("data-parallel over 2 devices"), "{log}");
    let out = hrm(&["train", "--resume", "run", "--quiet"], dir.path());
    assert!(!out.status.success() && text(&out).contains("trained on 2 device(s)"), "{}", text(&out));
    let out = hrm(&["train", "--resume", "run", "--devices", "cpu,cpu", "--quiet"], dir.path());
    assert!(out.status.success() && text(&out).contains("Finished at step 4"), "{}", text(&out));
    let out = hrm(&["info", "run"], dir.path());
    assert!(text(&out).contains("data-parallel over 2 devices"), "{}", text(&out));
}

#[test]
fn ctrl_c_pauses_with_a_checkpoint_that_resumes() {
    let dir = setup();
    let child = spawn(&["train", "-c", "tiny.toml", "-o", "run", "--set", "run.steps=100000", "--quiet"], dir.path());
    let metrics = dir.path().join("run/metrics.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&metrics).map_or(true, |m| m.lines().count() < 3) {
        assert!(std::time::Instant::now() < deadline, "training never logged");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Paused at step"), "{}", text(&out));
    let pause = std::fs::read_to_string(dir.path().join("run/checkpoints/pause")).unwrap();
    assert!(dir.path().join("run/checkpoints").join(pause.trim()).join("manifest.json").exists());
}

#[test]
fn every_subcommand_end_to_end() {
    let dir = setup();
    let run = |args: &[&str]| {
        let out = hrm(args, dir.path());
        assert!(out.status.success(), "{args:?}:\n{}", text(&out));
        text(&out)
    };
    run(&["train", "-c", "tiny.toml", "-o", "run", "--quiet"]);
    assert!(run(&["info", "run"]).contains("intact  latest best"));
    let greedy = ["--prompt", "the cat", "--max-tokens", "10", "--temperature", "0"];
    let original = run(&[&["generate", "run"], &greedy[..]].concat());
    assert!(run(&["eval", "run", "--batches", "2"]).contains("bits/byte"));
    let json = |args: &[&str]| -> serde_json::Value { serde_json::from_str(run(args).trim()).expect("one JSON value") };
    let trained = json(&["eval", "run", "--batches", "2", "--json"]);
    let fast = json(&["eval", "run", "--batches", "2", "--json", "--mode", "fast"]);
    let halting = json(&["eval", "run", "--batches", "2", "--json", "--adaptive"]);
    assert_eq!((trained["mode"].as_str(), fast["mode"].as_str()), (Some("trained"), Some("fast")));
    assert_eq!(halting["adaptive"].as_bool(), Some(true));
    assert_eq!(trained["tokens"], fast["tokens"], "the same validation split");
    assert_ne!(trained["loss"], fast["loss"], "N = T = 1 computes something else than the trained 2 × 2");
    let stories = json(&["generate", "run", "--json", "--prompt", "the cat", "--prompt", "a dog", "--max-tokens", "5"]);
    assert_eq!(stories.as_array().map(Vec::len), Some(2), "{stories}");
    assert_eq!(stories[1]["prompt"].as_str(), Some("a dog"));
    assert!(stories[0]["tokens"].as_u64().is_some_and(|n| (1..=5).contains(&n)), "{stories}");
    let plot = hrm(&["plot", "run"], dir.path());
    if text(&plot).contains("no TrueType font") {
        eprintln!("skipped the PNG check: no TrueType font on this machine (set HRM_FONT)");
    } else {
        assert!(plot.status.success(), "{}", text(&plot));
        assert!(std::fs::metadata(dir.path().join("run/loss.png")).unwrap().len() > 1000);
    }
    run(&["export", "run", "-o", "export", "--sample", "the cat sat"]);
    run(&["import", "export", "-o", "imported"]);
    run(&["export", "imported", "-o", "export2", "--sample", "the cat sat"]);
    let sample = |folder: &str| std::fs::read(dir.path().join(folder).join("sample.safetensors")).unwrap();
    assert_eq!(sample("export"), sample("export2"), "the imported model gives the same logits, bit for bit");
    assert_eq!(run(&[&["generate", "imported"], &greedy[..]].concat()), original);
    assert!(run(&["tokenizer", "inspect", "run", "--text", "the mat"]).contains("round trip: exact"));
    assert!(
        run(&["tokenizer", "train", "tiny.txt", "--kind", "bpe", "--vocab-size", "300", "-o", "tok"])
            .contains("300 ids")
    );
    assert!(run(&["tokenizer", "inspect", "tok/tokenizer.json"]).contains("vocabulary: 300 ids"));
    let inspected = run(&["data", "inspect", "-c", "tiny.toml", "--docs", "20"]);
    assert!(
        inspected.contains("20 documents") && inspected.contains("tiny: 1 file(s) from local files: "),
        "{inspected}"
    );
    // A config whose sources come from a mix file: each named, counted and sampled.
    std::fs::write(
        dir.path().join("mix.toml"),
        "name = \"m\"\n[[sources]]\nname = \"from-mix\"\npath = \"tiny.txt\"\n",
    )
    .unwrap();
    let with_mix = std::fs::read_to_string(dir.path().join("tiny.toml"))
        .unwrap()
        .replace("[[data.sources]]\nname = \"tiny\"\npath = \"tiny.txt\"", "")
        .replace("[data]\n", "[data]\nmix = \"mix.toml\"\n");
    std::fs::write(dir.path().join("mixed.toml"), with_mix).unwrap();
    let inspected = run(&["data", "inspect", "-c", "mixed.toml", "--docs", "5", "--samples", "1"]);
    assert!(inspected.contains("from-mix: 1 file(s)") && inspected.contains("(source from-mix)"), "{inspected}");
    assert!(run(&["analyze", "run", "--check-tokenizer"]).contains("→ ok"));
    for command in [
        "train",
        "generate",
        "chat",
        "eval",
        "sweep",
        "analyze",
        "tokenizer",
        "data",
        "export",
        "import",
        "info",
        "plot",
    ] {
        assert!(run(&[command, "--help"]).contains("Usage: hrm"), "{command} --help");
    }
}

#[test]
fn training_data_deleted_mid_run_stops_with_the_file_named_and_the_checkpoint_intact() {
    let dir = setup();
    let long_run = ["--set", "run.steps=1000000", "--set", "run.checkpoint_every=2", "--set", "run.eval_every=1000000"];
    let mut child =
        spawn(&[&["train", "--config", "tiny.toml", "--output", "run", "--quiet"][..], &long_run].concat(), dir.path());
    let started = std::time::Instant::now();
    while !dir.path().join("run/checkpoints/latest").exists() {
        assert!(started.elapsed().as_secs() < 120, "no checkpoint within two minutes");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::remove_file(dir.path().join("tiny.txt")).unwrap();
    // The source re-opens its file at every epoch (a few hundred steps here): the run stops there.
    let out = child.wait_with_output().unwrap();
    let message = text(&out);
    assert!(!out.status.success(), "{message}");
    assert!(message.contains("tiny.txt") && message.to_lowercase().contains("no such file"), "{message}");
    let latest = std::fs::read_to_string(dir.path().join("run/checkpoints/latest")).unwrap();
    let checkpoint = dir.path().join("run/checkpoints").join(latest.trim());
    assert!(hrm_train::checkpoint::read(&checkpoint).is_ok(), "the newest checkpoint is intact");
}
