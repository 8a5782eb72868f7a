//! When the apalis worker asks Redis for jobs: every `interval`, on a timer that is always
//! armed.
//!
//! apalis-core 1.0's own `IntervalStrategy` has a lost wake-up. When its delay has fired it
//! makes the next one and returns `Ready` without polling it, so the new delay holds no
//! waker; apalis' `PollWith` then ignores that `Ready`. If the worker's Redis fetch is still
//! in flight at that moment, and the heartbeat timer already fired during the same fetch
//! (apalis only re-reads the heartbeat timer between fetches), the worker is left with no
//! armed timer at all: it sleeps until something outside wakes it, takes no jobs and sends
//! no heartbeats. A Redis round trip longer than the poll interval is all it takes, which a
//! loaded machine gives now and then and a slow Redis gives every time
//! (`worker/tests/slow_redis.rs`). This strategy polls the next tick whenever one has
//! fired, so every `Pending` leaves the worker's waker with the timer.

use std::task::{Context, Poll};
use std::time::Duration;

use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy};
use tokio::time::{Interval, MissedTickBehavior};

/// Wakes the worker every `interval` (tokio's timer); missed ticks are not made up.
#[derive(Debug)]
pub struct EveryInterval {
    period: Duration,
    /// Made on the first poll, inside the runtime whose timer it uses.
    interval: Option<Interval>,
}

impl EveryInterval {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            interval: None,
        }
    }
}

impl PollStrategy for EveryInterval {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let period = self.period;
        let interval = self.interval.get_or_insert_with(|| {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        let mut fired = false;
        // Drain every tick that is due: the loop ends on a `Pending`, which registered
        // `cx`'s waker for the next one.
        while interval.poll_tick(cx).is_ready() {
            fired = true;
        }
        if fired {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::*;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl CountingWaker {
        /// Waits (up to a generous limit) for a wake after `seen` wakes.
        async fn woken_after(&self, seen: usize) -> bool {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while tokio::time::Instant::now() < deadline {
                if self.0.load(Ordering::SeqCst) > seen {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            false
        }
    }

    /// The wake-up apalis' `IntervalStrategy` loses: after a poll that found a tick, with
    /// nothing polling again until woken, the worker must still be woken for the next one.
    #[tokio::test]
    async fn a_poll_that_finds_a_tick_leaves_the_next_one_armed() {
        let mut strategy = EveryInterval::new(Duration::from_millis(10));
        let waker = Arc::new(CountingWaker::default());
        let as_waker = Waker::from(waker.clone());
        let mut cx = Context::from_waker(&as_waker);
        let snapshot = PollSnapshot::new();

        // However the first poll goes, it leaves a wake-up behind.
        let _ = strategy.poll_drive(&mut cx, &snapshot);
        assert!(
            waker.woken_after(0).await,
            "the first tick wakes the worker"
        );

        for round in 1..=3 {
            // Woken: the tick is due, and this poll finds it.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(
                strategy.poll_drive(&mut cx, &snapshot),
                Poll::Ready(Some(())),
                "round {round}: the tick is due"
            );
            // Nothing polls again until the worker is woken: it must be.
            let seen = waker.0.load(Ordering::SeqCst);
            assert!(
                waker.woken_after(seen).await,
                "round {round}: no wake-up after a poll that found a tick"
            );
        }
    }

    #[tokio::test]
    async fn a_poll_before_the_tick_is_due_waits_for_it() {
        let mut strategy = EveryInterval::new(Duration::from_secs(3600));
        let waker = Arc::new(CountingWaker::default());
        let as_waker = Waker::from(waker.clone());
        let mut cx = Context::from_waker(&as_waker);
        let snapshot = PollSnapshot::new();
        // The first tick is an interval away (apalis fetches once before asking anyway).
        assert_eq!(strategy.poll_drive(&mut cx, &snapshot), Poll::Pending);
        assert_eq!(strategy.poll_drive(&mut cx, &snapshot), Poll::Pending);
        assert_eq!(waker.0.load(Ordering::SeqCst), 0);
    }
}
