//! Crash test: `hrm train` is killed with SIGKILL at seeded random moments (some while a
//! checkpoint is being written), resumed with `hrm train --resume`, again and again. Every
//! resume must succeed, no checkpoint may be unreadable, and each finished run must end at the
//! right step with weights equal bit for bit to an uninterrupted run's (CPU, flex backend).
//!
//! CI runs a short version; the long one is `cargo xtask chaos` (docs/reliability.md), which
//! sets `HRM_CHAOS_KILLS`, `HRM_CHAOS_SEED` and `HRM_CHAOS_REPORT` (a JSON file to write).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use rand::{Rng, SeedableRng, rngs::StdRng};

type Cpu = burn::backend::Flex;

const STEPS: u64 = 120;

const CONFIG: &str = r#"
[model]
arch = "hrm"
vocab_size = 0
h_layers = 1
l_layers = 1
halt_max_steps = 2

[model.block]
d_model = 64
n_heads = 4
max_seq_len = 32

[data]
seq_len = 24
batch_size = 8
validation_fraction = 0.05

[[data.sources]]
name = "tiny"
path = "tiny.txt"

[run]
steps = 120
seed = 7
eval_every = 40
eval_batches = 2
checkpoint_every = 3
keep_checkpoints = 2
log_every = 10
"#;

/// What one chaos session did (the JSON `cargo xtask chaos` saves).
#[derive(Debug, Default, serde::Serialize)]
struct Report {
    seed: u64,
    kills: u32,
    kills_during_checkpoint_write: u32,
    resumes: u32,
    resumes_failed: u32,
    runs_finished: u32,
    runs_bit_exact: u32,
    checkpoints_checked: u32,
    checkpoints_unreadable: u32,
    failures: Vec<String>,
    seconds: f64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn spawn(args: &[&str], cwd: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hrm"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn output_of(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Every weight of the run's newest intact checkpoint, as bits.
fn weight_bits(run: &Path) -> Vec<u32> {
    struct Bits(Vec<u32>);
    impl ModuleVisitor<Cpu> for Bits {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Cpu, D>>) {
            self.0.extend(param.val().into_data().iter::<f32>().map(f32::to_bits));
        }
    }
    let loaded = hrm_train::load_run::<Cpu>(&hrm_train::RunDir::new(run), &Default::default()).unwrap();
    let mut bits = Bits(Vec::new());
    loaded.model.visit(&mut bits);
    bits.0
}

/// Whether any write of a checkpoint or pointer was cut short (its temporary is left).
fn write_in_progress(checkpoints: &Path) -> bool {
    std::fs::read_dir(checkpoints)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp")))
}

/// Checks every step checkpoint of `run`; returns (checked, unreadable).
fn check_checkpoints(run: &Path, report: &mut Report) {
    for (_, path) in hrm_train::checkpoint::list(&run.join("checkpoints")) {
        report.checkpoints_checked += 1;
        if let Err(e) = hrm_train::checkpoint::read(&path) {
            report.checkpoints_unreadable += 1;
            report.failures.push(format!("unreadable checkpoint: {e}"));
        }
    }
}

/// How a round picks its moment to kill.
enum Moment {
    /// After a random delay.
    After(Duration),
    /// As soon as a checkpoint write is seen under way.
    DuringCheckpointWrite,
}

/// Runs `child` until it exits (returns its result) or the moment comes (kills it, returns None).
fn run_until(mut child: Child, moment: &Moment, checkpoints: &Path) -> Option<(bool, String)> {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(output_of(child));
        }
        let now = match moment {
            Moment::After(delay) => started.elapsed() >= *delay,
            Moment::DuringCheckpointWrite => write_in_progress(checkpoints),
        };
        if now {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return None;
        }
        if matches!(moment, Moment::After(_)) {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

#[test]
fn training_survives_being_killed_at_random_moments() {
    let kills_wanted: u32 = env_or("HRM_CHAOS_KILLS", 12);
    let seed: u64 = env_or("HRM_CHAOS_SEED", 1);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let docs: Vec<String> = (0..300)
        .map(|i| format!("story {i}: the {} sat on the mat and the dog ran to the {}.", i % 7, i % 11))
        .collect();
    std::fs::write(cwd.join("tiny.txt"), docs.join("\n<|endoftext|>\n")).unwrap();
    std::fs::write(cwd.join("chaos.toml"), CONFIG).unwrap();

    let clock = Instant::now();
    let (ok, out) = output_of(spawn(&["train", "-c", "chaos.toml", "-o", "reference", "--quiet"], cwd));
    assert!(ok, "{out}");
    let reference_seconds = clock.elapsed().as_secs_f64();
    let reference = weight_bits(&cwd.join("reference"));

    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = Report { seed, ..Report::default() };
    let mut episode = 0;
    while report.kills < kills_wanted {
        episode += 1;
        let run = cwd.join(format!("run-{episode}"));
        let run_name = run.file_name().unwrap().to_str().unwrap().to_string();
        let checkpoints = run.join("checkpoints");
        let mut first = true;
        loop {
            let args: Vec<&str> = if run.join("config.toml").exists() {
                vec!["train", "--resume", &run_name, "--quiet"]
            } else {
                // Killed before the run folder held its config: nothing to resume yet.
                vec!["train", "-c", "chaos.toml", "-o", &run_name, "--quiet"]
            };
            if !first && args[1] == "--resume" {
                report.resumes += 1;
            }
            first = false;
            let moment = if report.kills >= kills_wanted {
                Moment::After(Duration::MAX)
            } else if rng.random_bool(0.35) {
                Moment::DuringCheckpointWrite
            } else {
                Moment::After(Duration::from_secs_f64(rng.random_range(0.0..0.4) * reference_seconds))
            };
            match run_until(spawn(&args, cwd), &moment, &checkpoints) {
                None => {
                    report.kills += 1;
                    if write_in_progress(&checkpoints) {
                        report.kills_during_checkpoint_write += 1;
                    }
                    check_checkpoints(&run, &mut report);
                }
                Some((true, out)) => {
                    report.runs_finished += 1;
                    if !out.contains(&format!("at step {STEPS}")) {
                        report.failures.push(format!("{run_name} did not end at step {STEPS}: {out}"));
                    }
                    check_checkpoints(&run, &mut report);
                    if weight_bits(&run) == reference {
                        report.runs_bit_exact += 1;
                    } else {
                        report.failures.push(format!("{run_name}: final weights differ from the uninterrupted run"));
                    }
                    break;
                }
                Some((false, out)) => {
                    report.resumes_failed += 1;
                    report.failures.push(format!("{run_name}: `hrm {}` failed: {out}", args.join(" ")));
                    break;
                }
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    let json = serde_json::to_string_pretty(&report).unwrap();
    println!("{json}");
    if let Some(path) = std::env::var_os("HRM_CHAOS_REPORT").map(PathBuf::from) {
        std::fs::write(&path, &json).unwrap();
    }
    assert!(report.failures.is_empty(), "{json}");
    assert_eq!(report.runs_finished, report.runs_bit_exact);
    assert!(report.kills >= kills_wanted && report.kills_during_checkpoint_write > 0, "{json}");
}
