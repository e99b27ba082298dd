//! Request criticality (the Google SRE book, "Handling Overload"): four levels carried by every
//! request and passed down its calls, per-level shedding thresholds, and a queue that serves
//! the most critical work first and pushes out the least critical when full.
//!
//! Semantics, from Site Reliability Engineering (Beyer et al., 2016), ch. 21:
//! - CRITICAL_PLUS, CRITICAL (the default: "requests … are CRITICAL unless marked otherwise"),
//!   SHEDDABLE_PLUS and SHEDDABLE;
//! - "criticality is propagated automatically": a request's calls carry its level, unless the
//!   call site sets its own;
//! - "a backend task will only reject requests of a given criticality if it's already
//!   rejecting all requests of all lower criticalities": here, the queue length at which an
//!   instance refuses a level never exceeds the one of a more critical level ([`Thresholds`]),
//!   and a full priority queue makes room for an arrival by dropping the newest request of the
//!   least critical level below the arrival's ([`LeveledQueue::push_out`]).
//!
//! Order within the queue is strict priority, first come first served within a level: the
//! non-preemptive priority queue whose waits Cobham's formula gives (validated by
//! `scenarios/validation/priority-queue.toml`).

use std::collections::VecDeque;

/// How much a request matters when there is not enough capacity for all (low to high).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Criticality {
    /// Best effort: batch work, prefetches; shed first.
    Sheddable = 0,
    /// Partial unavailability is expected (retried later).
    SheddablePlus = 1,
    /// What a user waits for; the default.
    #[default]
    Critical = 2,
    /// The most critical, whose failure has serious user-visible impact.
    CriticalPlus = 3,
}

/// Number of levels.
pub const LEVELS: usize = 4;

impl Criticality {
    /// Every level, low to high.
    pub const ALL: [Criticality; LEVELS] = [
        Criticality::Sheddable,
        Criticality::SheddablePlus,
        Criticality::Critical,
        Criticality::CriticalPlus,
    ];

    /// The level's name as scenarios spell it (the SRE book's, in lower case).
    pub fn name(self) -> &'static str {
        match self {
            Criticality::Sheddable => "sheddable",
            Criticality::SheddablePlus => "sheddable_plus",
            Criticality::Critical => "critical",
            Criticality::CriticalPlus => "critical_plus",
        }
    }

    /// Reads a level: `sheddable`, `sheddable_plus`, `critical`, `critical_plus`, in any case,
    /// with `-` or `_` (`CRITICAL_PLUS` as the book writes it).
    pub fn parse(s: &str) -> Option<Criticality> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Criticality::ALL.into_iter().find(|c| c.name() == norm)
    }

    /// Its index, low to high (0 = sheddable).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The level at an index (clamped to the highest).
    pub fn from_index(i: usize) -> Criticality {
        Criticality::ALL[i.min(LEVELS - 1)]
    }
}

/// Per-level queue lengths at which an instance refuses arrivals: a level is refused once
/// its threshold of work waits (and every worker is busy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Indexed by [`Criticality::index`].
    limit: [u32; LEVELS],
}

/// Why a set of thresholds cannot be used.
#[derive(Clone, Debug, PartialEq)]
pub enum ThresholdError {
    /// A share outside (0, 1].
    OutOfRange(Criticality, f64),
    /// A level would be refused while a less critical one is still admitted.
    Inverted {
        /// The less critical level, with the larger share.
        lower: Criticality,
        /// The more critical level, with the smaller share.
        higher: Criticality,
    },
}

impl Thresholds {
    /// Every level admitted up to the queue's capacity (no criticality-aware shedding).
    pub fn none(capacity: u32) -> Thresholds {
        Thresholds {
            limit: [capacity; LEVELS],
        }
    }

    /// Thresholds from shares of the queue's capacity, `(level, share)`; levels not given
    /// take the share of the next more critical level given (1.0 above the highest given),
    /// so that naming only `sheddable = 0.5` sheds nothing else early. A threshold is
    /// `ceil(share × capacity)`, at least 1.
    pub fn from_shares(
        capacity: u32,
        shares: &[(Criticality, f64)],
    ) -> Result<Thresholds, ThresholdError> {
        let mut given: [Option<f64>; LEVELS] = [None; LEVELS];
        for &(c, f) in shares {
            if !(f > 0.0 && f <= 1.0) {
                return Err(ThresholdError::OutOfRange(c, f));
            }
            given[c.index()] = Some(f);
        }
        // The SRE rule: refusing a level implies refusing every lower one.
        for lo in 0..LEVELS {
            for hi in lo + 1..LEVELS {
                if let (Some(a), Some(b)) = (given[lo], given[hi]) {
                    if a > b {
                        return Err(ThresholdError::Inverted {
                            lower: Criticality::from_index(lo),
                            higher: Criticality::from_index(hi),
                        });
                    }
                }
            }
        }
        let mut limit = [capacity; LEVELS];
        let mut share = 1.0;
        for i in (0..LEVELS).rev() {
            if let Some(f) = given[i] {
                share = f;
            }
            limit[i] = ((share * capacity as f64).ceil() as u32).clamp(1, capacity.max(1));
        }
        Ok(Thresholds { limit })
    }

