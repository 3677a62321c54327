#ifndef LOUPE_INT8_H
#define LOUPE_INT8_H
// Int8 inference kernels (docs/model-format.md §12, docs/performance.md "Int8").
//
// The GEMM every int8 conv and dense layer runs:
//   acc (n, ocp) int32 = A (n, kp) uint8 · W (kp, ocp) int8, exact (no saturation on any path),
// with W packed as [kp / 4][ocp][4] (four consecutive k of one output channel in one 32-bit lane,
// the vpdpbusd operand layout), kp % 4 == 0, ocp % 16 == 0, padding rows/columns of W zero.
// Every path computes the same int32 sums bit for bit; the paths differ only in instructions:
//   avx512vnni  vpdpbusd zmm: 64 u8×s8 products per instruction
//   avxvnni     vpdpbusd ymm (VEX, AVX-VNNI); a lone row (batch 1) over its nonzero 4-byte groups only
//   avx2        vpmaddubsw (u8 × s8, adjacent products summed in int16 with saturation) + vpmaddwd against ones,
//               over each row's nonzero 4-byte groups only. Saturation cannot happen: a group whose two bytes of a
//               pair sum past 256 (|a0·w0 + a1·w1| ≤ (a0 + a1) · 128) is entered as two groups, min(a, 128) and
//               a − min(a, 128), which sum to the same products. The fused conv widens the image and the weights
//               to int16 once per call and uses vpmaddwd (exact int32 pair sums).
//   scalar      plain C loops over the packed layout (non-x86, LOUPE_ISA=reference)
#include <stdint.h>

/// 1 if the CPU and OS support AVX-512 F/BW/VL + VNNI; 0 otherwise.
int loupe_cpu_has_avx512vnni(void);
/// 1 if the CPU supports AVX-VNNI (VEX-encoded vpdpbusd on ymm) and AVX2; 0 otherwise.
int loupe_cpu_has_avxvnni(void);

void loupe_i8_gemm_avx512vnni(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc);
void loupe_i8_gemm_avxvnni(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc);
void loupe_i8_gemm_avx2(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc);
void loupe_i8_gemm_scalar(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc);

/// x (n, count) float → q = clamp(rint(x · invScale) + zero, 0, 255), round half to even.
void loupe_i8_quantize(int count, const float *x, float invScale, int zero, uint8_t *q);

/// acc rows (rows, ldc) int32 → y = float(acc − zc[o]) · m[o] + bias[o] (no fused multiply-add),
/// ReLU if relu, then q = clamp(rint(y · invScale) + zero, 0, 255) into out (rows, ldo), o < oc.
void loupe_i8_requantize(int rows, int oc, const int32_t *acc, int ldc, const int32_t *zc, const float *m, const float *bias,
                         int relu, float invScale, int zero, uint8_t *out, int ldo);
/// The same up to ReLU, written as float32 (the last layer's logits).
void loupe_i8_dequantize(int rows, int oc, const int32_t *acc, int ldc, const int32_t *zc, const float *m, const float *bias,
                         int relu, float *out, int ldo);

/// One (h, w, c) uint8 image → im2col rows (oh·ow, kp), columns in (kh, kw, c) order, window of
/// output (y, x) at (y·stride − padTop, x·stride − padLeft); cells outside the image read `fill`
/// (the input zero point), columns k·k·c ..< kp are 0.
void loupe_i8_im2col(const uint8_t *x, int h, int w, int c, int k, int stride, int padTop, int padLeft, int oh, int ow,
                     uint8_t fill, uint8_t *col, int kp);

/// Max over non-overlapping pool×pool windows of acc (oh, ow, ldc) int32 → out (oh/pool, ow/pool, ldc).
void loupe_i8_maxpool_i32(const int32_t *acc, int oh, int ow, int ldc, int pool, int32_t *out);
/// Max pooling over uint8 (h, w, c) → (oh, ow, c): kh×kw windows at (y·stride − padTop, x·stride − padLeft),
/// clipped to the image (padded cells never win).
void loupe_i8_maxpool_u8(const uint8_t *x, int h, int w, int c, int kh, int kw, int stride, int padTop, int padLeft,
                         int oh, int ow, uint8_t *out);

// MARK: Fused convolution (conv.c)

/// One conv layer's geometry for the fused kernel: input (h, w, c) uint8 already padded (every
/// window inside it), kh×kw windows at (y·sh, x·sw) for outputs (oh, ow), max pool over
/// non-overlapping pool×pool blocks of outputs (pool 1 = none, pool ≤ 15) → (oh / pool, ow / pool, oc) uint8.
typedef struct {
    int h, w, c, kh, kw, sh, sw, oh, ow, pool;
    /// Bytes of one kernel row in the packed weight: kw·c rounded up to 4.
    int kwc4;
    int oc, ocp;
} loupe_i8_conv_geometry;

/// Requantization of int32 sums s of output channel o (as loupe_i8_requantize):
/// y = float(s − zc[o]) · m[o] + bias[o] (no fused multiply-add), ReLU if relu,
/// q = clamp(rint(y · invScale) + zero, 0, 255).
typedef struct {
    const int32_t *zc;
    const float *m;
    const float *bias;
    int relu;
    float invScale;
    int zero;
} loupe_i8_epilogue;

/// out (oh/pool, ow/pool, oc) uint8 = requantize(max over each pool×pool block of conv sums), where the
/// sum of output (y, x, o) = Σ_r<kh Σ_j<kw·c x[y·sh + r][x·sw·c + j] · W[r][j][o] with W packed
/// [kh][kwc4 / 4][ocp][4] (byte j of kernel row r at group r·kwc4/4 + j/4, lane j % 4; bytes j ≥ kw·c
/// zero). Window rows are read straight from x in 4-byte groups, so the 3 bytes after the image must
/// be readable (they meet zero weights). Every path gives the same bytes as loupe_i8_conv_scalar.
void loupe_i8_conv_avx512vnni(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const uint8_t *x,
                              uint8_t *out);
void loupe_i8_conv_avxvnni(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const uint8_t *x,
                           uint8_t *out);
/// The AVX2 kernel widens the weights to int16 pairs; `prepared` is that copy made once by
/// loupe_i8_conv_avx2_weights for this geometry (the layout depends on it), or NULL: made per call.
void loupe_i8_conv_avx2(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const int16_t *prepared,
                        const uint8_t *x, uint8_t *out);
/// The AVX2 kernel's int16 weights for geometry g into w16 (NULL: only counts); returns the int16 count,
/// 0 when that kernel reads the packed bytes directly (pass NULL then).
long loupe_i8_conv_avx2_weights(const loupe_i8_conv_geometry *g, const int8_t *w, int16_t *w16);
void loupe_i8_conv_scalar(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const uint8_t *x,
                          uint8_t *out);

/// x (h, w, c) → out (h + padTop + padBottom, w + padLeft + padRight, c), the border cells `fill`.
void loupe_i8_pad(const uint8_t *x, int h, int w, int c, int padTop, int padLeft, int padBottom, int padRight, uint8_t fill,
                  uint8_t *out);
#endif
