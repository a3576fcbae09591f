//! Log-probabilities with OpenAI's meaning: the model's own distribution over the whole
//! vocabulary (raw logits, before temperature, top-p or penalties reshape it for sampling).

/// Log-probability of `token` and the `top` most likely tokens, best first.
pub(crate) fn logprobs(logits: &[f32], token: usize, top: usize) -> (f32, Vec<(usize, f32)>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    let log_z = max + sum.ln();
    let chosen = logits.get(token).map_or(f32::NEG_INFINITY, |&l| l - log_z);
    let best = top_k(logits, top)
        .into_iter()
        .map(|(id, l)| (id, l - log_z))
        .collect();
    (chosen, best)
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
    fn no_alternatives_when_none_requested() {
        let (lp, top) = logprobs(&[0.0, 0.0], 0, 0);
        assert!((lp - 0.5_f32.ln()).abs() < 1e-6);
        assert!(top.is_empty());
    }
}
