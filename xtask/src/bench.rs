//! Parsing the kernel's benchmark output, the comparison table and the
//! JSON report.
//!
//! Kernel lines:
//! - `[BENCH] name=<row> impl=<rkprobes|kprobe-0.6> harts=<n> probes=<n> instructions_per_hit=<float> hits=<n>`
//! - `[BENCH-MEM] impl=<...> slot_bytes=<n> bookkeeping_bytes=<n>`
//! - `[BENCH] done`

use std::collections::HashMap;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::process::Termination;

pub const RKPROBES: &str = "rkprobes";
pub const KPROBE: &str = "kprobe-0.6";

#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    pub name: String,
    pub implementation: String,
    pub harts: u32,
    pub probes: u32,
    pub instructions_per_hit: f64,
    pub hits: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemResult {
    pub implementation: String,
    pub slot_bytes: u64,
    pub bookkeeping_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BenchReport {
    pub results: Vec<BenchResult>,
    pub memory: Vec<MemResult>,
    /// Whether `[BENCH] done` was seen.
    pub done: bool,
    /// Bench lines that could not be parsed, and run-level problems.
    pub problems: Vec<String>,
}

impl BenchReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn fields(rest: &str) -> HashMap<&str, &str> {
    rest.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

fn field<'a>(f: &HashMap<&str, &'a str>, key: &str) -> Result<&'a str> {
    f.get(key)
        .copied()
        .ok_or_else(|| anyhow!("missing `{key}=`"))
}

fn num<T: std::str::FromStr>(f: &HashMap<&str, &str>, key: &str) -> Result<T> {
    let s = field(f, key)?;
    s.parse()
        .map_err(|_| anyhow!("`{key}={s}` is not a valid number"))
}

fn parse_result(rest: &str) -> Result<BenchResult> {
    let f = fields(rest);
    Ok(BenchResult {
        name: field(&f, "name")?.to_string(),
        implementation: field(&f, "impl")?.to_string(),
        harts: num(&f, "harts")?,
        probes: num(&f, "probes")?,
        instructions_per_hit: num(&f, "instructions_per_hit")?,
        hits: num(&f, "hits")?,
    })
}

fn parse_mem(rest: &str) -> Result<MemResult> {
    let f = fields(rest);
    Ok(MemResult {
        implementation: field(&f, "impl")?.to_string(),
        slot_bytes: num(&f, "slot_bytes")?,
        bookkeeping_bytes: num(&f, "bookkeeping_bytes")?,
    })
}

/// Parses a bench transcript and judges the run. Pure: no I/O.
pub fn parse_bench(output: &str, termination: Termination) -> BenchReport {
    let mut r = BenchReport::default();
    let mut panicked = false;
    for raw in output.lines() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("[BENCH-MEM]") {
            match parse_mem(rest) {
                Ok(m) => r.memory.push(m),
                Err(e) => r.problems.push(format!("bad bench line ({e}): {line}")),
            }
        } else if let Some(rest) = line.strip_prefix("[BENCH]") {
            if rest.trim() == "done" {
                r.done = true;
                continue;
            }
            match parse_result(rest) {
                Ok(b) => r.results.push(b),
                Err(e) => r.problems.push(format!("bad bench line ({e}): {line}")),
            }
        } else if line.starts_with("[PANIC]") && !panicked {
            panicked = true;
            r.problems.push(format!("kernel panicked: {line}"));
        }
    }
    match termination {
        Termination::TimedOut(t) => r
            .problems
            .push(format!("timed out after {}s (hung kernel?)", t.as_secs())),
        Termination::Signaled => r.problems.push("QEMU was killed by a signal".into()),
        Termination::Exited(0) => {}
        Termination::Exited(code) => r.problems.push(format!("QEMU exited with status {code}")),
    }
    if !r.done && !panicked && !matches!(termination, Termination::TimedOut(_)) {
        r.problems
            .push("no [BENCH] done line: kernel crashed or hung".into());
    }
    if r.results.is_empty() {
        r.problems.push("no benchmark results".into());
    }
    r
}

/// One report out of several boots' (e.g. a 1-hart and a 4-hart
/// machine), each labelled for its problems. A result goes right after
/// the earlier ones of its row (name, impl, probes), so a row's
/// `harts=4` line follows its `harts=1` line; other results are appended.
pub fn merge_reports(boots: Vec<(String, BenchReport)>) -> BenchReport {
    let mut out = BenchReport {
        done: true,
        ..BenchReport::default()
    };
    for (label, r) in boots {
        for b in r.results {
            let same = |a: &BenchResult| {
                a.name == b.name && a.implementation == b.implementation && a.probes == b.probes
            };
            match out.results.iter().rposition(same) {
                Some(i) => out.results.insert(i + 1, b),
                None => out.results.push(b),
            }
        }
        out.memory.extend(r.memory);
        out.done &= r.done;
        out.problems
            .extend(r.problems.into_iter().map(|p| format!("{label}: {p}")));
    }
    out
}

