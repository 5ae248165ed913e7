//! A pool of threads that check the items of one call together with the calling thread: the
//! lock protocol under [`crate::ledger::StateVerifier`], model-checked with loom
//! (`cargo xtask loom`).
//!
//! A call fills its batch, publishes it (one shared slot and an epoch counter), then every thread,
//! the caller's included, claims one item at a time with an atomic increment, so a thread that is
//! not scheduled leaves its share to the others. The claim counters live in the call itself, so a
//! pool thread that arrives late can only find nothing left, never claim an item of a later call.
//! No lock is held while items are checked. Pool threads poll for a new epoch for
//! `ledger::VERIFY_SPIN` before they sleep on a condition variable, since a sleeping thread takes
//! tens of microseconds to wake.

#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
use loom::thread;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
use std::thread;

/// How long a pool thread polls for the next call, and a caller for the last items, before it
/// sleeps or yields.
const POOL_SPIN: std::time::Duration = crate::ledger::VERIFY_SPIN;

/// The items of one call.
pub(crate) trait Batch: Default + Send + Sync + 'static {
    /// Items in the batch.
    fn len(&self) -> usize;
    /// Checks item `i` (`i < len()`): whether it passes.
    fn check(&self, i: usize) -> bool;
}

/// Locks a mutex; a poisoned lock still yields its data (every holder here leaves it consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls with a spin for [`POOL_SPIN`], then yields the core (loom: yields at once, as its model
/// requires of every wait loop).
struct Backoff {
    #[cfg(not(loom))]
    start: std::time::Instant,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            #[cfg(not(loom))]
            start: std::time::Instant::now(),
        }
    }

    /// Whether the spin phase is still on (never under loom, which models no time).
    fn spinning(&self) -> bool {
        #[cfg(not(loom))]
        {
            self.start.elapsed() < POOL_SPIN
        }
        #[cfg(loom)]
        {
            false
        }
    }

    /// One wait step: a spin hint while spinning, else a yield.
    fn snooze(&self) {
        if self.spinning() {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// One call: its batch and its claim counters.
struct Call<B> {
    batch: B,
    /// Next item to claim, items finished, lowest failed item (`usize::MAX`: none).
    next: AtomicUsize,
    done: AtomicUsize,
    bad: AtomicUsize,
}

impl<B: Batch> Call<B> {
    fn new() -> Call<B> {
        Call {
            batch: B::default(),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            bad: AtomicUsize::new(usize::MAX),
        }
    }

    /// Claims and checks items until none is left.
    fn work(&self) {
        let len = self.batch.len();
        loop {
            let i = self.next.fetch_add(1, Ordering::AcqRel);
            if i >= len {
                return;
            }
            // Counts the item as finished (and failed, unless it passed) even if the check
            // panics, so a caller never waits for an item no thread will finish.
            let mut finish = Finish {
                call: self,
                item: i,
                passed: false,
            };
            finish.passed = self.batch.check(i);
        }
    }
}

/// Marks one claimed item finished when dropped (also while unwinding).
struct Finish<'a, B> {
    call: &'a Call<B>,
    item: usize,
    passed: bool,
}

impl<B> Drop for Finish<'_, B> {
    fn drop(&mut self) {
        if !self.passed {
            self.call.bad.fetch_min(self.item, Ordering::AcqRel);
        }
        self.call.done.fetch_add(1, Ordering::AcqRel);
    }
}

/// What the caller and the pool's threads share.
struct Shared<B> {
    /// The published call, if one is running.
    current: Mutex<Option<Arc<Call<B>>>>,
    /// Bumped (under `sleep`) once per published call and at shutdown.
    epoch: AtomicU64,
    stop: AtomicBool,
    /// Pool threads asleep on `wake` (changed under `sleep` only).
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

impl<B: Batch> Shared<B> {
    /// Starts a new epoch; wakes the sleeping threads, if any.
    fn publish(&self) {
        let any_asleep = {
            let _guard = lock(&self.sleep);
            self.epoch.fetch_add(1, Ordering::AcqRel);
            self.sleepers.load(Ordering::Acquire) > 0
        };
        if any_asleep {
            self.wake.notify_all();
        }
    }

