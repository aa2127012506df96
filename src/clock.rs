//! The clocks of live runs (an edge: tokio). The core never reads time itself; it is given a
//! `cloud::Clock`. The simulator has its own virtual clock (`cloud::sim::time`).

use crate::cloud::Clock;
use async_trait::async_trait;
use std::time::{Duration, SystemTime};

/// The wall clock, backed by tokio.
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

/// A `Clock` that follows tokio's clock, so that it runs virtual time when tokio's clock is
/// paused (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`). `now` is the wall
/// time at creation plus tokio's elapsed time since.
pub struct TokioClock {
    wall: SystemTime,
    base: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at the current wall time. Create it inside the runtime whose clock it follows.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// Starts at `wall` (fixed timestamps make simulated timelines reproducible).
    pub fn starting_at(wall: SystemTime) -> Self {
        Self {
            wall,
            base: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.wall + self.base.elapsed()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}
