//! Virtual time for the simulator: a timer queue and a driver that jumps to the next timer
//! as soon as every task is idle, so 30 simulated minutes take milliseconds.
//!
//! Tokio's own paused clock (`start_paused`) needs the `test-util` feature, which the crate
//! does not enable for its library; this module gives the same behaviour for the one clock
//! the engine uses (the `Clock` port) without it. Every wait in a simulation is a
//! [`VirtualTime::sleep`]; the [`drive`] task detects idleness with `tokio::task::yield_now`,
//! which Tokio's scheduler defers until it has run every ready task: when the driver resumes
//! several times in a row and nothing happened in between (no timer registered or fired, no
//! simulated call, no progress event, no task started or ended), every task is waiting, and
//! time jumps to the earliest timer. Everything runs on one thread in a fixed order, so the
//! same inputs give the same timeline.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Yield rounds without any activity before time may jump.
const QUIET_ROUNDS: u32 = 3;

#[derive(Default)]
struct State {
    now: Duration,
    seq: u64,
    /// Pending timers by (deadline, registration order); `None` waker: fired, not yet seen.
    timers: BTreeMap<(Duration, u64), Timer>,
    /// Bumped by anything that shows a task made progress.
    activity: u64,
}

enum Timer {
    Pending(Waker),
    Fired,
}

/// The simulation's clock: virtual elapsed time since the start, and its timers.
#[derive(Default)]
pub struct VirtualTime {
    state: Mutex<State>,
}

impl VirtualTime {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Virtual time elapsed since the start of the simulation.
    pub fn now(&self) -> Duration {
        self.lock().now
    }

    /// Record that something happened (a call, an event): time must not jump yet.
    pub fn touch(&self) {
        self.lock().activity += 1;
    }

    /// Wait `d` of virtual time.
    pub fn sleep(self: &Arc<Self>, d: Duration) -> Sleep {
        let deadline = self.now() + d;
        Sleep {
            time: self.clone(),
            deadline,
            key: None,
        }
    }

    fn activity(&self) -> (u64, bool) {
        let s = self.lock();
        (
            s.activity,
            s.timers.values().any(|t| matches!(t, Timer::Fired)),
        )
    }

    /// Jump to the earliest timer and fire every timer due then. `false`: no timer left.
    fn advance(&self) -> bool {
        let mut s = self.lock();
        let Some((&(deadline, _), _)) = s
            .timers
            .iter()
            .find(|(_, t)| matches!(t, Timer::Pending(_)))
        else {
            return false;
        };
        if deadline > s.now {
            s.now = deadline;
        }
        let now = s.now;
        let mut wakers = vec![];
        for ((d, _), t) in s.timers.iter_mut() {
            if *d > now {
                break;
            }
            if let Timer::Pending(w) = std::mem::replace(t, Timer::Fired) {
                wakers.push(w);
            }
        }
        s.activity += 1;
        drop(s);
        for w in wakers {
            w.wake();
        }
        true
    }
}

/// A virtual-time sleep. Dropping it cancels the timer.
pub struct Sleep {
    time: Arc<VirtualTime>,
    deadline: Duration,
    key: Option<(Duration, u64)>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.time.lock();
        match self.key {
            None => {
                s.activity += 1;
                if s.now >= self.deadline {
                    return Poll::Ready(());
                }
                s.seq += 1;
                let key = (self.deadline, s.seq);
                s.timers.insert(key, Timer::Pending(cx.waker().clone()));
                drop(s);
                self.key = Some(key);
                Poll::Pending
            }
            Some(key) => match s.timers.get_mut(&key) {
                Some(Timer::Pending(w)) => {
                    if !w.will_wake(cx.waker()) {
                        *w = cx.waker().clone();
                    }
                    Poll::Pending
                }
                _ => {
                    s.timers.remove(&key);
                    s.activity += 1;
                    drop(s);
                    self.key = None;
                    Poll::Ready(())
                }
            },
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.time.lock().timers.remove(&key);
        }
    }
}

/// Moves virtual time forward whenever every task is idle. Returns when nothing is left to
/// wait for (every task blocked and no timer pending): the simulation has stalled.
pub async fn drive(time: Arc<VirtualTime>) {
    let alive = || {
        tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_alive_tasks())
            .unwrap_or(0)
    };
    let mut last = (time.activity().0, alive());
    let mut quiet = 0;
    loop {
        tokio::task::yield_now().await;
        let (activity, fired) = time.activity();
        let now = (activity, alive());
        if now != last || fired {
            last = now;
            quiet = 0;
            continue;
        }
        quiet += 1;
        if quiet < QUIET_ROUNDS {
            continue;
        }
        quiet = 0;
        if !time.advance() {
            return;
        }
        last = (time.activity().0, alive());
    }
}

/// A virtual duration as the timeline and the report show it: `1m 24s`, `2s 350ms`, `0s`.
pub fn fmt_dur(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    // Whole seconds from 10 s on, milliseconds below: `1m 24s`, `2s 350ms`.
    let d = if d >= Duration::from_secs(10) {
        Duration::from_secs(d.as_secs() + u64::from(d.subsec_millis() >= 500))
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn sleeps_complete_in_virtual_order_without_waiting() {
        let rt = runtime();
        let started = std::time::Instant::now();
        let order = rt.block_on(async {
            let t = VirtualTime::new();
            let driver = tokio::spawn(drive(t.clone()));
            let log = Arc::new(Mutex::new(vec![]));
            let mut set = tokio::task::JoinSet::new();
            for (name, secs) in [("c", 3600u64), ("a", 60), ("b", 600)] {
                let (t, log) = (t.clone(), log.clone());
                set.spawn(async move {
                    t.sleep(Duration::from_secs(secs)).await;
                    log.lock().unwrap().push((name, t.now()));
                });
            }
            while set.join_next().await.is_some() {}
            driver.abort();
            let v = log.lock().unwrap().clone();
            v
        });
        assert_eq!(
            order,
            vec![
                ("a", Duration::from_secs(60)),
                ("b", Duration::from_secs(600)),
                ("c", Duration::from_secs(3600))
            ]
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_dropped_sleep_does_not_move_time() {
        let rt = runtime();
        let now = rt.block_on(async {
            let t = VirtualTime::new();
            let driver = tokio::spawn(drive(t.clone()));
            tokio::select! {
                biased;
                _ = t.sleep(Duration::from_secs(5)) => {}
                _ = t.sleep(Duration::from_secs(500)) => {}
            }
            // The 500 s timer was dropped: the next sleep completes at 5 s + 1 s.
            t.sleep(Duration::from_secs(1)).await;
            driver.abort();
            t.now()
        });
        assert_eq!(now, Duration::from_secs(6));
    }

    #[test]
    fn the_driver_stops_when_nothing_is_left_to_wait_for() {
        let rt = runtime();
        rt.block_on(async {
            let t = VirtualTime::new();
            // No timer at all: the driver returns instead of spinning.
            drive(t.clone()).await;
            assert_eq!(t.now(), Duration::ZERO);
        });
    }
}
