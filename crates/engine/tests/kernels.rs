//! The vendored llama.cpp adds batched x86 kernels for Q4_1 and Q8_0 weights
//! (`vendor/llama-cpp-sys-2/SWITCHYARD.md`). They must compute what llama.cpp's own dot
//! products compute: same logits up to rounding, same greedy tokens, for a prompt (the batched
//! kernel, plus the single-row one for the leftover rows) and for one decoded token.
//!
//! The reference is the same GGUF loaded with `use_extra_bufts = false` (no repacking), which
//! the safe `llama-cpp-2` API does not expose: hence the raw calls.

mod common;

use std::ffi::CString;

use llama_cpp_sys_2 as sys;

use common::smollm2_path;

const PROMPT: &str = "The train left the station at nine and reached the coast two hours later, \
                      where the passengers walked to the harbour to watch the boats come in.";

/// Logits of every prompt position, then of one more decoded token.
fn logits(repack: bool) -> Vec<Vec<f32>> {
    let path = CString::new(smollm2_path().to_str().unwrap()).unwrap();
    // SAFETY: plain llama.cpp C API use: every pointer is checked for null, every buffer is
    // sized from llama.cpp's own counts, and each object is freed once, after its last use.
    unsafe {
        sys::llama_backend_init();
        let mut mparams = sys::llama_model_default_params();
        mparams.use_extra_bufts = repack;
        let model = sys::llama_model_load_from_file(path.as_ptr(), mparams);
        assert!(
            !model.is_null(),
            "SmolLM2 loads (run scripts/fetch-models.sh if it is missing)"
        );
        let vocab = sys::llama_model_get_vocab(model);
        let n_vocab = sys::llama_vocab_n_tokens(vocab) as usize;
        let mut tokens = vec![0; 256];
        let n = sys::llama_tokenize(
            vocab,
            PROMPT.as_ptr().cast(),
            PROMPT.len() as i32,
            tokens.as_mut_ptr(),
            tokens.len() as i32,
            true,
            false,
        );
        assert!(n > 0);
        tokens.truncate(n as usize);
        assert!(
            !tokens.len().is_multiple_of(4),
            "the prompt must leave rows for the single-row kernel"
        );

        let mut cparams = sys::llama_context_default_params();
        cparams.n_ctx = 256;
        cparams.n_threads = 2;
        cparams.n_threads_batch = 2;
        let ctx = sys::llama_init_from_model(model, cparams);
        assert!(!ctx.is_null());
        let batch = sys::llama_batch_init(256, 0, 1);
        let fill = |batch: &mut sys::llama_batch, tokens: &[i32], first_pos: i32| {
            for (i, &t) in tokens.iter().enumerate() {
                *batch.token.add(i) = t;
                *batch.pos.add(i) = first_pos + i as i32;
                *batch.n_seq_id.add(i) = 1;
                *(*batch.seq_id.add(i)) = 0;
                *batch.logits.add(i) = 1;
            }
            batch.n_tokens = tokens.len() as i32;
        };
        let read = |ctx, i: i32| {
            std::slice::from_raw_parts(sys::llama_get_logits_ith(ctx, i), n_vocab).to_vec()
        };

        let mut batch = batch;
        fill(&mut batch, &tokens, 0);
        assert_eq!(sys::llama_decode(ctx, batch), 0);
        let mut out: Vec<Vec<f32>> = (0..tokens.len() as i32).map(|i| read(ctx, i)).collect();
        fill(&mut batch, &[13], tokens.len() as i32);
        assert_eq!(sys::llama_decode(ctx, batch), 0);
        out.push(read(ctx, 0));

        sys::llama_batch_free(batch);
        sys::llama_free(ctx);
        sys::llama_model_free(model);
        out
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}

#[test]
fn repacked_q4_1_and_q8_0_kernels_match_llama_cpp_reference_dot_products() {
    let got = logits(true);
    let want = logits(false);
    assert_eq!(got.len(), want.len());

    // Both paths quantize activations to 8 bits, in different orders of summation, so logits
    // are not bit-identical. Measured on this model and prompt (x86-64 with AVX2): logits
    // differ by 1.27 at most, at most 6.2 % of the position's largest logit, and the greedy
    // token agrees at all 30 positions. The bounds sit just above that: 7 %, and every greedy token the same. A wrong
    // kernel moves logits by the whole scale.
    let mut largest_gap = 0.0f32;
    let mut same_greedy = 0;
    for (position, (g, w)) in got.iter().zip(&want).enumerate() {
        let scale = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let gap = g
            .iter()
            .zip(w)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            gap <= 0.07 * scale,
            "position {position}: logits differ by {gap} (largest logit {scale})"
        );
        same_greedy += usize::from(argmax(g) == argmax(w));
        largest_gap = largest_gap.max(gap);
    }
    assert_eq!(
        same_greedy,
        got.len(),
        "greedy tokens agree at {same_greedy} of {} positions",
        got.len()
    );
    // Bit-identical logits would mean both models ran the same kernels.
    assert!(
        largest_gap > 0.0,
        "the repacked kernels did not run (is this CPU without AVX2?)"
    );
}