    /// A pool thread: waits for each new epoch (polling, then asleep), then works on the call
    /// published then, if it is still running.
    fn serve(&self) {
        // Epoch 0 is the pool's creation: anything published since is new.
        let mut seen = 0;
        loop {
            let backoff = Backoff::new();
            let mut now = self.epoch.load(Ordering::Acquire);
            while now == seen && backoff.spinning() {
                std::hint::spin_loop();
                now = self.epoch.load(Ordering::Acquire);
            }
            if now == seen {
                let mut guard = lock(&self.sleep);
                while self.epoch.load(Ordering::Acquire) == seen
                    && !self.stop.load(Ordering::Acquire)
                {
                    self.sleepers.fetch_add(1, Ordering::AcqRel);
                    guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                    self.sleepers.fetch_sub(1, Ordering::AcqRel);
                }
                drop(guard);
                now = self.epoch.load(Ordering::Acquire);
            }
            seen = now;
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let call = lock(&self.current).clone();
            if let Some(call) = call {
                call.work();
            }
        }
    }
}

/// The pool: `workers` threads started once, and the caller's reusable call.
pub(crate) struct ClaimPool<B: Batch> {
    shared: Arc<Shared<B>>,
    /// The caller's call; its mutex serializes callers. Reused (buffers and all) when no pool
    /// thread still holds it, else replaced by a fresh one.
    call: Mutex<Arc<Call<B>>>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl<B: Batch> ClaimPool<B> {
    /// Starts `workers` threads (0: every call runs on its caller alone).
    ///
    /// # Errors
    /// The OS error if a thread can't be started (threads already started are stopped).
    pub(crate) fn new(workers: usize, name: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            current: Mutex::new(None),
            epoch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut pool = ClaimPool {
            shared,
            call: Mutex::new(Arc::new(Call::new())),
            handles: Vec::with_capacity(workers),
        };
        for k in 0..workers {
            let shared = Arc::clone(&pool.shared);
            // On error, dropping `pool` stops the threads already started.
            pool.handles
                .push(spawn(format!("{name}-{k}"), move || shared.serve())?);
        }
        Ok(pool)
    }

    /// Threads per call, the caller's included.
    pub(crate) fn threads(&self) -> usize {
        self.handles.len() + 1
    }

    /// Lets `fill` write the call's batch (emptied or not: `fill` decides), then checks every item
    /// on the caller's thread and, when `parallel`, the pool's. Returns the lowest failed item.
    pub(crate) fn run(&self, parallel: bool, fill: impl FnOnce(&mut B)) -> Option<usize> {
        let mut guard = lock(&self.call);
        if Arc::get_mut(&mut guard).is_none() {
            // A pool thread still holds the previous call (it is about to find nothing left).
            *guard = Arc::new(Call::new());
        }
        if let Some(call) = Arc::get_mut(&mut guard) {
            fill(&mut call.batch);
            call.next.store(0, Ordering::Relaxed);
            call.done.store(0, Ordering::Relaxed);
            call.bad.store(usize::MAX, Ordering::Relaxed);
        }
        let call = &*guard;
        let total = call.batch.len();
        let publish = parallel && !self.handles.is_empty();
        if publish {
            *lock(&self.shared.current) = Some(Arc::clone(call));
            self.shared.publish();
        }
        call.work();
        // Every item is claimed; wait for those the pool's threads are finishing (one each).
        let backoff = Backoff::new();
        while call.done.load(Ordering::Acquire) < total {
            backoff.snooze();
        }
        if publish {
            // Unpublish, so the next call can reuse this one once the pool lets go of it.
            *lock(&self.shared.current) = None;
        }
        let bad = call.bad.load(Ordering::Acquire);
        (bad != usize::MAX).then_some(bad)
    }
}

impl<B: Batch> Drop for ClaimPool<B> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.publish();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(not(loom))]
fn spawn(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name(name).spawn(f)
}

#[cfg(loom)]
fn spawn(
    _name: String,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    Ok(thread::spawn(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items are numbers; one passes when it is even.
    #[derive(Default)]
    struct Evens(Vec<u32>);

    impl Batch for Evens {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn check(&self, i: usize) -> bool {
            self.0.get(i).is_some_and(|v| v % 2 == 0)
        }
    }

    fn fill(values: &[u32]) -> impl FnOnce(&mut Evens) + '_ {
        move |b: &mut Evens| {
            b.0.clear();
            b.0.extend_from_slice(values);
        }
    }

    /// Two calls through a pool with one worker, the second with two failing items, then shutdown:
    /// each call reports its own lowest failure, whatever the interleaving, and nothing hangs.
    #[cfg(loom)]
    #[test]
    fn loom_claim_pool_calls_and_shutdown() {
        loom::model(|| {
            let pool = ClaimPool::<Evens>::new(1, "loom").expect("thread");
            assert_eq!(pool.run(true, fill(&[2, 4])), None);
            assert_eq!(pool.run(true, fill(&[0, 3, 5])), Some(1));
            drop(pool);
        });
    }

    /// Two callers share a pool: each gets its own call's result.
    #[cfg(loom)]
    #[test]
    fn loom_claim_pool_two_callers() {
        loom::model(|| {
            let pool = Arc::new(ClaimPool::<Evens>::new(1, "loom").expect("thread"));
            let other = Arc::clone(&pool);
            let t = thread::spawn(move || other.run(true, fill(&[1, 2])));
            assert_eq!(pool.run(true, fill(&[2, 2])), None);
            assert_eq!(t.join().expect("caller"), Some(0));
        });
    }

    #[cfg(not(loom))]
    #[test]
    fn every_item_is_checked_once_and_the_lowest_failure_wins() {
        for workers in [0, 1, 3] {
            let pool = ClaimPool::<Evens>::new(workers, "test").expect("threads");
            assert_eq!(pool.threads(), workers + 1);
            for round in 0..50u32 {
                let mut values: Vec<u32> = (0..40).map(|v| v * 2).collect();
                let bad = [(round * 7) % 40, (round * 13 + 5) % 40];
                for &b in &bad {
                    values[b as usize] += 1;
                }
                let expected = if round % 5 == 0 {
                    values = values.iter().map(|v| v & !1).collect();
                    None
                } else {
                    Some(bad[0].min(bad[1]) as usize)
                };
                assert_eq!(pool.run(round % 2 == 0, fill(&values)), expected);
            }
            assert_eq!(pool.run(true, fill(&[])), None);
        }
    }

    /// A check that panics (never expected of a signature check) counts as a failure and the
    /// pool keeps serving: no call waits for an item no thread will finish.
    #[cfg(not(loom))]
    #[test]
    fn a_panicking_check_fails_its_item_instead_of_hanging_the_caller() {
        #[derive(Default)]
        struct PanicsOn(Option<usize>, usize);
        impl Batch for PanicsOn {
            fn len(&self) -> usize {
                self.1
            }
            fn check(&self, i: usize) -> bool {
                assert!(Some(i) != self.0, "check {i} panics");
                true
            }
        }
        let pool = ClaimPool::<PanicsOn>::new(1, "test").expect("thread");
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        for _ in 0..20 {
            // The panic lands either in the pool's thread (which then dies) or in the caller's.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.run(true, |b| *b = PanicsOn(Some(3), 64))
            }));
            if let Ok(r) = result {
                assert_eq!(r, Some(3));
            }
            assert_eq!(pool.run(true, |b| *b = PanicsOn(None, 64)), None);
        }
        std::panic::set_hook(previous);
    }
}
