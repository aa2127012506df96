//! What the journal says about the calls a decision must know of (calls in doubt, calls this
//! run made that AWS accepted, recent Route 53 changes), kept up to date from the events
//! appended since the last look (`Store::events_since`) instead of read whole at every
//! decision: a `dns.update` over thousands of records decides on every poll, and reading
//! (and parsing) every intent of the last minutes each time made a large evacuation
//! quadratic.
//!
//! The fold is the same rule the `Store` queries apply (`Store::in_doubt`,
//! `Store::changes_since`, a run's accepted calls from its events), over the same events:
//! an intent is in doubt until an outcome that proves it processed (`ok`) or not processed
//! (`ErrorKind::proves_not_processed`), or a settlement; the first outcome of an intent counts.
//! It starts from those queries (and the head of the chain read before them), so a journal
//! with a long history is not read from its first event.

use crate::call::{in_doubt_grace, Call};
use crate::store::{Event, Store, StoreError};
use crate::types::RunId;
use crate::world::InDoubtCall;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// How many events one read of the journal asks for.
const PAGE: usize = 1000;

/// What an intent's outcome said, as far as doubt goes.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    /// No outcome recorded (yet).
    None,
    /// AWS accepted it.
    Ok,
    /// Failed, and the failure proves it was not processed.
    NotProcessed,
    /// Failed in a way that may have been processed: why.
    Failed(String),
}

/// One intent of the journal, as much of it as the decisions use.
#[derive(Clone, Debug)]
struct Intent {
    run_id: RunId,
    at: i64,
    operation: String,
    resource: String,
    /// The journaled call, kept until its answer is known (a change's hosted zone, an accepted
    /// call's `Call`); dropped after.
    data: Option<Value>,
    answer: Answer,
    settled: bool,
    /// For this run's accepted calls with a grace: the call.
    accepted: Option<Call>,
}

/// A Route 53 change as an outcome recorded it (see `Store::changes_since`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub at: i64,
    pub hosted_zone_id: String,
    pub change_id: String,
}

/// The journal's calls, folded from its events (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// The last event folded (`None`: not started).
    cursor: Option<i64>,
    intents: BTreeMap<i64, Intent>,
    changes: Vec<Change>,
    /// (hosted zone, change id) of `changes`: a change listed once, though several runs' (or
    /// worlds') journals name it (a simulation's ids repeat from one drill to the next).
    change_ids: HashSet<(String, String)>,
}

