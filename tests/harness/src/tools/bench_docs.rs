//! Where the benchmarks' tables live: `docs/benchmarks.md`, between a pair of markers per table,
//! each with the date, the machine and the command that printed it. The benchmarks write them
//! there themselves, so no figure in the docs is copied by hand; other documents link to them.

use std::path::Path;

use crate::tools::repo::repo;

/// Puts `body` between `<!-- BEGIN name -->` and `<!-- END name -->` in docs/benchmarks.md,
/// under a line that says when, where and with `command`. A document without the markers is
/// left alone (and the table only printed): the markers decide where a table goes.
pub fn publish(name: &str, command: &str, body: &str) {
    let path = repo().join("docs/benchmarks.md");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "{}: not readable; the table is only printed",
            path.display()
        );
        return;
    };
    let (begin, end) = (
        format!("<!-- BEGIN {name} -->"),
        format!("<!-- END {name} -->"),
    );
    let (Some(from), Some(to)) = (text.find(&begin), text.find(&end)) else {
        eprintln!(
            "docs/benchmarks.md has no {begin} … {end}; the table is only printed there \
             when they are added"
        );
        return;
    };
    let stamp = format!(
        "*{}, {}: `{command}`*",
        jiff::Timestamp::now().strftime("%Y-%m-%d"),
        machine()
    );
    let updated = format!(
        "{}{begin}\n{stamp}\n\n{}\n{}",
        &text[..from],
        body.trim_end(),
        &text[to..]
    );
    std::fs::write(&path, updated).expect("writing docs/benchmarks.md");
    println!("written to docs/benchmarks.md between {begin} and {end}");
}

/// This machine in a few words: cores, CPU model, memory, kernel.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(Path::new(p)).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim())
        })
        .unwrap_or("unknown CPU")
        .to_string();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{cores} × {model}, {mem_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}
