//! A pinned pseudo-random generator: SplitMix64 (Steele, Lea & Flood, OOPSLA 2014). The
//! sequence for a seed never changes between versions, unlike `StdRng`, so a recorded seed
//! replays the same traffic.

#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fills `buf` with the next values, eight little-endian bytes each (the last cut short).
    /// Out of line so a caller built unoptimised (the stressor) still fills at full speed.
    #[inline(never)]
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
    }

    /// Uniform in `0..bound` (Lemire's multiply-shift; the bias is below 2^-32 for our bounds).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_pinned() {
        // Reference values of SplitMix64 for seed 1234567.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn fill_is_the_sequence_in_little_endian() {
        let mut buf = [0u8; 12];
        SplitMix64::new(1_234_567).fill(&mut buf);
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(buf[..8], rng.next_u64().to_le_bytes());
        assert_eq!(buf[8..], rng.next_u64().to_le_bytes()[..4]);
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix64::new(7);
        assert!((0..10_000).all(|_| rng.below(3) < 3));
    }
}
