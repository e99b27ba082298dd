//! A log-linear latency histogram with HDR's bucket layout and answers, recorded in a few instructions.
//!
//! Every request records several latencies (workload, service, queue wait, attempt, and the
//! per-bucket copies of each), so recording is on the hottest path of a run. The
//! `hdrhistogram` crate's `record` is general: it checks for resizing, keeps its own count,
//! minimum and maximum, and saturates. [`Latency`](super::Latency) keeps the exact count,
//! minimum, maximum and sum itself, so this histogram keeps only the counts array: the
//! same buckets as `Histogram::new_with_bounds(LATENCY_LOW_NS, _, sigfig)` (so the same
//! percentiles, byte for byte: a test checks it against the crate) and the same
//! `value_at_quantile`. The relative error of a percentile is at most one bucket's width,
//! 2^-10 < 0.1 % at 3 significant digits and 2^-7 < 0.8 % at 2.

/// HDR's counts array for values from 0 upwards, grown to the largest value seen.
#[derive(Clone, Debug)]
pub struct LogLinear {
    /// Counts by bucket index; empty until the first value, then grown a power of two at a
    /// time to cover the largest value recorded (HDR's auto-resize).
    counts: Vec<u64>,
    /// log2 of the lowest discernible value, rounded down (HDR's `unit_magnitude`).
    unit_mag: u32,
    /// log2 of half the sub-buckets per bucket.
    half_mag: u32,
    /// `64 - unit_mag - log2(sub-buckets per bucket)`: a value's bucket is this minus its
    /// leading zeros (after the mask below).
    lz_base: u32,
    /// Makes every value below the first bucket's top count as in bucket 0.
    sub_mask: u64,
}

impl LogLinear {
    /// The layout `hdrhistogram` builds for `lowest` (≥ 1) at `sigfig` (0..=5) digits.
    pub fn new(lowest: u64, sigfig: u8) -> Self {
        debug_assert!(lowest >= 1 && sigfig <= 5);
        let largest = 2 * 10_u32.pow(u32::from(sigfig));
        let unit_mag = (lowest as f64).log2().floor() as u32;
        let count_mag = f64::from(largest).log2().ceil() as u32;
        LogLinear {
            counts: Vec::new(),
            unit_mag,
            half_mag: count_mag - 1,
            lz_base: 64 - unit_mag - count_mag,
            sub_mask: ((1u64 << count_mag) - 1) << unit_mag,
        }
    }

    /// The bucket (power of two above the first) that holds `v`.
    #[inline]
    fn bucket(&self, v: u64) -> u32 {
        self.lz_base - (v | self.sub_mask).leading_zeros()
    }

    /// The counts index of `v`: its bucket's base (half-way into the bucket: bucket 0 uses
    /// both halves, the others only their top half) plus its sub-bucket.
    #[inline]
    fn index(&self, v: u64) -> usize {
        let bucket = self.bucket(v);
        let sub = (v >> (bucket + self.unit_mag)) as usize;
        ((bucket as usize) << self.half_mag) + sub
    }