    /// Whether an arrival of level `c` is admitted while `queued` requests wait.
    pub fn admits(&self, c: Criticality, queued: usize) -> bool {
        queued < self.limit[c.index()] as usize
    }

    /// The queue length at which level `c` is refused.
    pub fn limit(&self, c: Criticality) -> u32 {
        self.limit[c.index()]
    }
}

/// A queue kept in priority order: more critical levels ahead, first come first served
/// within a level. Items do not carry their level: the queue counts each level's items, and
/// since it is sorted, the head belongs to the highest level present and the tail to the
/// lowest. With every item at one level it is a plain FIFO deque (push at the back), so the
/// other disciplines use it unchanged.
#[derive(Clone, Debug, Default)]
pub struct LeveledQueue<T> {
    items: VecDeque<T>,
    count: [u32; LEVELS],
}

impl<T> LeveledQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        LeveledQueue {
            items: VecDeque::new(),
            count: [0; LEVELS],
        }
    }

    /// Items waiting.
    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Nothing waiting.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds `item` behind every item of its level or a higher one.
    #[inline(always)]
    pub fn push(&mut self, level: Criticality, item: T) {
        let l = level.index();
        self.count[l] += 1;
        // At the back unless a less critical item waits (always, at one level).
        if self.count[..l].iter().all(|&c| c == 0) {
            self.items.push_back(item);
        } else {
            self.insert(l, item);
        }
    }

    #[inline(never)]
    fn insert(&mut self, l: usize, item: T) {
        let ahead: u32 = self.count[l..].iter().sum::<u32>() - 1;
        self.items.insert(ahead as usize, item);
    }

    /// Takes the head: the oldest item of the highest level.
    #[inline]
    pub fn pop_front(&mut self) -> Option<T> {
        let item = self.items.pop_front()?;
        // The head belongs to the highest level with an item.
        if let Some(c) = self.count.iter_mut().rev().find(|c| **c > 0) {
            *c -= 1;
        }
        Some(item)
    }

    /// Takes the tail: the newest item of the lowest level.
    #[inline]
    pub fn pop_back(&mut self) -> Option<T> {
        let item = self.items.pop_back()?;
        if let Some(c) = self.count.iter_mut().find(|c| **c > 0) {
            *c -= 1;
        }
        Some(item)
    }

    /// To admit an arrival of level `level` into a full queue: takes the newest item of the
    /// lowest level if that level is below `level` (the item the arrival displaces).
    pub fn push_out(&mut self, level: Criticality) -> Option<T> {
        match self.lowest() {
            Some(low) if low < level => self.pop_back(),
            _ => None,
        }
    }

    /// The highest level with an item waiting.
    #[inline]
    pub fn highest(&self) -> Option<Criticality> {
        (0..LEVELS)
            .rev()
            .find(|&i| self.count[i] > 0)
            .map(Criticality::from_index)
    }

    /// The lowest level with an item waiting.
    #[inline]
    pub fn lowest(&self) -> Option<Criticality> {
        (0..LEVELS)
            .find(|&i| self.count[i] > 0)
            .map(Criticality::from_index)
    }

    /// Takes every item, in queue order.
    pub fn drain(&mut self) -> std::collections::vec_deque::Drain<'_, T> {
        self.count = [0; LEVELS];
        self.items.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Criticality::*;

    #[test]
    fn levels_parse_in_the_books_spelling_and_ours() {
        assert_eq!(Criticality::parse("CRITICAL_PLUS"), Some(CriticalPlus));
        assert_eq!(Criticality::parse("sheddable-plus"), Some(SheddablePlus));
        assert_eq!(Criticality::parse(" critical "), Some(Critical));
        assert_eq!(Criticality::parse("urgent"), None);
        assert_eq!(Criticality::default(), Critical, "the book's default");
        for c in Criticality::ALL {
            assert_eq!(Criticality::parse(c.name()), Some(c));
            assert_eq!(Criticality::from_index(c.index()), c);
        }
    }

    #[test]
    fn unnamed_levels_take_the_next_higher_share() {
        let t = Thresholds::from_shares(100, &[(Sheddable, 0.5)]).unwrap();
        assert_eq!(
            Criticality::ALL.map(|c| t.limit(c)),
            [50, 100, 100, 100],
            "naming sheddable alone sheds nothing else early"
        );
        let t = Thresholds::from_shares(10, &[(Sheddable, 0.25), (Critical, 0.8)]).unwrap();
        // ceil(2.5) = 3; sheddable_plus takes critical's 0.8.
        assert_eq!(Criticality::ALL.map(|c| t.limit(c)), [3, 8, 8, 10]);
        assert!(t.admits(Sheddable, 2) && !t.admits(Sheddable, 3));
        assert!(t.admits(CriticalPlus, 9) && !t.admits(CriticalPlus, 10));
        // A tiny share still admits into an empty queue.
        let t = Thresholds::from_shares(10, &[(Sheddable, 0.01)]).unwrap();
        assert_eq!(t.limit(Sheddable), 1);
        assert_eq!(Thresholds::none(7).limit(Sheddable), 7);
    }

    #[test]
    fn a_level_is_never_refused_before_a_lower_one() {
        // SRE: "only reject requests of a given criticality if it's already rejecting all
        // requests of all lower criticalities".
        assert_eq!(
            Thresholds::from_shares(100, &[(Sheddable, 0.9), (CriticalPlus, 0.5)]),
            Err(ThresholdError::Inverted {
                lower: Sheddable,
                higher: CriticalPlus
            })
        );
        assert_eq!(
            Thresholds::from_shares(100, &[(Critical, 1.5)]),
            Err(ThresholdError::OutOfRange(Critical, 1.5))
        );
        assert!(Thresholds::from_shares(100, &[(Critical, 0.0)]).is_err());
        assert!(Thresholds::from_shares(100, &[(Critical, f64::NAN)]).is_err());
    }

    #[test]
    fn the_queue_serves_high_levels_first_and_pushes_out_the_newest_low_one() {
        let mut q = LeveledQueue::new();
        q.push(Sheddable, "s1");
        q.push(Critical, "c1");
        q.push(Sheddable, "s2");
        q.push(CriticalPlus, "p1");
        q.push(Critical, "c2");
        assert_eq!(
            (q.highest(), q.lowest()),
            (Some(CriticalPlus), Some(Sheddable))
        );
        // A sheddable arrival displaces nothing; a critical one the newest sheddable.
        assert_eq!(q.push_out(Sheddable), None);
        assert_eq!(q.push_out(Critical), Some("s2"));
        let order: Vec<_> = std::iter::from_fn(|| q.pop_front()).collect();
        assert_eq!(order, ["p1", "c1", "c2", "s1"]);
        assert!(q.is_empty() && q.highest().is_none());
    }

    #[test]
    fn at_one_level_it_is_a_plain_deque() {
        let mut q = LeveledQueue::new();
        for i in 0..5 {
            q.push(Critical, i);
        }
        assert_eq!(q.pop_back(), Some(4));
        assert_eq!(q.pop_front(), Some(0));
        assert_eq!(q.drain().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(q.lowest(), None);
    }

    proptest! {
        /// Against a model: a list kept sorted by level (stable), popped at either end.
        #[test]
        fn the_queue_matches_a_stably_sorted_list(ops in prop::collection::vec((0u8..6, 0usize..4), 0..200)) {
            let mut q = LeveledQueue::new();
            let mut model: Vec<(usize, u32)> = Vec::new();
            for (n, (op, level)) in ops.into_iter().enumerate() {
                let n = n as u32;
                match op {
                    0..=2 => {
                        q.push(Criticality::from_index(level), n);
                        // Behind every item of its level or higher.
                        let at = model.iter().take_while(|(l, _)| *l >= level).count();
                        model.insert(at, (level, n));
                    }
                    3 => prop_assert_eq!(q.pop_front(), (!model.is_empty()).then(|| model.remove(0).1)),
                    4 => prop_assert_eq!(q.pop_back(), model.pop().map(|x| x.1)),
                    _ => {
                        let want = match model.last() {
                            Some(&(l, _)) if l < level => model.pop().map(|x| x.1),
                            _ => None,
                        };
                        prop_assert_eq!(q.push_out(Criticality::from_index(level)), want);
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.highest().map(Criticality::index), model.first().map(|x| x.0));
                prop_assert_eq!(q.lowest().map(Criticality::index), model.last().map(|x| x.0));
            }
        }
    }
}
