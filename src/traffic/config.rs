//! `[traffic]` in an environment file: the ladder, its signal, and each tier's apply and
//! revert actions. Checked like everything else: every problem, with position and hint.

use super::{Ladder, Signal, Tier, TierAction};
use crate::diag::{Diagnostics, SourceFile};
use crate::tomlx::{expect_int, SKind, SVal, TableReader};
use crate::types::Zone;
use std::collections::BTreeMap;
use std::time::Duration;

pub fn parse(src: &SourceFile, v: &SVal, zones: &[Zone], d: &mut Diagnostics) -> Option<Ladder> {
    let mut t = TableReader::new(src, v, "[traffic]", d)?;
    let settle = t
        .duration("settle", d)
        .map(|s| s.value)
        .unwrap_or(Duration::from_secs(30));
    let hold = t
        .duration("hold", d)
        .map(|s| s.value)
        .unwrap_or(Duration::from_secs(300));
    let state_file = t.str("state_file", d).map(|s| s.value);
    let signal = match t.get("signal") {
        Some(sv) => parse_signal(src, sv, d),
        None => {
            d.push(src.diag(v.span.clone(), "[traffic] has no [traffic.signal]", Some("say where to read whether things are good, e.g. url = \"https://metrics/checkout-error-rate\", pointer = \"/error_rate\", good_below = 0.02".into())));
            None
        }
    };
    let mut tiers: Vec<Tier> = vec![];
    match t.get("tiers") {
        Some(SVal {
            kind: SKind::Array(items),
            ..
        }) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(tier) = parse_tier(src, i, item, zones, d) {
                    if tiers.iter().any(|x| x.name == tier.name) {
                        d.push(src.diag(
                            item.span.clone(),
                            format!("tier `{}` is listed twice", tier.name),
                            None,
                        ));
                    }
                    tiers.push(tier);
                }
            }
        }
        Some(other) => d.push(src.diag(
            other.span.clone(),
            "`tiers` must be an array of tables: [[traffic.tiers]]",
            None,
        )),
        None => d.push(src.diag(
            v.span.clone(),
            "[traffic] has no tiers",
            Some(
                "add [[traffic.tiers]] tables, lowest priority first (crawlers, bots, ...)".into(),
            ),
        )),
    }
    t.finish(&["settle", "hold", "state_file", "signal", "tiers"], d);
    Some(Ladder {
        tiers,
        signal: signal?,
        settle,
        hold,
        state_file,
    })
}

fn parse_signal(src: &SourceFile, v: &SVal, d: &mut Diagnostics) -> Option<Signal> {
    let mut t = TableReader::new(src, v, "[traffic.signal]", d)?;
    let url = t.req_str(
        "url",
        "the URL to read, e.g. a metrics endpoint returning {\"error_rate\": 0.01}",
        d,
    );
    let pointer = t.str("pointer", d).map(|s| s.value);
    let num = |t: &mut TableReader<'_>, k: &str, d: &mut Diagnostics| -> Option<f64> {
        let v = t.get(k)?;
        match v.kind {
            SKind::Float(f) => Some(f),
            SKind::Int(i) => Some(i as f64),
            _ => {
                d.push(src.diag(
                    v.span.clone(),
                    format!("`{k}` in [traffic.signal] must be a number"),
                    None,
                ));
                None
            }
        }
    };
    let good_below = num(&mut t, "good_below", d);
    let good_above = num(&mut t, "good_above", d);
    if pointer.is_some() && good_below.is_none() && good_above.is_none() {
        d.push(src.diag(
            v.span.clone(),
            "[traffic.signal] has a `pointer` but no threshold",
            Some("add `good_below = 0.02` (error rate) or `good_above = ...`".into()),
        ));
    }
    let timeout = t
        .duration("timeout", d)
        .map(|s| s.value)
        .unwrap_or(Duration::from_secs(5));
    t.finish(
        &["url", "pointer", "good_below", "good_above", "timeout"],
        d,
    );
    Some(Signal {
        url: url?.value,
        pointer,
        good_below,
        good_above,
        timeout,
    })
}