impl Ledger {
    /// Bring the ledger up to the journal's head: on its first use from the `Store`'s own
    /// queries (every run's calls since `since_ms`, and this run's events), then from the
    /// events appended since.
    pub(crate) async fn refresh(
        this: &std::sync::Mutex<Ledger>,
        store: &dyn Store,
        run: &RunId,
        since_ms: i64,
    ) -> Result<(), StoreError> {
        let cursor = this.lock().unwrap_or_else(|e| e.into_inner()).cursor;
        let cursor = match cursor {
            Some(c) => c,
            None => {
                let head = store.head().await?.map_or(0, |h| h.seq);
                let doubt = store.in_doubt(since_ms).await?;
                let changes = store.changes_since(since_ms).await?;
                let events = store.events(run).await?;
                let mut l = this.lock().unwrap_or_else(|e| e.into_inner());
                if l.cursor.is_none() {
                    l.start(doubt, changes, &events, run);
                    l.cursor = Some(head);
                }
                head
            }
        };
        let mut from = cursor + 1;
        loop {
            let events = store.events_since(from, PAGE).await?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(());
            };
            let mut l = this.lock().unwrap_or_else(|e| e.into_inner());
            let folded = l.cursor;
            for e in events.iter().filter(|e| Some(e.seq) > folded) {
                l.fold(e, run);
            }
            l.cursor = l.cursor.max(Some(last));
            if events.len() < PAGE {
                return Ok(());
            }
            from = last + 1;
        }
    }

    fn start(
        &mut self,
        doubt: Vec<crate::store::InDoubt>,
        changes: Vec<crate::store::MadeChange>,
        events: &[Event],
        run: &RunId,
    ) {
        for d in doubt {
            let answer = if d.why == NO_OUTCOME {
                Answer::None
            } else {
                Answer::Failed(d.why)
            };
            self.intents.entry(d.seq).or_insert(Intent {
                run_id: d.run_id,
                at: d.at,
                operation: d.operation,
                resource: d.resource,
                data: Some(d.call),
                answer,
                settled: false,
                accepted: None,
            });
        }
        for c in changes {
            self.add_change(Change {
                at: c.at,
                hosted_zone_id: c.hosted_zone_id,
                change_id: c.change_id,
            });
        }
        for e in events {
            self.fold(e, run);
        }
    }

    fn add_change(&mut self, c: Change) {
        if self
            .change_ids
            .insert((c.hosted_zone_id.clone(), c.change_id.clone()))
        {
            self.changes.push(c);
        }
    }

    /// One event of the journal (any run's); folding it twice changes nothing.
    fn fold(&mut self, e: &Event, run: &RunId) {
        match e.kind.as_str() {
            "intent" => {
                self.intents.entry(e.seq).or_insert_with(|| Intent {
                    run_id: e.run_id.clone(),
                    at: e.at,
                    operation: e.operation.clone().unwrap_or_default(),
                    resource: e.resource.clone().unwrap_or_default(),
                    data: Some(e.data.clone()),
                    answer: Answer::None,
                    settled: false,
                    accepted: None,
                });
            }
            "settled" => {
                if let Some(i) = e.intent_seq.and_then(|s| self.intents.get_mut(&s)) {
                    i.settled = true;
                }
            }
            "outcome" => self.fold_outcome(e, run),
            _ => {}
        }
    }

    fn fold_outcome(&mut self, e: &Event, run: &RunId) {
        let Some(i) = e.intent_seq.and_then(|s| self.intents.get_mut(&s)) else {
            return;
        };
        if i.answer != Answer::None {
            return;
        }
        i.answer = answer_of(&e.data);
        let data = i.data.take().unwrap_or(Value::Null);
        if i.answer != Answer::Ok {
            return;
        }
        if &i.run_id == run && in_doubt_grace(&i.operation).is_some() {
            i.accepted = serde_json::from_value(data.clone()).ok();
        }
        if e.operation.as_deref() != Some("ChangeResourceRecordSets") {
            return;
        }
        let change = e.data.pointer("/result/change_id").and_then(Value::as_str);
        let zone = data.get("hosted_zone_id").and_then(Value::as_str);
        if let (Some(change), Some(zone)) = (change, zone) {
            let c = Change {
                at: e.at,
                hosted_zone_id: zone.into(),
                change_id: change.into(),
            };
            self.add_change(c);
        }
    }

    /// Forget what no decision reads any more: an intent older than `since_ms`, or failed and
    /// settled, or answered and not (or no longer, by `now`) an accepted call of this run
    /// within its grace; a change older than `since_ms`. An intent without an answer is kept
    /// while recent (its outcome may still come).
    pub(crate) fn prune(&mut self, since_ms: i64, now: i64) {
        self.intents.retain(|_, i| {
            let grace = in_doubt_grace(&i.operation).map_or(0, |g| g.as_millis() as i64);
            match i.answer {
                Answer::None => i.at >= since_ms,
                Answer::Failed(_) => i.at >= since_ms && !i.settled,
                Answer::Ok | Answer::NotProcessed => i.accepted.is_some() && i.at + grace > now,
            }
        });
        let before = self.changes.len();
        self.changes.retain(|c| c.at >= since_ms);
        if self.changes.len() != before {
            self.change_ids = self
                .changes
                .iter()
                .map(|c| (c.hosted_zone_id.clone(), c.change_id.clone()))
                .collect();
        }
    }

    /// Route 53 changes made since `since_ms` (any run's), oldest first.
    pub(crate) fn changes_since(&self, since_ms: i64) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.at >= since_ms)
    }

    /// Calls of any run since `since_ms` whose effect is not confirmed, on `resources`, in the
    /// order of their intents; `now`: whether each one's grace has passed.
    pub(crate) fn in_doubt(
        &self,
        since_ms: i64,
        now: i64,
        resources: &HashSet<String>,
    ) -> Vec<InDoubtCall> {
        let mut out = vec![];
        for (seq, i) in &self.intents {
            let why = match &i.answer {
                Answer::None => NO_OUTCOME.to_string(),
                Answer::Failed(why) => why.clone(),
                Answer::Ok | Answer::NotProcessed => continue,
            };
            if i.settled || i.at < since_ms || !resources.contains(&i.resource) {
                continue;
            }
            let Some(grace) = in_doubt_grace(&i.operation) else {
                continue;
            };
            let until = i.at + grace.as_millis() as i64;
            out.push(InDoubtCall {
                operation: i.operation.clone(),
                resource: i.resource.clone(),
                run_id: i.run_id.to_string(),
                seq: *seq,
                at_ms: i.at,
                until_ms: until,
                why,
                expired: until <= now,
                accepted: None,
            });
        }
        out
    }

    /// Calls `run` made that AWS accepted, on `resources`, whose grace has not passed by `now`.
    pub(crate) fn accepted(
        &self,
        run: &RunId,
        now: i64,
        resources: &HashSet<String>,
    ) -> Vec<InDoubtCall> {
        let mut out = vec![];
        for (seq, i) in &self.intents {
            let Some(call) = i.accepted.as_ref().filter(|_| &i.run_id == run) else {
                continue;
            };
            let Some(grace) = in_doubt_grace(&i.operation) else {
                continue;
            };
            let until = i.at + grace.as_millis() as i64;
            if until <= now || !resources.contains(&i.resource) {
                continue;
            }
            out.push(InDoubtCall {
                operation: i.operation.clone(),
                resource: i.resource.clone(),
                run_id: run.to_string(),
                seq: *seq,
                at_ms: i.at,
                until_ms: until,
                why: "AWS accepted it; reads may not show its effect yet".into(),
                expired: false,
                accepted: Some(call.clone()),
            });
        }
        out
    }
}

