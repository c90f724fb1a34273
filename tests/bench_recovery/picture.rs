//! The timeline picture docs/benchmarks.md shows.

use super::*;

/// The timeline picture: for each cell, when Vault, the store and the ExternalSecret were ready
/// (green) or not (red), the moment Vault was ready (dashed), the tool's ticks (|) and ESO's
/// restart (◆).
pub(super) fn svg(cells: &[&Cell]) -> String {
    let end = cells
        .iter()
        .flat_map(|c| c.samples.last())
        .map(|s| s.t)
        .fold(0.0_f64, f64::max)
        .ceil();
    let (left, width, lane, gap) = (230.0, 900.0, 14.0, 30.0);
    let x = |t: f64| left + t / end * width;
    let height = 40.0 + cells.len() as f64 * (3.0 * lane + gap) + 30.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="14" font-weight="bold">From the outage to the Secret synced again (green: ready, red: not; dashed: Vault ready; | tick, ◆ ESO restarted)</text>
"#,
        w = left + width + 20.0
    );
    let mut y = 40.0;
    for c in cells {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" font-weight="bold">{}</text><text x="10" y="{}">{}{}</text>"#,
            y + 12.0,
            c.spec.tool(),
            y + 28.0,
            c.spec.outage.short(),
            c.spec
                .phase
                .map_or(String::new(), |p| format!(", back {p} s after a tick"))
        );
        // The ExternalSecret is "ready" while it is Ready=True before Vault is back, and once
        // the Secret holds the password written before the outage after it.
        let ready_in_lane = |i: usize, smp: &Sample| match i {
            0 => smp.vault_ready,
            1 => smp.store_ready,
            _ if smp.t < c.ready => smp.es_ready,
            _ => smp.synced,
        };
        for (i, label) in ["Vault", "store", "ExternalSecret"].iter().enumerate() {
            let ly = y + i as f64 * lane;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end" font-size="10">{label}</text>"#,
                left - 4.0,
                ly + 10.0
            );
            let mut from = 0;
            for k in 1..c.samples.len() {
                let state = ready_in_lane(i, &c.samples[from]);
                let last = k == c.samples.len() - 1;
                if ready_in_lane(i, &c.samples[k]) == state && !last {
                    continue;
                }
                let colour = if state { "#3a3" } else { "#d33" };
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{ly}" width="{:.1}" height="{}" fill="{colour}"/>"#,
                    x(c.samples[from].t),
                    (x(c.samples[k].t) - x(c.samples[from].t)).max(0.5),
                    lane - 3.0
                );
                from = k;
            }
        }
        let bottom = y + 3.0 * lane;
        let _ = writeln!(
            s,
            r#"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="black" stroke-dasharray="3,2"/>"#,
            x(c.ready),
            y - 3.0,
            bottom
        );
        for (t, _) in &c.ticks {
            let _ = writeln!(
                s,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#555"/>"##,
                x(*t),
                bottom,
                bottom + 6.0
            );
        }
        if let Some(t) = c.eso_restarted {
            let _ = writeln!(
                s,
                r#"<path d="M{0:.1},{1} l5,5 l-5,5 l-5,-5 z" fill="black"/>"#,
                x(t),
                bottom - 2.0
            );
        }
        y += 3.0 * lane + gap;
    }
    let minutes = (end / 60.0).floor() as u64;
    for m in 0..=minutes {
        let t = m as f64 * 60.0;
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#999"/><text x="{0:.1}" y="{3}" text-anchor="middle" font-size="10">{m} min</text>"##,
            x(t),
            y - 8.0,
            y - 2.0,
            y + 10.0
        );
    }
    s.push_str("</svg>\n");
    s
}
