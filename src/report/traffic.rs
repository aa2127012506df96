//! The load-shedding ladder for people (`failover traffic`) and for machines (the same document
//! the ladder publishes for edges).

use crate::app::inspect::TrafficState;
use crate::timefmt::format_ts;
use std::fmt::Write as _;

/// The published shed state of `t`, as of now.
pub fn state_document(t: &TrafficState) -> serde_json::Value {
    let tiers: Vec<(String, bool)> = t
        .ladder
        .tiers
        .iter()
        .map(|t| (t.name.clone(), t.protected))
        .collect();
    crate::traffic::state_document(crate::journal::now_ms(), &t.environment, &tiers, &t.shed)
}

/// The ladder as a table: each tier, whether it is shed, since when, by which run.
pub fn render(t: &TrafficState) -> String {
    let ladder = &t.ladder;
    let mut o = String::new();
    let _ = writeln!(o, "Load-shedding ladder of `{}` (lowest priority first; shed in this order, restored in reverse)", t.environment);
    let _ = writeln!(
        o,
        "Signal: {} ({})",
        ladder.signal.url,
        match (ladder.signal.good_below, ladder.signal.good_above) {
            (Some(b), _) => format!("good below {b}"),
            (_, Some(a)) => format!("good above {a}"),
            _ => "good when it answers 2xx".into(),
        }
    );
    let _ = writeln!(
        o,
        "\n{:<4} {:<22} {:<10} {:<22} RUN",
        "#", "TIER", "STATE", "SINCE"
    );
    for (i, tier) in ladder.tiers.iter().enumerate() {
        let s = t.shed.iter().find(|(n, _, _)| n == &tier.name);
        let state = if tier.protected {
            "protected"
        } else if s.is_some() {
            "SHED"
        } else {
            "serving"
        };
        let _ = writeln!(
            o,
            "{:<4} {:<22} {:<10} {:<22} {}",
            i + 1,
            tier.name,
            state,
            s.map(|(_, at, _)| format_ts(*at))
                .unwrap_or_else(|| "-".into()),
            s.map(|(_, _, r)| r.as_str()).unwrap_or("-")
        );
    }
    if let Some(f) = &ladder.state_file {
        let _ = writeln!(o, "\nPublished for edges at {f}");
    }
    o
}