/// The JSON report written by `cargo xtask bench --json PATH`.
pub fn to_json(report: &BenchReport, qemu_version: &str) -> Value {
    json!({
        "qemu": qemu_version,
        "results": report.results.iter().map(|b| json!({
            "name": b.name,
            "impl": b.implementation,
            "harts": b.harts,
            "probes": b.probes,
            "instructions_per_hit": b.instructions_per_hit,
            "hits": b.hits,
        })).collect::<Vec<_>>(),
        "memory": report.memory.iter().map(|m| json!({
            "impl": m.implementation,
            "slot_bytes": m.slot_bytes,
            "bookkeeping_bytes": m.bookkeeping_bytes,
        })).collect::<Vec<_>>(),
    })
}

pub fn write_json(report: &BenchReport, qemu_version: &str, path: &std::path::Path) -> Result<()> {
    let text = serde_json::to_string_pretty(&to_json(report, qemu_version))?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// One row of the comparison: both implementations for one (name, harts,
/// probes), either side possibly missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub name: String,
    pub harts: u32,
    pub probes: u32,
    pub rkprobes: Option<f64>,
    pub kprobe: Option<f64>,
}

/// Pairs results by (name, harts, probes), in order of first appearance.
/// Results of other implementations are left out of the table.
pub fn pair_results(results: &[BenchResult]) -> Vec<Pair> {
    let mut pairs: Vec<Pair> = Vec::new();
    for b in results {
        let side = match b.implementation.as_str() {
            RKPROBES => 0,
            KPROBE => 1,
            _ => continue,
        };
        let idx = match pairs
            .iter()
            .position(|p| p.name == b.name && p.harts == b.harts && p.probes == b.probes)
        {
            Some(i) => i,
            None => {
                pairs.push(Pair {
                    name: b.name.clone(),
                    harts: b.harts,
                    probes: b.probes,
                    rkprobes: None,
                    kprobe: None,
                });
                pairs.len() - 1
            }
        };
        let slot = if side == 0 {
            &mut pairs[idx].rkprobes
        } else {
            &mut pairs[idx].kprobe
        };
        *slot = Some(b.instructions_per_hit);
    }
    pairs
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.1}"))
}