/// Why an intent with no outcome is in doubt (as `Store::in_doubt` says it).
const NO_OUTCOME: &str = "no outcome was recorded";

/// What an outcome's data says (see `Store::in_doubt`).
fn answer_of(o: &Value) -> Answer {
    if o.get("ok").and_then(Value::as_bool) == Some(true) {
        return Answer::Ok;
    }
    let kind = o
        .get("kind")
        .cloned()
        .and_then(|k| serde_json::from_value::<crate::cloud::ErrorKind>(k).ok());
    if kind.is_some_and(crate::cloud::ErrorKind::proves_not_processed) {
        return Answer::NotProcessed;
    }
    Answer::Failed(format!(
        "it failed in a way that may have been processed: {}",
        o.get("error").and_then(Value::as_str).unwrap_or("?")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use crate::store::Fence;
    use crate::types::{ClusterId, InstanceId, Zone};
    use serde_json::json;

    /// Calls in doubt (intent, why, grace passed), accepted calls (intent), changes (zone, id).
    type Said = (Vec<(i64, String, bool)>, Vec<i64>, Vec<(String, String)>);

    fn failover(c: &str) -> Value {
        serde_json::to_value(Call::FailoverDbCluster {
            cluster: ClusterId::new(c),
            target: InstanceId::new(format!("{c}-b")),
            target_zone: Zone::new("us-west-2b"),
            from_zone: Zone::new("us-west-2a"),
        })
        .expect("serialises")
    }

    fn change(zone: &str) -> Value {
        serde_json::to_value(Call::ChangeResourceRecordSets {
            hosted_zone_id: zone.into(),
            hosted_zone_name: "example.com.".into(),
            comment: "test".into(),
            changes: vec![],
            previous: vec![],
        })
        .expect("serialises")
    }

    fn failed(kind: crate::cloud::ErrorKind) -> Value {
        json!({"ok": false, "error": "boom", "kind": kind})
    }

    /// What the decisions read before the ledger: the `Store`'s queries, the rule of
    /// `step::from_journal` as it was (every run's calls in doubt on `resources`; this run's
    /// accepted calls from its events; every run's recent changes).
    async fn oracle(
        j: &Journal,
        run: &RunId,
        since: i64,
        now: i64,
        resources: &HashSet<String>,
    ) -> Said {
        let doubt = Store::in_doubt(j, since)
            .await
            .expect("read")
            .into_iter()
            .filter(|d| resources.contains(&d.resource))
            .filter_map(|d| {
                let until = d.at + in_doubt_grace(&d.operation)?.as_millis() as i64;
                Some((d.seq, d.why, until <= now))
            })
            .collect();
        let events = Store::events(j, run).await.expect("read");
        let ok: HashSet<i64> = events
            .iter()
            .filter(|e| e.kind == "outcome" && e.data.get("ok") == Some(&Value::Bool(true)))
            .filter_map(|e| e.intent_seq)
            .collect();
        let accepted = events
            .iter()
            .filter(|e| e.kind == "intent" && ok.contains(&e.seq))
            .filter(|e| {
                let op = e.operation.as_deref().unwrap_or("");
                let Some(g) = in_doubt_grace(op) else {
                    return false;
                };
                e.at + g.as_millis() as i64 > now
                    && resources.contains(e.resource.as_deref().unwrap_or(""))
            })
            .map(|e| e.seq)
            .collect();
        let changes = Store::changes_since(j, since)
            .await
            .expect("read")
            .into_iter()
            .map(|c| (c.hosted_zone_id, c.change_id))
            .collect();
        (doubt, accepted, changes)
    }

    fn seen(l: &Ledger, run: &RunId, since: i64, now: i64, resources: &HashSet<String>) -> Said {
        let doubt = l
            .in_doubt(since, now, resources)
            .into_iter()
            .map(|d| (d.seq, d.why, d.expired))
            .collect();
        let accepted = l
            .accepted(run, now, resources)
            .into_iter()
            .inspect(|a| assert!(a.accepted.is_some(), "the call is kept"))
            .map(|a| a.seq)
            .collect();
        let changes = l
            .changes_since(since)
            .map(|c| (c.hosted_zone_id.clone(), c.change_id.clone()))
            .collect();
        (doubt, accepted, changes)
    }

    /// The ledger, started from the store's queries and then folded from the events appended
    /// since, says what those queries say, for this run and another sharing the journal: calls
    /// without an outcome, failed in a way that may have been processed (in doubt) or not
    /// (not in doubt), settled, accepted (this run's only), and Route 53 changes.
    #[tokio::test]
    async fn the_ledger_says_what_the_store_queries_say() {
        use crate::cloud::ErrorKind;
        let t = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(1_000_000));
        let tc = t.clone();
        let j = Journal::open(std::path::Path::new(":memory:"))
            .expect("opens")
            .with_clock(std::sync::Arc::new(move || {
                tc.fetch_add(1000, std::sync::atomic::Ordering::SeqCst)
            }));
        let st: &dyn Store = &j;
        let (a, b) = (RunId::new("run-a"), RunId::new("run-b"));
        let f = Fence::default();
        let s = "s";
        let fo = "FailoverDBCluster";
        let rr = "ChangeResourceRecordSets";
        // Before the ledger starts.
        let i1 = st
            .intent(&a, s, fo, "c1", failover("c1"), &f)
            .await
            .expect("w");
        st.outcome(&a, s, i1, fo, "c1", json!({"ok": true, "result": {}}))
            .await
            .expect("w");
        let i2 = st
            .intent(&a, s, rr, "Z1", change("Z1"), &f)
            .await
            .expect("w");
        let ok = json!({"ok": true, "result": {"change_id": "C1"}});
        st.outcome(&a, s, i2, rr, "Z1", ok).await.expect("w");
        let i3 = st
            .intent(&b, s, fo, "c2", failover("c2"), &f)
            .await
            .expect("w");
        let i4 = st
            .intent(&b, s, "RebootDBInstance", "i1", json!({}), &f)
            .await
            .expect("w");
        let no = failed(ErrorKind::Throttled);
        st.outcome(&b, s, i4, "RebootDBInstance", "i1", no)
            .await
            .expect("w");
        let i5 = st
            .intent(&a, s, fo, "c3", failover("c3"), &f)
            .await
            .expect("w");
        let maybe = failed(ErrorKind::Transient);
        st.outcome(&a, s, i5, fo, "c3", maybe).await.expect("w");
        let i6 = st
            .intent(&b, s, fo, "c4", failover("c4"), &f)
            .await
            .expect("w");
        let all: HashSet<String> = ["c1", "c2", "c3", "c4", "c5", "c6", "i1", "Z1", "Z2"]
            .into_iter()
            .map(String::from)
            .collect();
        let ledger = std::sync::Mutex::new(Ledger::default());
        let check = async |since: i64, now: i64, resources: &HashSet<String>| {
            Ledger::refresh(&ledger, &j, &a, since)
                .await
                .expect("refreshed");
            let want = oracle(&j, &a, since, now, resources).await;
            let got = seen(&ledger.lock().expect("lock"), &a, since, now, resources);
            assert_eq!(got, want);
            want
        };
        let now = t.load(std::sync::atomic::Ordering::SeqCst);
        let (doubt, accepted, changes) = check(0, now, &all).await;
        assert_eq!(
            doubt.iter().map(|d| d.0).collect::<Vec<_>>(),
            [i3, i5, i6],
            "no outcome, or a failure that may have been processed"
        );
        assert_eq!(accepted, [i1, i2]);
        assert_eq!(changes, [("Z1".to_string(), "C1".to_string())]);
        // After it started: an outcome for an intent it knew, a settlement, a new change and
        // a new intent of the other run, one answered only after the next look.
        st.outcome(&b, s, i3, fo, "c2", json!({"ok": true, "result": {}}))
            .await
            .expect("w");
        st.settle(&a, s, i5, "its effect was observed")
            .await
            .expect("w");
        let i7 = st
            .intent(&a, s, rr, "Z2", change("Z2"), &f)
            .await
            .expect("w");
        let ok = json!({"ok": true, "result": {"change_id": "C2"}});
        st.outcome(&a, s, i7, rr, "Z2", ok).await.expect("w");
        let i8 = st
            .intent(&b, s, fo, "c5", failover("c5"), &f)
            .await
            .expect("w");
        let now = t.load(std::sync::atomic::Ordering::SeqCst);
        let (doubt, accepted, changes) = check(0, now, &all).await;
        assert_eq!(doubt.iter().map(|d| d.0).collect::<Vec<_>>(), [i6, i8]);
        assert_eq!(accepted, [i1, i2, i7]);
        assert_eq!(changes.len(), 2);
        let maybe = failed(ErrorKind::Other);
        st.outcome(&b, s, i8, fo, "c5", maybe).await.expect("w");
        // Later: graces pass (60 s for a failover, 15 s for a change), the horizon moves past
        // the first calls, and only some resources are asked about.
        t.fetch_add(30_000, std::sync::atomic::Ordering::SeqCst);
        let now = t.load(std::sync::atomic::Ordering::SeqCst);
        let some: HashSet<String> = ["c4", "c5", "Z2", "c1"]
            .into_iter()
            .map(String::from)
            .collect();
        check(0, now, &some).await;
        let since = st.events(&b).await.expect("r")[2].at;
        let (doubt, _, changes) = check(since, now, &all).await;
        assert_eq!(doubt.iter().map(|d| d.0).collect::<Vec<_>>(), [i6, i8]);
        assert!(
            doubt[1].1.contains("may have been processed: boom"),
            "{doubt:?}"
        );
        assert_eq!(changes, [("Z2".to_string(), "C2".to_string())]);
        ledger.lock().expect("lock").prune(since, now);
        let want = oracle(&j, &a, since, now, &all).await;
        let got = seen(&ledger.lock().expect("lock"), &a, since, now, &all);
        assert_eq!(got, want, "pruning forgets nothing a decision reads");
        t.fetch_add(60_000, std::sync::atomic::Ordering::SeqCst);
        let now = t.load(std::sync::atomic::Ordering::SeqCst);
        ledger.lock().expect("lock").prune(since, now);
        let (doubt, accepted, _) = check(since, now, &all).await;
        assert!(
            doubt.iter().all(|d| d.2),
            "every grace has passed: {doubt:?}"
        );
        assert!(accepted.is_empty());
    }
}
