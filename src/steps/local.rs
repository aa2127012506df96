//! Steps that change no cloud resource: an HTTP call, an approval gate, a health assertion,
//! a wait. Their decisions say what they will do, for the plan and the timeline.

use crate::call::{Call, Decision};
use crate::cloud::HttpRequest;
use crate::types::Zone;
use std::time::Duration;

pub fn decide_http(request: &HttpRequest, expect_status: &[u16]) -> Decision {
    Decision {
        calls: vec![Call::Http {
            request: request.clone(),
            expect_status: expect_status.to_vec(),
        }],
        expected: vec![format!(
            "{} {} answered with {}",
            request.method,
            request.url,
            if expect_status.is_empty() {
                "2xx".to_string()
            } else {
                format!("{expect_status:?}")
            }
        )],
        ..Default::default()
    }
}

pub fn decide_approval(message: &str, approvers: &[String], required: u32) -> Decision {
    Decision {
        effects: vec![format!(
            "pause until approved{} ({}): {message}",
            if required > 1 {
                format!(" by {required} people")
            } else {
                String::new()
            },
            if approvers.is_empty() {
                "anyone but the initiator".to_string()
            } else {
                format!("one of {}", approvers.join(", "))
            }
        )],
        ..Default::default()
    }
}

pub fn decide_health_assert(zones: &[Zone], expect: &str, rounds: Option<u32>) -> Decision {
    Decision {
        effects: vec![format!(
            "probe zone health ({} round(s)) and require {}",
            rounds
                .map(|r| r.to_string())
                .unwrap_or_else(|| "enough".into()),
            zones
                .iter()
                .map(|z| format!("{z} {expect}"))
                .collect::<Vec<_>>()
                .join(", ")
        )],
        ..Default::default()
    }
}

pub fn decide_wait(duration: Duration) -> Decision {
    Decision {
        effects: vec![format!("wait {}", humantime::format_duration(duration))],
        ..Default::default()
    }
}
