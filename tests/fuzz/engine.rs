//! The fuzzing engine: seeds, structured generation and mutation driven by `arbitrary`, a
//! bounded run per target, crash (panic) and hang accounting. Runs on stable Rust.
//!
//! Each execution draws fresh random bytes and reads them through `arbitrary::Unstructured`,
//! which picks what to do: take a seed from the target's corpus and mutate it (bit flips,
//! interesting integers, dictionary words, cut, duplicate, splice with another seed), or ask
//! the target's own generator for a structured input (a JSON tree of protocol keys, a Token04
//! made of parts, a TOML file of known keys). Every input that panics anywhere in the process
//! (the panic hook counts panics on every thread, server tasks included) is written to
//! `target/fuzz-crashes/` and counted; one that runs past the hang limit is counted as a hang.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use rand::{Rng, RngCore, SeedableRng};

/// Panics seen in the whole process since start (the hook counts every thread).
pub static PANICS: AtomicU64 = AtomicU64::new(0);

/// One execution longer than this is a hang.
pub const HANG_LIMIT: Duration = Duration::from_secs(2);

/// Installs the counting panic hook (once, before any target runs).
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
}

/// Runs one input.
pub type RunFn = Box<dyn FnMut(&[u8])>;

/// What a target is made of.
pub struct Target {
    /// Name used in reports and in FUZZ_TARGET.
    pub name: &'static str,
    /// Valid (and some invalid) inputs to start from.
    pub seeds: Vec<Vec<u8>>,
    /// Words worth splicing in (keys, ops, numbers that sit on edges).
    pub dictionary: Vec<&'static [u8]>,
    /// Builds a structured input from the unstructured bytes.
    pub generate: fn(&mut Unstructured<'_>, &[&'static [u8]]) -> Vec<u8>,
    /// Runs one input; returns normally on every input (errors are fine, panics are not).
    pub run: RunFn,
}

/// What one target's run found.
pub struct Outcome {
    /// The target.
    pub name: &'static str,
    /// Inputs executed.
    pub executions: u64,
    /// Inputs that panicked.
    pub crashes: u64,
    /// Inputs that ran past [`HANG_LIMIT`].
    pub hangs: u64,
    /// Wall time spent.
    pub elapsed: Duration,
}

/// Integers that sit on edges, as ASCII (most inputs are text).
const INTERESTING: &[&[u8]] = &[
    b"0",
    b"-1",
    b"1",
    b"255",
    b"65535",
    b"65536",
    b"2147483647",
    b"-2147483648",
    b"4294967296",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1e309",
    b"-0.0",
    b"NaN",
    b"null",
    b"true",
    b"\"\"",
    b"[]",
    b"{}",
    b"\\u0000",
    b"\\ud800",
];

fn mutate(u: &mut Unstructured<'_>, seeds: &[Vec<u8>], dict: &[&'static [u8]]) -> Vec<u8> {
    let mut data = if seeds.is_empty() {
        Vec::new()
    } else {
        seeds[u.choose_index(seeds.len()).unwrap_or(0)].clone()
    };
    let rounds = u.int_in_range(1..=8u8).unwrap_or(1);
    for _ in 0..rounds {
        let at = if data.is_empty() {
            0
        } else {
            u.choose_index(data.len() + 1).unwrap_or(0)
        };
        match u.int_in_range(0..=7u8).unwrap_or(0) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << u.int_in_range(0..=7u8).unwrap_or(0);
            }
            1 => {
                let w = INTERESTING[u.choose_index(INTERESTING.len()).unwrap_or(0)];
                data.splice(at..at, w.iter().copied());
            }
            2 if !dict.is_empty() => {
                let w = dict[u.choose_index(dict.len()).unwrap_or(0)];
                data.splice(at..at, w.iter().copied());
            }
            3 if !data.is_empty() => {
                let len = u.int_in_range(1..=64usize).unwrap_or(1);
                let end = (at + len).min(data.len());
                data.drain(at.min(end)..end);
            }
            4 if !data.is_empty() => {
                let len = u.int_in_range(1..=64usize).unwrap_or(1);
                let end = (at + len).min(data.len());
                let piece = data[at.min(end)..end].to_vec();
                let times = u.int_in_range(1..=16usize).unwrap_or(1);
                for _ in 0..times {
                    data.splice(at..at, piece.iter().copied());
                }
            }
            5 if !seeds.is_empty() => {
                let other = &seeds[u.choose_index(seeds.len()).unwrap_or(0)];
                let from = u.choose_index(other.len() + 1).unwrap_or(0);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            6 => {
                let n = u.int_in_range(1..=16usize).unwrap_or(1);
                let bytes: Vec<u8> = (0..n).map(|_| u.arbitrary().unwrap_or(0)).collect();
                data.splice(at..at, bytes);
            }
            _ => {
                if !data.is_empty() {
                    let i = at.min(data.len() - 1);
                    data[i] = u.arbitrary().unwrap_or(0);
                }
            }
        }
    }
    data
}

fn save_crash(name: &str, input: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("fuzz-crashes"))
        .unwrap_or_else(|| PathBuf::from("fuzz-crashes"));
    let _ = std::fs::create_dir_all(&dir);
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{name}-{hash:016x}.bin"));
    let _ = std::fs::write(&path, input);
    path
}

/// Runs `target` for `budget` (at least one pass over its seeds), seeded with `seed`.
pub fn run(mut target: Target, budget: Duration, seed: u64, progress: &Arc<AtomicU64>) -> Outcome {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let (mut executions, mut crashes, mut hangs) = (0u64, 0u64, 0u64);
    let mut raw = vec![0u8; 4096];
    let seeds = std::mem::take(&mut target.seeds);
    let mut queue: Vec<Vec<u8>> = seeds.clone();
    while !queue.is_empty() || start.elapsed() < budget {
        let input = match queue.pop() {
            Some(seed_input) => seed_input,
            None => {
                let len = rng.gen_range(16..raw.len());
                rng.fill_bytes(&mut raw[..len]);
                let mut u = Unstructured::new(&raw[..len]);
                if u.ratio(1, 3).unwrap_or(false) {
                    (target.generate)(&mut u, &target.dictionary)
                } else {
                    mutate(&mut u, &seeds, &target.dictionary)
                }
            }
        };
        let before = PANICS.load(Ordering::SeqCst);
        let t0 = Instant::now();
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (target.run)(&input)));
        let took = t0.elapsed();
        executions += 1;
        progress.fetch_add(1, Ordering::Relaxed);
        if result.is_err() || PANICS.load(Ordering::SeqCst) != before {
            crashes += 1;
            let path = save_crash(target.name, &input);
            eprintln!(
                "fuzz {}: CRASH, input saved to {}",
                target.name,
                path.display()
            );
        } else if took > HANG_LIMIT {
            hangs += 1;
            let path = save_crash(&format!("{}-hang", target.name), &input);
            eprintln!(
                "fuzz {}: HANG ({took:?}), input saved to {}",
                target.name,
                path.display()
            );
        }
    }
    Outcome {
        name: target.name,
        executions,
        crashes,
        hangs,
        elapsed: start.elapsed(),
    }
}
