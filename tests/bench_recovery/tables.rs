//! The cells as tables: median and worst by tool and outage, each phase, and the costs.

use super::*;

pub(super) fn fmt_secs(v: Option<f64>) -> String {
    v.map_or_else(|| format!("> {}", GIVE_UP.as_secs()), |s| format!("{s:.1}"))
}

/// The median and the worst of the cells' times (a give-up counts as the worst).
pub(super) fn median_and_worst(cells: &[&Cell]) -> (Option<f64>, Option<f64>) {
    let mut times: Vec<Option<f64>> = cells.iter().map(|c| c.synced()).collect();
    times.sort_by(|a, b| match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(y),
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, None) => std::cmp::Ordering::Equal,
    });
    if times.is_empty() {
        return (None, None);
    }
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        match (times[n / 2 - 1], times[n / 2]) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            _ => None,
        }
    };
    (median, times[n - 1])
}

pub(super) fn table(cells: &[Cell]) -> String {
    let mut out = String::from(
        "| outage | tool | Secret synced, s after Vault ready: median | worst | by phase (Vault back so many s after a tick) | ESO pods replaced | leader changes | writes refused by ESO's webhook | eso-recovery's pods at once, at most | ticks skipped |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut tools: Vec<(Place, u8, String)> = cells
        .iter()
        .filter(|c| c.spec.extra == 0)
        .map(|c| (c.spec.place, c.spec.arm as u8, c.spec.tool()))
        .collect();
    tools.sort();
    // One row per tool: the sweep's nodes share one.
    tools.dedup_by(|a, b| a.2 == b.2);
    for outage in [Outage::ShortSeal, Outage::RestartedSealed, Outage::CutPath] {
        for (_, _, tool) in &tools {
            let mut these: Vec<&Cell> = cells
                .iter()
                .filter(|c| c.spec.outage == outage && c.spec.tool() == *tool && c.spec.extra == 0)
                .collect();
            if these.is_empty() {
                continue;
            }
            these.sort_by_key(|c| c.spec.phase);
            let (median, worst) = median_and_worst(&these);
            let phases: Vec<String> = these
                .iter()
                .map(|c| match c.spec.phase {
                    Some(p) => format!("{p} s: {}", fmt_secs(c.synced())),
                    None => format!("{} (no ticks)", fmt_secs(c.synced())),
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {tool} | **{}** | **{}** | {} | {} |",
                outage.title(),
                fmt_secs(median),
                fmt_secs(worst),
                phases.join(", "),
                costs(&these)
            );
        }
    }
    out
}

/// The cells' costs summed (the most pods at once: the most), as the table's last five columns
/// (`–` where not measured).
pub(super) fn costs(cells: &[&Cell]) -> String {
    let measured: Vec<Cost> = cells.iter().filter_map(|c| c.cost).collect();
    if measured.len() < cells.len() {
        return "– | – | – | – | –".into();
    }
    let leader = measured
        .iter()
        .map(|c| c.leader_changes)
        .sum::<Option<i64>>()
        .map_or("– (one replica)".into(), |n| n.to_string());
    format!(
        "{} | {leader} | {} of {} | {} | {}",
        measured.iter().map(|c| c.replaced).sum::<usize>(),
        measured.iter().map(|c| c.refused).sum::<usize>(),
        measured.iter().map(|c| c.writes).sum::<usize>(),
        measured.iter().map(|c| c.most_runs).max().unwrap_or(0),
        measured.iter().map(|c| c.skipped).sum::<usize>()
    )
}

pub(super) fn scale_table(cells: &[Cell]) -> String {
    let mut out = format!(
        "| {SCALE} ExternalSecrets (+1), all failed during a 3-min seal | last Secret synced, s after Vault ready | the design's Secret synced, s | Vault logins in the first 5 min | logins until the end |\n|---|---|---|---|---|\n"
    );
    for c in cells.iter().filter(|c| c.spec.extra > 0) {
        let (early, all) = c.logins.unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | **{}** | {} | {early} | {all} |",
            c.spec.tool(),
            fmt_secs(c.synced()),
            fmt_secs(c.recovered(|s| s.synced)),
        );
    }
    out
}
