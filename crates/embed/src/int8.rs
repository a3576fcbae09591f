//! Dense layers in int8 with AVX-512 VNNI: `vpdpbusd` does 64 multiply-adds per instruction, four
//! times an f32 FMA. Written by hand because the `gemm` crate has no integer kernels and no crate
//! on crates.io offers a u8 × i8 product with VNNI.
//!
//! Weights are quantized once per output column (symmetric i8); activations per row at every call
//! (u8 with an offset of 128, the operand type `vpdpbusd` takes), as ONNX Runtime's dynamic
//! quantization of this model does.

use std::arch::x86_64::*;

/// Columns per panel: one 512-bit register of i32 accumulators.
const PANEL: usize = 16;
/// Rows per register tile; with four panels that is 24 accumulators of the 32 registers.
const ROWS: usize = 6;
/// Panels per register tile.
const PANELS: usize = 4;

/// Whether this CPU runs the int8 kernel.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// A `[n_in, n_out]` weight matrix in i8, packed panel by panel: for each group of four inputs,
/// the 16 columns' four bytes side by side, as `vpdpbusd` reads them.
pub(crate) struct Int8Weights {
    packed: Vec<i8>,
    scales: Vec<f32>,
    /// `128 · Σ_k w[k, n]`: what the u8 offset of the activations adds to every dot product.
    offsets: Vec<i32>,
    n_in: usize,
    n_out: usize,
}

/// Activations quantized per row to u8 (value / scale + 128).
pub(crate) struct Int8Rows {
    data: Vec<u8>,
    scales: Vec<f32>,
    n_in: usize,
}

impl Int8Weights {
    /// Whether a layer of this shape fits the kernel's layout.
    pub(crate) fn fits(n_in: usize, n_out: usize) -> bool {
        n_in.is_multiple_of(4) && n_out.is_multiple_of(PANEL)
    }

    /// Quantize input-major f32 weights; the shape must [`fit`](Self::fits).
    pub(crate) fn new(w: &[f32], n_in: usize, n_out: usize) -> Int8Weights {
        assert!(Self::fits(n_in, n_out) && w.len() == n_in * n_out);
        let mut scales = vec![0.0f32; n_out];
        for row in w.chunks_exact(n_out) {
            for (s, v) in scales.iter_mut().zip(row) {
                *s = s.max(v.abs());
            }
        }
        scales.iter_mut().for_each(|s| *s = scale_for(*s));
        let mut packed = vec![0i8; n_in * n_out];
        let mut offsets = vec![0i32; n_out];
        for (k, row) in w.chunks_exact(n_out).enumerate() {
            for (n, v) in row.iter().enumerate() {
                let q = (v / scales[n]).round().clamp(-127.0, 127.0) as i8;
                let (panel, col) = (n / PANEL, n % PANEL);
                packed[panel * n_in * PANEL + (k / 4) * 4 * PANEL + col * 4 + k % 4] = q;
                offsets[n] += 128 * i32::from(q);
            }
        }
        Int8Weights {
            packed,
            scales,
            offsets,
            n_in,
            n_out,
        }
    }