fn parse_tier(
    src: &SourceFile,
    i: usize,
    v: &SVal,
    zones: &[Zone],
    d: &mut Diagnostics,
) -> Option<Tier> {
    let mut t = TableReader::new(src, v, format!("tier #{}", i + 1), d)?;
    let name = t.req_str("name", "name the tier: name = \"crawlers\"", d)?;
    t.what = format!("tier `{}`", name.value);
    let description = t.str("description", d).map(|s| s.value);
    let protected = t.bool("protected", d).map(|b| b.value).unwrap_or(false);
    let apply = t.get("apply").and_then(|a| {
        parse_action(
            src,
            &format!("`apply` of tier `{}`", name.value),
            a,
            zones,
            d,
        )
    });
    let revert = t.get("revert").and_then(|a| {
        parse_action(
            src,
            &format!("`revert` of tier `{}`", name.value),
            a,
            zones,
            d,
        )
    });
    if !protected && (apply.is_none() || revert.is_none()) {
        d.push(src.diag(
            v.span.clone(),
            format!(
                "tier `{}` needs both `apply` and `revert` (or `protected = true`)",
                name.value
            ),
            Some("apply = { endpoint = \"edge_admin\", body = '...' }, revert = { ... }".into()),
        ));
    }
    if protected && (apply.is_some() || revert.is_some()) {
        d.push(src.diag(
            v.span.clone(),
            format!(
                "tier `{}` is protected but has actions; a protected tier is never shed",
                name.value
            ),
            Some("remove `apply`/`revert` or `protected`".into()),
        ));
    }
    t.finish(&["name", "description", "protected", "apply", "revert"], d);
    Some(Tier {
        name: name.value,
        description,
        protected,
        apply,
        revert,
    })
}

fn parse_action(
    src: &SourceFile,
    what: &str,
    v: &SVal,
    zones: &[Zone],
    d: &mut Diagnostics,
) -> Option<TierAction> {
    let mut t = TableReader::new(src, v, what, d)?;
    if t.has("dns_group") {
        let group = t.str("dns_group", d)?;
        let mut weights = BTreeMap::new();
        match t.get("weights") {
            Some(SVal {
                kind: SKind::Table(entries),
                ..
            }) => {
                for (zk, zs, zv) in entries {
                    let z = Zone::new(zk.clone());
                    if !zones.contains(&z) {
                        d.push(src.diag(
                            zs.clone(),
                            format!("{what}: `{zk}` is not a zone of this environment"),
                            None,
                        ));
                    }
                    if let Some(w) = expect_int(src, zv, &format!("weight of `{zk}`"), 0, 255, d) {
                        weights.insert(z, w.value);
                    }
                }
            }
            _ => d.push(src.diag(
                v.span.clone(),
                format!("{what} has `dns_group` but no `weights` table"),
                Some("weights = { \"us-west-2a\" = 0, \"us-west-2b\" = 100 }".into()),
            )),
        }
        t.finish(&["dns_group", "weights"], d);
        return Some(TierAction::DnsWeights {
            group: group.value,
            weights,
        });
    }
    let endpoint = t.str("endpoint", d).map(|s| s.value);
    let url = t.str("url", d).map(|s| s.value);
    if endpoint.is_none() && url.is_none() {
        d.push(src.diag(v.span.clone(), format!("{what} has neither `endpoint`, `url` nor `dns_group`"), Some("an HTTP call (endpoint = \"edge_admin\" or url = ...) or a DNS weight change (dns_group = ..., weights = {...})".into())));
    }
    let method = t.str("method", d).map(|s| s.value.to_ascii_uppercase());
    let body = t.str("body", d).map(|s| s.value);
    let mut expect_status = vec![];
    if let Some(SVal {
        kind: SKind::Array(items),
        ..
    }) = t.get("expect_status")
    {
        for i in items {
            if let Some(c) = expect_int(src, i, "`expect_status`", 100, 599, d) {
                expect_status.push(c.value as u16);
            }
        }
    }
    t.finish(&["endpoint", "url", "method", "body", "expect_status"], d);
    Some(TierAction::Http {
        endpoint,
        url,
        method,
        body,
        expect_status,
    })
}