    /// Counts one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        let i = self.index(v);
        match self.counts.get_mut(i) {
            Some(c) => *c += 1,
            None => self.grow_and_record(v, i),
        }
    }

    /// The first value, or one past the top: grows the array to cover `v`'s bucket.
    #[cold]
    #[inline(never)]
    fn grow_and_record(&mut self, v: u64, i: usize) {
        let len = (self.bucket(v) as usize + 2) << self.half_mag;
        self.counts.resize(len, 0);
        self.counts[i] += 1;
    }

    /// The value of counts index `i`: the bottom of its sub-bucket.
    fn value_for(&self, i: usize) -> u64 {
        let half = 1usize << self.half_mag;
        let bucket = (i >> self.half_mag) as i64 - 1;
        let mut sub = (i & (half - 1)) + half;
        let bucket = if bucket < 0 {
            sub -= half;
            0
        } else {
            bucket as u32
        };
        (sub as u64) << (bucket + self.unit_mag)
    }

    /// The lowest value counted together with `v`.
    fn lowest_equivalent(&self, v: u64) -> u64 {
        let bucket = self.bucket(v);
        (v >> (bucket + self.unit_mag)) << (bucket + self.unit_mag)
    }

    /// The highest value counted together with `v` (HDR caps it at `u64::MAX`).
    fn highest_equivalent(&self, v: u64) -> u64 {
        if v == u64::MAX {
            return u64::MAX;
        }
        let range = 1u64 << (self.bucket(v) + self.unit_mag);
        self.lowest_equivalent(v).saturating_add(range) - 1
    }

    /// HDR's `value_at_quantile` for `total` values recorded: the top of the bucket where
    /// the running count first reaches `ceil(quantile × total)` (at least 1); the bottom
    /// for quantile 0; 0 when nothing was recorded.
    pub fn value_at_quantile(&self, quantile: f64, total: u64) -> u64 {
        let quantile = if quantile > 1.0 { 1.0 } else { quantile };
        let target = ((quantile * total as f64).ceil() as u64).max(1);
        match self.index_reaching(target) {
            Some(i) => self.answer(i, quantile),
            None => 0,
        }
    }

    /// The answers for several quantiles in ascending order, in one pass over the counts
    /// (each the same as [`LogLinear::value_at_quantile`]'s).
    pub fn values_at_quantiles<const N: usize>(&self, quantiles: [f64; N], total: u64) -> [u64; N] {
        debug_assert!(quantiles.windows(2).all(|w| w[0] <= w[1]));
        let mut out = [0; N];
        let (mut i, mut seen) = (0usize, 0u64);
        for (k, &q) in quantiles.iter().enumerate() {
            let q = if q > 1.0 { 1.0 } else { q };
            let target = ((q * total as f64).ceil() as u64).max(1);
            while seen < target {
                let Some(&c) = self.counts.get(i) else {
                    return out;
                };
                seen += c;
                i += 1;
            }
            out[k] = self.answer(i - 1, q);
        }
        out
    }

    /// The first counts index at which the running count reaches `target`. Summed eight
    /// counts at a time (the compiler vectorises it) and walked one by one only in the
    /// chunk that reaches it: a hedge asks for a percentile on every call.
    fn index_reaching(&self, target: u64) -> Option<usize> {
        const CHUNK: usize = 8;
        let mut seen = 0u64;
        let chunks = self.counts.chunks_exact(CHUNK);
        let tail = chunks.remainder();
        for (k, chunk) in chunks.enumerate() {
            let sum: u64 = chunk.iter().sum();
            if seen + sum < target {
                seen += sum;
                continue;
            }
            for (j, &c) in chunk.iter().enumerate() {
                seen += c;
                if seen >= target {
                    return Some(k * CHUNK + j);
                }
            }
        }
        let base = self.counts.len() - tail.len();
        for (j, &c) in tail.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some(base + j);
            }
        }
        None
    }

    /// What a quantile answers when its count is reached at index `i`.
    fn answer(&self, i: usize, quantile: f64) -> u64 {
        let v = self.value_for(i);
        if quantile == 0.0 {
            self.lowest_equivalent(v)
        } else {
            self.highest_equivalent(v)
        }
    }

    /// Forgets every count, keeping the array (per-bucket recorders refill it at once).
    pub fn reset(&mut self) {
        self.counts.fill(0);
    }

    /// Bytes held by the counts array.
    pub fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;
    use proptest::prelude::*;

    const LOW: u64 = 1_000;
    const HIGH: u64 = 3_600_000_000_000;

    fn both(sigfig: u8, values: &[u64]) -> (LogLinear, Histogram<u64>) {
        let mut ours = LogLinear::new(LOW, sigfig);
        let mut hdr = Histogram::<u64>::new_with_bounds(LOW, HIGH, sigfig).unwrap();
        for &v in values {
            ours.record(v.min(HIGH));
            hdr.saturating_record(v.min(HIGH));
        }
        (ours, hdr)
    }

    #[test]
    fn layout_matches_hdr_at_every_power_of_two_edge() {
        for sigfig in 0..=5u8 {
            let ours = LogLinear::new(LOW, sigfig);
            let hdr = Histogram::<u64>::new_with_bounds(LOW, HIGH, sigfig).unwrap();
            for shift in 0..42 {
                for v in [
                    (1u64 << shift).saturating_sub(1),
                    1 << shift,
                    (1 << shift) + 1,
                ] {
                    let v = v.min(HIGH);
                    assert_eq!(
                        ours.lowest_equivalent(v),
                        hdr.lowest_equivalent(v),
                        "sigfig {sigfig}, v {v}"
                    );
                    assert_eq!(ours.highest_equivalent(v), hdr.highest_equivalent(v));
                    assert_eq!(ours.value_for(ours.index(v)), hdr.lowest_equivalent(v));
                }
            }
        }
    }

    #[test]
    fn empty_answers_zero_and_reset_forgets() {
        let (mut ours, _) = both(3, &[]);
        assert_eq!(ours.value_at_quantile(0.5, 0), 0);
        ours.record(5_000_000);
        assert!(ours.value_at_quantile(0.5, 1) >= 5_000_000);
        ours.reset();
        assert_eq!(ours.value_at_quantile(0.5, 0), 0);
        assert!(
            ours.heap_bytes() > 0,
            "reset keeps the array for the next bucket"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// The answers the gallery's bytes were made with: every quantile equals the crate's.
        #[test]
        fn quantiles_match_hdrhistogram(
            sigfig in 2u8..=3,
            values in prop::collection::vec(
                prop_oneof![0u64..5_000, 100_000u64..500_000_000, 0u64..2 * HIGH],
                1..400,
            ),
            qs in prop::collection::vec(0.0f64..=1.0, 1..8),
        ) {
            let (ours, hdr) = both(sigfig, &values);
            let n = values.len() as u64;
            let four = ours.values_at_quantiles([0.5, 0.9, 0.99, 0.999], n);
            for (q, v) in [0.5, 0.9, 0.99, 0.999].into_iter().zip(four) {
                prop_assert_eq!(v, hdr.value_at_quantile(q), "one pass, q {}", q);
            }
            for q in qs.into_iter().chain([0.0, 0.5, 0.99, 0.999, 1.0]) {
                prop_assert_eq!(
                    ours.value_at_quantile(q, values.len() as u64),
                    hdr.value_at_quantile(q),
                    "q {}", q
                );
            }
        }
    }
}