    /// `out[r, from..from + cols] = x[r] · w[.., from..from + cols] + bias`, for every row of `x`;
    /// `out` is row-major with `n_out` columns. `from` and `cols` must be multiples of 16.
    ///
    /// # Safety
    /// The CPU must be [`available`]; `out` must point to `x`'s row count × `n_out` writable f32s
    /// that no one else touches in those columns during the call.
    pub(crate) unsafe fn matmul(
        &self,
        x: &Int8Rows,
        bias: &[f32],
        out: *mut f32,
        from: usize,
        cols: usize,
    ) {
        assert!(x.n_in == self.n_in && bias.len() == self.n_out);
        assert!(
            from.is_multiple_of(PANEL) && cols.is_multiple_of(PANEL) && from + cols <= self.n_out
        );
        // SAFETY: forwarded from the caller's contract; the asserts above keep every index in range.
        unsafe { self.matmul_vnni(x, bias, out, from / PANEL, cols / PANEL) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn matmul_vnni(
        &self,
        x: &Int8Rows,
        bias: &[f32],
        out: *mut f32,
        first_panel: usize,
        panels: usize,
    ) {
        let rows = x.scales.len();
        // Column tiles outside, row tiles inside: a tile's weight panels stay in cache while
        // every row passes over them.
        let mut panel = first_panel;
        while panel < first_panel + panels {
            let width = PANELS.min(first_panel + panels - panel);
            let mut row = 0;
            while row < rows {
                let height = ROWS.min(rows - row);
                let tile = Tile {
                    w: self,
                    x,
                    bias,
                    out,
                    row,
                    panel,
                };
                // SAFETY: every tile lies within `rows` × the caller's columns.
                unsafe {
                    if width == PANELS {
                        tile.run_rows::<PANELS>(height);
                    } else {
                        for p in panel..panel + width {
                            Tile { panel: p, ..tile }.run_rows::<1>(height);
                        }
                    }
                }
                row += height;
            }
            panel += width;
        }
    }
}

impl Int8Rows {
    /// Quantize `rows` rows of `n_in` values; a row's scale is its largest magnitude / 127.
    pub(crate) fn new(x: &[f32], n_in: usize) -> Int8Rows {
        let mut data = Vec::with_capacity(x.len());
        let mut scales = Vec::with_capacity(x.len() / n_in);
        for row in x.chunks_exact(n_in) {
            let scale = scale_for(row.iter().fold(0.0f32, |m, v| m.max(v.abs())));
            let inv = 1.0 / scale;
            // Adding 128.5 and truncating rounds to the nearest step without a libm call.
            data.extend(
                row.iter()
                    .map(|v| ((v * inv).clamp(-127.0, 127.0) + 128.5) as u8),
            );
            scales.push(scale);
        }
        Int8Rows { data, scales, n_in }
    }
}

/// The step that maps `max_abs` onto 127 (1 for an all-zero vector, which any step represents).
fn scale_for(max_abs: f32) -> f32 {
    if max_abs > 0.0 {
        max_abs / 127.0
    } else {
        1.0
    }
}

/// One `R` rows × `P` panels block of the output.
#[derive(Clone, Copy)]
struct Tile<'a> {
    w: &'a Int8Weights,
    x: &'a Int8Rows,
    bias: &'a [f32],
    out: *mut f32,
    row: usize,
    panel: usize,
}

impl Tile<'_> {
    /// Run the `height`-row kernel (1..=ROWS) over `P` panels.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn run_rows<const P: usize>(self, height: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match height {
                6 => self.run::<6, P>(),
                5 => self.run::<5, P>(),
                4 => self.run::<4, P>(),
                3 => self.run::<3, P>(),
                2 => self.run::<2, P>(),
                _ => self.run::<1, P>(),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn run<const R: usize, const P: usize>(self) {
        let n_in = self.w.n_in;
        let panel_len = n_in * PANEL;
        let mut acc = [[_mm512_setzero_si512(); P]; R];
        // SAFETY (whole body): rows `row..row + R` exist in `x` and `out`; panels
        // `panel..panel + P` exist in the packed weights and the bias/scale/offset vectors.
        unsafe {
            let w = self.w.packed.as_ptr().add(self.panel * panel_len);
            let x = self.x.data.as_ptr().add(self.row * n_in);
            for k in (0..n_in).step_by(4) {
                let mut b = [_mm512_setzero_si512(); P];
                for (p, b) in b.iter_mut().enumerate() {
                    *b = _mm512_loadu_si512(w.add(p * panel_len + k * PANEL).cast());
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = _mm512_set1_epi32(x.add(r * n_in + k).cast::<i32>().read_unaligned());
                    for (acc, b) in acc.iter_mut().zip(&b) {
                        *acc = _mm512_dpbusd_epi32(*acc, a, *b);
                    }
                }
            }
            let n_out = self.w.n_out;
            for p in 0..P {
                let col = (self.panel + p) * PANEL;
                let offset = _mm512_loadu_si512(self.w.offsets.as_ptr().add(col).cast());
                let w_scale = _mm512_loadu_ps(self.w.scales.as_ptr().add(col));
                let bias = _mm512_loadu_ps(self.bias.as_ptr().add(col));
                for (r, acc) in acc.iter().enumerate() {
                    let row = self.row + r;
                    let dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[p], offset));
                    let scale = _mm512_mul_ps(w_scale, _mm512_set1_ps(self.x.scales[row]));
                    let y = _mm512_fmadd_ps(dot, scale, bias);
                    _mm512_storeu_ps(self.out.add(row * n_out + col), y);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], b: &[f32], n_in: usize, n_out: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for row in x.chunks_exact(n_in) {
            for n in 0..n_out {
                out.push(b[n] + (0..n_in).map(|k| row[k] * w[k * n_out + n]).sum::<f32>());
            }
        }
        out
    }

    /// A deterministic spread of values in -1..1 (no random crate needed for this).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn matches_f32_product_within_quantization_error_for_every_tile_shape() {
        if !available() {
            return;
        }
        let (n_in, n_out) = (64, 112); // 7 panels: one tile of 4, then 3 single panels
        let w = values(n_in * n_out, 7);
        let b = values(n_out, 11);
        for rows in [1, 2, 5, 6, 7, 13] {
            let x = values(rows * n_in, rows as u32);
            let q = Int8Weights::new(&w, n_in, n_out);
            let mut out = vec![f32::NAN; rows * n_out];
            // Two calls over column halves, as the encoder runs them on two cores.
            unsafe {
                q.matmul(&Int8Rows::new(&x, n_in), &b, out.as_mut_ptr(), 0, 48);
                q.matmul(&Int8Rows::new(&x, n_in), &b, out.as_mut_ptr(), 48, 64);
            }
            let want = reference(&x, &w, &b, n_in, n_out);
            for (i, (got, want)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (got - want).abs() < 0.1,
                    "rows={rows} element {i}: int8 {got} vs f32 {want}"
                );
            }
        }
    }

    #[test]
    fn zero_rows_and_columns_stay_exact() {
        if !available() {
            return;
        }
        let (n_in, n_out) = (8, 16);
        let w = vec![0.0; n_in * n_out];
        let b: Vec<f32> = (0..n_out).map(|i| i as f32).collect();
        let x = vec![0.0; 2 * n_in];
        let mut out = vec![f32::NAN; 2 * n_out];
        unsafe {
            Int8Weights::new(&w, n_in, n_out).matmul(
                &Int8Rows::new(&x, n_in),
                &b,
                out.as_mut_ptr(),
                0,
                n_out,
            )
        };
        assert_eq!(&out[..n_out], &b[..]);
        assert_eq!(&out[n_out..], &b[..]);
    }
}
