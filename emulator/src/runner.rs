//! The background worker of import jobs (`POST /v1/jobs`).
//!
//! It wakes when a job is queued (or every 500 ms), then takes turns across tenants: one chunk
//! ([`CHUNK_ROWS`](crate::domain::jobs::CHUNK_ROWS) rows, one critical section) of each tenant's
//! oldest unfinished job per round, yielding between rounds, until no job is left. A long import
//! therefore never holds a tenant lock for long and never starves another tenant's jobs, and the
//! API answers while it runs. Movements it writes create webhook deliveries like API writes do,
//! so it pokes the dispatcher.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::dispatch::Dispatcher;
use crate::domain::registry::World;

/// Idle time between sweeps when nothing wakes the worker.
const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// Runs import jobs.
#[derive(Debug)]
pub struct JobRunner {
    world: Arc<World>,
    dispatcher: Arc<Dispatcher>,
    wake: Notify,
}

impl JobRunner {
    /// A worker over `world`.
    pub fn new(world: Arc<World>, dispatcher: Arc<Dispatcher>) -> JobRunner {
        JobRunner { world, dispatcher, wake: Notify::new() }
    }

    /// Tells the worker a job was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The worker loop; returns when `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
                _ = stop.changed() => return,
            }
            loop {
                let mut worked = false;
                for tenant in self.world.tenants() {
                    if let Some(deliveries) = self.world.run_job_step(&tenant) {
                        worked = true;
                        if deliveries {
                            self.dispatcher.wake();
                        }
                    }
                }
                if !worked || *stop.borrow() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    }
}