/// The readable comparison table (and the memory table if any).
pub fn render_table(report: &BenchReport) -> String {
    let header = [
        "name",
        "harts",
        "probes",
        "rkprobes instr/hit",
        "kprobe-0.6 instr/hit",
        "ratio (kprobe/rkprobes)",
    ];
    let mut rows: Vec<[String; 6]> = Vec::new();
    for p in pair_results(&report.results) {
        let ratio = match (p.rkprobes, p.kprobe) {
            (Some(r), Some(k)) if r > 0.0 => format!("{:.2}", k / r),
            _ => "-".to_string(),
        };
        rows.push([
            p.name,
            p.harts.to_string(),
            p.probes.to_string(),
            cell(p.rkprobes),
            cell(p.kprobe),
            ratio,
        ]);
    }
    let mut out = table(&header, &rows);
    if !report.memory.is_empty() {
        let header = ["impl", "slot_bytes", "bookkeeping_bytes"];
        let rows: Vec<[String; 3]> = report
            .memory
            .iter()
            .map(|m| {
                [
                    m.implementation.clone(),
                    m.slot_bytes.to_string(),
                    m.bookkeeping_bytes.to_string(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&header, &rows));
    }
    out
}

/// Text columns: first column left-aligned, the others right-aligned.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i == 0 {
                s.push_str(&format!("{c:<w$}"));
            } else {
                s.push_str(&format!("{c:>w$}"));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    let rules: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out.push_str(&line(rules.iter().map(String::as_str).collect()));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "\
OpenSBI v1.1
rkprobes bench, 4 harts
[BENCH] name=kprobe_hit impl=rkprobes harts=1 probes=1 instructions_per_hit=312.5 hits=10000
[BENCH] name=kprobe_hit impl=kprobe-0.6 harts=1 probes=1 instructions_per_hit=625 hits=10000
[BENCH] name=kprobe_hit impl=rkprobes harts=4 probes=64 instructions_per_hit=330.25 hits=40000
[BENCH] name=kretprobe impl=kprobe-0.6 harts=1 probes=1 instructions_per_hit=900.0 hits=10000
[BENCH-MEM] impl=rkprobes slot_bytes=32 bookkeeping_bytes=4096
[BENCH-MEM] impl=kprobe-0.6 slot_bytes=4096 bookkeeping_bytes=16384
[BENCH] done
";

    #[test]
    fn parses_bench_lines() {
        let r = parse_bench(RUN, Termination::Exited(0));
        assert!(r.ok(), "{:?}", r.problems);
        assert!(r.done);
        assert_eq!(r.results.len(), 4);
        assert_eq!(
            r.results[2],
            BenchResult {
                name: "kprobe_hit".into(),
                implementation: "rkprobes".into(),
                harts: 4,
                probes: 64,
                instructions_per_hit: 330.25,
                hits: 40000,
            }
        );
        assert_eq!(
            r.memory[1],
            MemResult {
                implementation: "kprobe-0.6".into(),
                slot_bytes: 4096,
                bookkeeping_bytes: 16384,
            }
        );
    }

    #[test]
    fn bad_lines_and_failed_runs() {
        let out = "[BENCH] name=x impl=rkprobes harts=1 probes=1 instructions_per_hit=abc hits=1\n\
                   [BENCH-MEM] impl=rkprobes slot_bytes=1\n";
        let r = parse_bench(out, Termination::Exited(3));
        assert!(!r.ok());
        assert!(r.problems[0].contains("instructions_per_hit=abc"));
        assert!(r.problems[1].contains("missing `bookkeeping_bytes=`"));
        assert!(r
            .problems
            .contains(&"QEMU exited with status 3".to_string()));
        assert!(r
            .problems
            .contains(&"no [BENCH] done line: kernel crashed or hung".to_string()));
        assert!(r.problems.contains(&"no benchmark results".to_string()));

        let r = parse_bench(
            RUN,
            Termination::TimedOut(std::time::Duration::from_secs(900)),
        );
        assert_eq!(r.problems, vec!["timed out after 900s (hung kernel?)"]);
    }

    #[test]
    fn json_shape() {
        let r = parse_bench(RUN, Termination::Exited(0));
        let v = to_json(&r, "7.2.22");
        assert_eq!(v["qemu"], "7.2.22");
        assert_eq!(v.as_object().unwrap().len(), 3);
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        assert_eq!(
            results[0],
            json!({
                "name": "kprobe_hit",
                "impl": "rkprobes",
                "harts": 1,
                "probes": 1,
                "instructions_per_hit": 312.5,
                "hits": 10000
            })
        );
        // Floats stay floats even when integral.
        assert!(results[1]["instructions_per_hit"].is_f64());
        assert_eq!(
            v["memory"],
            json!([
                {"impl": "rkprobes", "slot_bytes": 32, "bookkeeping_bytes": 4096},
                {"impl": "kprobe-0.6", "slot_bytes": 4096, "bookkeeping_bytes": 16384}
            ])
        );
    }

    #[test]
    fn merges_boots() {
        let one = parse_bench(RUN, Termination::Exited(0));
        let four = parse_bench(
            "[BENCH] name=kprobe_hit impl=rkprobes harts=4 probes=1 instructions_per_hit=313 hits=40000\n\
             [BENCH] name=other impl=rkprobes harts=4 probes=1 instructions_per_hit=5 hits=40000\n",
            Termination::Exited(0),
        );
        let r = merge_reports(vec![("1 hart".into(), one), ("4 harts".into(), four)]);
        let rows: Vec<(&str, &str, u32, u32)> = r
            .results
            .iter()
            .map(|b| {
                (
                    b.name.as_str(),
                    b.implementation.as_str(),
                    b.harts,
                    b.probes,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("kprobe_hit", "rkprobes", 1, 1),
                ("kprobe_hit", "rkprobes", 4, 1),
                ("kprobe_hit", "kprobe-0.6", 1, 1),
                ("kprobe_hit", "rkprobes", 4, 64),
                ("kretprobe", "kprobe-0.6", 1, 1),
                ("other", "rkprobes", 4, 1),
            ]
        );
        assert_eq!(r.memory.len(), 2);
        assert!(!r.done);
        assert_eq!(
            r.problems,
            vec!["4 harts: no [BENCH] done line: kernel crashed or hung"]
        );
    }

    #[test]
    fn pairs_and_table() {
        let r = parse_bench(RUN, Termination::Exited(0));
        let pairs = pair_results(&r.results);
        assert_eq!(pairs.len(), 3);
        assert_eq!(
            (pairs[0].rkprobes, pairs[0].kprobe),
            (Some(312.5), Some(625.0))
        );
        assert_eq!((pairs[1].rkprobes, pairs[1].kprobe), (Some(330.25), None));
        assert_eq!((pairs[2].rkprobes, pairs[2].kprobe), (None, Some(900.0)));

        let t = render_table(&r);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("name"));
        assert!(lines[0].contains("ratio (kprobe/rkprobes)"));
        assert!(lines[2].starts_with("kprobe_hit"));
        assert!(lines[2].ends_with("2.00"), "{}", lines[2]);
        assert!(lines[3].ends_with('-'));
        assert!(lines[4].starts_with("kretprobe"));
        assert!(t.contains("bookkeeping_bytes"));
    }
}
