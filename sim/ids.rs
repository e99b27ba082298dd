//! Typed ids (`ServiceId`, `ReqId`, `CallId`, ...), `IdVec` (a vector indexed by one kind of id) and `LookupMap`.

use std::fmt;
use std::hash::BuildHasherDefault;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};

/// An index into one arena. Each kind of id is its own type, so a request id cannot be
/// used where a call id is meant.
pub trait Id: Copy + Eq {
    /// The id of slot `i`.
    fn new(i: usize) -> Self;
    /// Its slot.
    fn ix(self) -> usize;
}

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);

        impl Id for $name {
            #[inline]
            fn new(i: usize) -> Self {
                debug_assert!(i < u32::MAX as usize, "arena larger than u32");
                $name(i as u32)
            }
            #[inline]
            fn ix(self) -> usize {
                self.0 as usize
            }
        }

        impl $name {
            /// Its slot.
            #[inline]
            pub const fn ix(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    )*};
}

ids! {
    /// A service (index into `SystemSpec::services`).
    ServiceId;
    /// A workload (index into `SystemSpec::workloads`).
    WorkloadId;
    /// A request slot in the model's arena: a client's request, an attempt, a probe, a
    /// delivery, a one-way message or a saga's carrier.
    ReqId;
    /// A call slot: one logical call from a request to a downstream service, with its attempts.
    CallId;
}

/// A vector indexed by one kind of id.
#[derive(Clone, Debug)]
pub struct IdVec<I, T> {
    items: Vec<T>,
    _id: PhantomData<fn(I) -> I>,
}

impl<I: Id, T> Default for IdVec<I, T> {
    fn default() -> Self {
        IdVec {
            items: Vec::new(),
            _id: PhantomData,
        }
    }
}

impl<I: Id, T> IdVec<I, T> {
    /// An empty vector with room for `n`.
    pub fn with_capacity(n: usize) -> Self {
        IdVec {
            items: Vec::with_capacity(n),
            _id: PhantomData,
        }
    }

    /// Appends `item`; returns its id.
    pub fn push(&mut self, item: T) -> I {
        self.items.push(item);
        I::new(self.items.len() - 1)
    }

    /// How many slots.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// No slots.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items in id order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// The items in id order, mutably.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.items.iter_mut()
    }

    /// `(id, item)` pairs in id order.
    pub fn iter_ids(&self) -> impl Iterator<Item = (I, &T)> {
        self.items.iter().enumerate().map(|(i, t)| (I::new(i), t))
    }
}

impl<I: Id, T> From<Vec<T>> for IdVec<I, T> {
    fn from(items: Vec<T>) -> Self {
        IdVec {
            items,
            _id: PhantomData,
        }
    }
}

impl<I: Id, T> Index<I> for IdVec<I, T> {
    type Output = T;
    #[inline]
    fn index(&self, id: I) -> &T {
        &self.items[id.ix()]
    }
}

impl<I: Id, T> IndexMut<I> for IdVec<I, T> {
    #[inline]
    fn index_mut(&mut self, id: I) -> &mut T {
        &mut self.items[id.ix()]
    }
}

/// A hash map for state found by a key on the hot path (a rate limiter per user, say) and
/// **never iterated**: its order is the hasher's, so nothing read from it in order may
/// reach a result. FxHash has no random seed, so even its layout repeats from run to run.
/// A lookup touches about one cache line where a `BTreeMap` of 10^4 keys touches four or
/// five (the per-user rate limiter's `BTreeMap` was a twentieth of the mesh's cache misses).
#[allow(clippy::disallowed_types)]
pub type LookupMap<K, V> =
    std::collections::HashMap<K, V, BuildHasherDefault<rustc_hash::FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_index_their_own_vector() {
        let mut reqs: IdVec<ReqId, &str> = IdVec::default();
        let a = reqs.push("a");
        let b = reqs.push("b");
        assert_eq!((a, b), (ReqId(0), ReqId(1)));
        reqs[b] = "B";
        assert_eq!(reqs[a], "a");
        assert_eq!(
            reqs.iter_ids().map(|(i, s)| (i.0, *s)).collect::<Vec<_>>(),
            vec![(0, "a"), (1, "B")]
        );
    }
}
