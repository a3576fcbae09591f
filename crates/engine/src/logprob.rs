//! Log-probabilities with OpenAI's meaning: the model's own distribution over the whole
//! vocabulary (raw logits, before temperature, top-p or penalties reshape it for sampling).

/// Log-probability of `token` and the `top` most likely tokens, best first.
pub(crate) fn logprobs(logits: &[f32], token: usize, top: usize) -> (f32, Vec<(usize, f32)>) {
    let log_z = log_sum_exp(logits);
    let chosen = logits.get(token).map_or(f32::NEG_INFINITY, |&l| l - log_z);
    let best = top_k(logits, top)
        .into_iter()
        .map(|(id, l)| (id, l - log_z))
        .collect();
    (chosen, best)
}

/// The token llama.cpp's greedy sampler picks: the first one with the largest logit. Greedy
/// requests without penalties take this instead of a sampler, which would copy the whole
/// vocabulary into a candidate array for every token.
pub(crate) fn greedy(logits: &[f32]) -> usize {
    let max = lane_max(logits);
    logits.iter().position(|&l| l == max).unwrap_or(0)
}

/// Lanes of the vector loops below: wide enough for AVX, written so the compiler vectorizes.
const LANES: usize = 8;

/// ln Σ exp(l). Runs once per generated token over the whole vocabulary (50k to 250k logits),
/// so it is written to vectorize; `f32::exp` is a scalar libm call and cost about 2 % of a
/// 135M model's token time.
fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = lane_max(logits);
    let chunks = logits.chunks_exact(LANES);
    let tail = chunks.remainder();
    if !max.is_finite() {
        return max;
    }
    let mut sums = [0.0f32; LANES];
    for c in chunks {
        for (s, &l) in sums.iter_mut().zip(c) {
            *s += exp_nonpositive(l - max);
        }
    }
    let sum: f32 = sums.iter().sum::<f32>() + tail.iter().map(|&l| (l - max).exp()).sum::<f32>();
    max + sum.ln()
}

/// The largest logit (NaNs ignored), in a loop the compiler vectorizes.
fn lane_max(logits: &[f32]) -> f32 {
    let chunks = logits.chunks_exact(LANES);
    let tail = chunks.remainder();
    let mut lanes = [f32::NEG_INFINITY; LANES];
    for c in chunks {
        for (m, &l) in lanes.iter_mut().zip(c) {
            *m = if l > *m { l } else { *m };
        }
    }
    lanes
        .iter()
        .chain(tail)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

/// e^x for x ≤ 0 with a relative error near 1e-7: x = k·ln2 + r, e^x = 2^k · e^r, with e^r
/// from a degree-6 polynomial on |r| ≤ ln2/2. Branch-free so that it vectorizes.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and removing 1.5·2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    // Below this e^x is under f32's normal range; probabilities that small do not matter.
    let x = x.max(-87.0);
    let shifted = x * LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // The rounded k also sits in the low mantissa bits of `shifted`: reading it there avoids a
    // float-to-int conversion, which does not vectorize.
    let k_int = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    f32::from_bits(k_int.wrapping_add(127) << 23) * p
}

/// The `k` largest logits, best first; ties keep the lower token id first. `k` is at most 20,
/// so one pass with a small sorted buffer beats sorting the whole vocabulary.
fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (id, &l) in logits.iter().enumerate() {
        if best.len() == k && best.last().is_some_and(|&(_, worst)| l <= worst) {
            continue;
        }
        let at = best.partition_point(|&(_, b)| b >= l);
        best.insert(at, (id, l));
        best.truncate(k);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_of_chosen_and_sorted_alternatives() {
        let logits = [1.0_f32, 3.0, 2.0, 3.0];
        let (lp, top) = logprobs(&logits, 2, 3);
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        assert!((lp - (2.0_f32.exp() / z).ln()).abs() < 1e-5);
        let ids: Vec<usize> = top.iter().map(|&(id, _)| id).collect();
        assert_eq!(ids, vec![1, 3, 2]);
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
        assert!(top.iter().all(|&(_, l)| l <= 0.0));
    }

    #[test]
    fn fast_exp_matches_the_library() {
        for i in 0..=10_000 {
            let x = -(i as f32) / 100.0;
            let (fast, exact) = (exp_nonpositive(x), x.exp());
            assert!(
                (fast - exact).abs() <= exact * 1e-6 + 1e-37,
                "{x}: {fast} vs {exact}"
            );
        }
    }

    #[test]
    fn log_sum_exp_matches_the_naive_sum() {
        let logits: Vec<f32> = (0..1001)
            .map(|i| ((i * 7919) % 1000) as f32 / 37.0)
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let naive = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
        assert!((log_sum_exp(&logits) - naive).abs() < 1e-4);
    }

    #[test]
    fn greedy_takes_the_first_of_equal_maxima() {
        let mut logits = vec![0.5_f32; 37];
        logits[9] = 2.0;
        logits[30] = 2.0;
        assert_eq!(greedy(&logits), 9);
        assert_eq!(greedy(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
        assert_eq!(greedy(&[1.0, 3.0]), 1);
    }

    #[test]
    fn no_alternatives_when_none_requested() {
        let (lp, top) = logprobs(&[0.0, 0.0], 0, 0);
        assert!((lp - 0.5_f32.ln()).abs() < 1e-6);
        assert!(top.is_empty());
    }
}
