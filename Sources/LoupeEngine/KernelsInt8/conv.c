// Fused int8 convolution + max pool + requantization (include/loupe_int8.h, "Fused convolution"):
// no im2col matrix and no int32 sums in memory. Each conv output's reduction reads its input window
// straight from the (h, w, c) uint8 image, one kernel row (kw·c contiguous bytes, rounded up to 4)
// at a time; the weights are packed [kh][kwc4 / 4][ocp][4] so that the bytes past kw·c in a row meet
// zero weights. Windows that cross the image border are copied to a small patch first (`fill` for
// the cells outside). The pool × pool sums of one pooled output are max-reduced in registers and
// requantized there (bias, ReLU, rescale, round, clamp) with the same IEEE operations, in the same
// order, as loupe_i8_requantize.
#include "loupe_int8.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma clang fp contract(off)

static inline int32_t load4(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

// MARK: scalar — plain loops over the packed layout (LOUPE_ISA=reference; the tests' reference is in Swift)

void loupe_i8_conv_scalar(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const uint8_t *x,
                          uint8_t *out) {
    const int p = g->pool, ph = g->oh / p, pw = g->ow / p, G = g->kwc4 / 4;
    const long rs = (long)g->w * g->c;
    for (int py = 0; py < ph; py++) {
        for (int px = 0; px < pw; px++) {
            for (int o = 0; o < g->oc; o++) {
                int32_t best = INT32_MIN;
                for (int i = 0; i < p; i++) {
                    for (int j = 0; j < p; j++) {
                        const uint8_t *a = x + (long)(py * p + i) * g->sh * rs + (long)(px * p + j) * g->sw * g->c;
                        int32_t s = 0;
                        for (int kh = 0; kh < g->kh; kh++) {
                            for (int q = 0; q < 4 * G; q++) {
                                s += (int32_t)a[kh * rs + q] * (int32_t)w[((long)(kh * G + q / 4) * g->ocp + o) * 4 + q % 4];
                            }
                        }
                        best = s > best ? s : best;
                    }
                }
                loupe_i8_requantize(1, 1, &best, 1, e->zc + o, e->m + o, e->bias + o, e->relu, e->invScale, e->zero,
                                    out + ((long)py * pw + px) * g->oc + o, 1);
            }
        }
    }
}

void loupe_i8_pad(const uint8_t *x, int h, int w, int c, int padTop, int padLeft, int padBottom, int padRight, uint8_t fill,
                  uint8_t *out) {
    const int W = w + padLeft + padRight;
    const long row = (long)W * c;
    memset(out, fill, (size_t)(row * padTop));
    for (int y = 0; y < h; y++) {
        uint8_t *o = out + (long)(y + padTop) * row;
        memset(o, fill, (size_t)padLeft * c);
        memcpy(o + (long)padLeft * c, x + (long)y * w * c, (size_t)w * c);
        memset(o + (long)(padLeft + w) * c, fill, (size_t)padRight * c);
    }
    memset(out + (long)(h + padTop) * row, fill, (size_t)(row * padBottom));
}

/// offs: the byte offsets of the p·p windows of a pooled output from its first, row by row;
/// goff: the byte offset in a window of each 4-byte group t = kh · kwc4 / 4 + j (kernel row kh).
/// offs: the offsets of the p·p windows of a pooled output from its first, row by row; goff: the offset in a
/// window of each group t = kh · kwc4 / group + j of `group` elements (kernel row kh).
static void windowOffsetsG(const loupe_i8_conv_geometry *g, long rs, long *offs, long *goff, int group) {
    const int p = g->pool, G = g->kwc4 / group;
    const long sc = (long)g->sw * g->c;
    for (int i = 0; i < p; i++) for (int j = 0; j < p; j++) offs[i * p + j] = i * g->sh * rs + j * sc;
    for (int kh = 0; kh < g->kh; kh++) for (int j = 0; j < G; j++) goff[kh * G + j] = kh * rs + j * group;
}

static void windowOffsets(const loupe_i8_conv_geometry *g, long rs, long *offs, long *goff) { windowOffsetsG(g, rs, offs, goff, 4); }

/// The OR of every 4-byte group the 4 windows of a pool-2 block read (window r at base + offs[r], group t at
/// goff[t]): 0 when all their sums are 0, so the block's output is the requantized 0 of each channel without
/// computing (zero pixels of the background, zero activations after ReLU).
static inline __attribute__((always_inline)) uint32_t orWindows(const uint8_t *base, const long *offs, const long *goff, int T) {
    uint32_t any = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < 4; r++) any |= (uint32_t)load4(base + offs[r] + goff[t]);
    return any;
}

/// 1 when the T groups of a window are one per kernel row, stride 1 down (group t of window row i is image row
/// i + t): then the 4 windows of a pool-2 block read (T + 1) rows × 2 columns of groups.
static inline int sharedRows(const loupe_i8_conv_geometry *g, const long *goff, int T) {
    int shared = g->kwc4 == 4 && g->sh == 1 && T == g->kh;
    for (int t = 0; t < T && shared; t++) shared = goff[t] == t * (long)g->w * g->c;
    return shared;
}

/// orWindows for sharedRows geometry: the OR of the (T + 1) × 2 groups (rows rowStep apart, columns sc apart).
static inline __attribute__((always_inline)) uint32_t orRows(const uint8_t *base, int T, long rowStep, long sc) {
    uint32_t any = 0;
    for (int i = 0; i <= T; i++) any |= (uint32_t)load4(base + i * rowStep) | (uint32_t)load4(base + i * rowStep + sc);
    return any;
}

#if defined(__x86_64__)

// Every path walks the same loops: per block of output channels, per pooled output (or per 4
// outputs along x when pool is 1), the windows in groups of R ≤ 4 sharing each weight load, an
// R × C tile of accumulators; the sums are max-reduced over the pool block and requantized in
// registers.

// MARK: AVX-512 VNNI — R windows × C zmm (16 channels each), C ≤ 4

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/// The epilogue of up to 16 channels in registers (loaded once per channel block: the uint8 stores
/// may alias anything, so nothing is re-read from memory inside the loops).
typedef struct Epi512 { __m512i zc; __m512 m, b, inv, zero; __mmask16 mask; int relu; } Epi512;

static inline __attribute__((always_inline)) T512
void store512(__m512i sum, const Epi512 *q, uint8_t *dst) {
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sum, q->zc)), q->m);
    y = _mm512_add_ps(y, q->b);
    if (q->relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
    __m512 t = _mm512_roundscale_ps(_mm512_mul_ps(y, q->inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    t = _mm512_add_ps(t, q->zero);
    // max(t, 0) also maps NaN to 0; the upper clamp is vpmovusdb's unsigned saturation (t ≥ 2^31 converts to
    // 0x80000000, which saturates to 255 as well), the same bytes as min(max(t, 0), 255).
    t = _mm512_max_ps(t, _mm512_setzero_ps());
    _mm_mask_storeu_epi8(dst, q->mask, _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(t)));
}

/// R windows (starting at a[r]) × C zmm of channels over the T = k · kwc4 / 4 groups (group t at
/// byte goff[t] of a window, weights at w + t · step): sums max-reduced into best[c], or, with best
/// null, requantized and stored per window at dst + r · dstStep (pool 1).
static inline __attribute__((always_inline)) T512
void tile512(const int R, const int C, int T, const long *goff, const uint8_t *const *a, const int8_t *w, long step,
             __m512i *best, const Epi512 *q, uint8_t *dst, long dstStep) {
    __m512i s[4][4];
    for (int r = 0; r < R; r++) for (int c = 0; c < C; c++) s[r][c] = _mm512_setzero_si512();
    for (int t = 0; t < T; t++) {
        const int8_t *wk = w + t * step;
        const long off = goff[t];
        __m512i wv[4];
        for (int c = 0; c < C; c++) wv[c] = _mm512_loadu_si512((const void *)(wk + c * 64));
        for (int r = 0; r < R; r++) {
            const __m512i av = _mm512_set1_epi32(load4(a[r] + off));
            for (int c = 0; c < C; c++) s[r][c] = _mm512_dpbusd_epi32(s[r][c], av, wv[c]);
        }
    }
    if (best) {
        for (int r = 0; r < R; r++) for (int c = 0; c < C; c++) best[c] = _mm512_max_epi32(best[c], s[r][c]);
    } else {
        for (int r = 0; r < R; r++) for (int c = 0; c < C; c++) store512(s[r][c], &q[c], dst + r * dstStep + c * 16);
    }
}

/// Pool 2 with C ≤ 2 zmm of channels and T ≤ 4 groups (both compile-time): the C · T weight registers are
/// loaded once; per pooled output, 4 windows × C accumulators, max-reduced and requantized in registers.
static inline __attribute__((always_inline)) T512
void pooled512(const int C, const int T, const loupe_i8_conv_geometry *g, const int8_t *w, const uint8_t *x, uint8_t *out,
               const Epi512 *q, const long *goff, const long *offs, long rowStep, long sc) {
    const int ph = g->oh / 2, pw = g->ow / 2, oc = g->oc;
    const long step = (long)g->ocp * 4;
    __m512i wv[4][2];
    const int shared = sharedRows(g, goff, T);
    for (int t = 0; t < T; t++) for (int c = 0; c < C; c++) wv[t][c] = _mm512_loadu_si512((const void *)(w + t * step + c * 64));
    // The output of a block whose 4 windows read only zero bytes: every sum 0 (background pixels, or zero activations).
    __m128i zeroOut[2];
    for (int c = 0; c < C; c++) {
        uint8_t b[16];
        store512(_mm512_setzero_si512(), &q[c], b);
        zeroOut[c] = _mm_loadu_si128((const __m128i *)b);
    }
    for (int py = 0; py < ph; py++) {
        const uint8_t *rowBase = x + py * 2 * rowStep;
        uint8_t *dst = out + (long)py * pw * oc;
        for (int px = 0; px < pw; px++) {
            const uint8_t *base = rowBase + px * 2 * sc;
            __m512i s[4][2];
            for (int r = 0; r < 4; r++) for (int c = 0; c < C; c++) s[r][c] = _mm512_setzero_si512();
            if (!(shared ? orRows(base, T, rowStep, sc) : orWindows(base, offs, goff, T))) {
                for (int c = 0; c < C; c++) _mm_mask_storeu_epi8(dst + (long)px * oc + c * 16, q[c].mask, zeroOut[c]);
                continue;
            }
            if (shared) {
                // One group per kernel row and stride 1 down: group t of window row i is image row i + t, so the
                // 4 windows' 4·T groups are (T + 1) rows × 2 columns of broadcasts.
                __m512i av[5][2];
                for (int i = 0; i <= T; i++) for (int j = 0; j < 2; j++) av[i][j] = _mm512_set1_epi32(load4(base + i * rowStep + j * sc));
                for (int t = 0; t < T; t++)
                    for (int r = 0; r < 4; r++)
                        for (int c = 0; c < C; c++) s[r][c] = _mm512_dpbusd_epi32(s[r][c], av[(r >> 1) + t][r & 1], wv[t][c]);
            } else {
                for (int t = 0; t < T; t++) {
                    for (int r = 0; r < 4; r++) {
                        const __m512i av = _mm512_set1_epi32(load4(base + offs[r] + goff[t]));
                        for (int c = 0; c < C; c++) s[r][c] = _mm512_dpbusd_epi32(s[r][c], av, wv[t][c]);
                    }
                }
            }
            for (int c = 0; c < C; c++) {
                const __m512i m = _mm512_max_epi32(_mm512_max_epi32(s[0][c], s[1][c]), _mm512_max_epi32(s[2][c], s[3][c]));
                store512(m, &q[c], dst + (long)px * oc + c * 16);
            }
        }
    }
}

static inline __attribute__((always_inline)) T512
void block512(const int C, const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const uint8_t *x,
              uint8_t *out, int o, const long *offs, const long *goff, long rs) {
    const int p = g->pool, ph = g->oh / p, pw = g->ow / p, P = p * p, T = g->kh * g->kwc4 / 4, oc = g->oc, ow = g->ow;
    const long step = (long)g->ocp * 4, sc = (long)g->sw * g->c, rowStep = (long)g->sh * rs;
    w += o * 4;
    Epi512 q[4];
    for (int c = 0; c < C; c++) {
        const int n = oc - o - c * 16;
        q[c].mask = n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
        q[c].zc = _mm512_maskz_loadu_epi32(q[c].mask, e->zc + o + c * 16);
        q[c].m = _mm512_maskz_loadu_ps(q[c].mask, e->m + o + c * 16);
        q[c].b = _mm512_maskz_loadu_ps(q[c].mask, e->bias + o + c * 16);
        q[c].inv = _mm512_set1_ps(e->invScale);
        q[c].zero = _mm512_set1_ps((float)e->zero);
        q[c].relu = e->relu;
    }
    if (p == 1) {
        for (int y = 0; y < g->oh; y++) {
            const uint8_t *row = x + y * rowStep;
            uint8_t *dst = out + (long)y * ow * oc + o;
            int xo = 0;
            for (; xo + 4 <= ow; xo += 4) {
                const uint8_t *a[4] = {row + xo * sc, row + (xo + 1) * sc, row + (xo + 2) * sc, row + (xo + 3) * sc};
                tile512(4, C, T, goff, a, w, step, 0, q, dst + (long)xo * oc, oc);
            }
            for (; xo < ow; xo++) {
                const uint8_t *a[1] = {row + xo * sc};
                tile512(1, C, T, goff, a, w, step, 0, q, dst + (long)xo * oc, oc);
            }
        }
        return;
    }
    if (p == 2 && C <= 2 && T <= 4) {
        // Small kernels (the seed conv: T = 3 groups, 32 channels): every weight in registers for the whole
        // image, the 4 windows of a pooled output as 4 × C independent accumulators.
        switch (T) {
        case 1: pooled512(C, 1, g, w, x, out, q, goff, offs, rowStep, sc); return;
        case 2: pooled512(C, 2, g, w, x, out, q, goff, offs, rowStep, sc); return;
        case 3: pooled512(C, 3, g, w, x, out, q, goff, offs, rowStep, sc); return;
        case 4: pooled512(C, 4, g, w, x, out, q, goff, offs, rowStep, sc); return;
        }
    }
    for (int py = 0; py < ph; py++) {
        for (int px = 0; px < pw; px++) {
            const uint8_t *base = x + py * p * rowStep + px * p * sc;
            __m512i best[4];
            for (int c = 0; c < C; c++) best[c] = _mm512_set1_epi32(INT32_MIN);
            int t = 0;
            for (; t + 4 <= P; t += 4) {
                const uint8_t *a[4] = {base + offs[t], base + offs[t + 1], base + offs[t + 2], base + offs[t + 3]};
                tile512(4, C, T, goff, a, w, step, best, q, 0, 0);
            }
            for (; t < P; t++) {
                const uint8_t *a[1] = {base + offs[t]};
                tile512(1, C, T, goff, a, w, step, best, q, 0, 0);
            }
            uint8_t *dst = out + ((long)py * pw + px) * oc + o;
            for (int c = 0; c < C; c++) store512(best[c], &q[c], dst + c * 16);
        }
    }
}

T512 void loupe_i8_conv_avx512vnni(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const uint8_t *x,
                                   uint8_t *out) {
    long offs[g->pool * g->pool], goff[g->kh * g->kwc4 / 4];
    const long rs = (long)g->w * g->c;
    windowOffsets(g, rs, offs, goff);
    int o = 0;
    for (; o + 64 <= g->ocp; o += 64) block512(4, g, e, w, x, out, o, offs, goff, rs);
    switch ((g->ocp - o) / 16) {
    case 1: block512(1, g, e, w, x, out, o, offs, goff, rs); break;
    case 2: block512(2, g, e, w, x, out, o, offs, goff, rs); break;
    case 3: block512(3, g, e, w, x, out, o, offs, goff, rs); break;
    }
}

// MARK: ymm paths (AVX-VNNI vpdpbusd, AVX2 int16 vpmaddwd) — R windows × 16 channels

#define TVNNI __attribute__((target("avx2,avxvnni")))
#define TAVX2 __attribute__((target("avx2")))

typedef struct { __m256i zc; __m256 m, b, inv, zero; int n, relu; } Epi256;

/// The epilogue constants of channels o … o + n − 1 (n ≤ 8; the rest zero).
static inline __attribute__((always_inline)) TAVX2
void load256(const loupe_i8_epilogue *e, int o, int n, Epi256 *q) {
    int32_t zc[8] = {0}; float m[8] = {0}, b[8] = {0};
    q->n = n < 8 ? n : 8;
    memcpy(zc, e->zc + o, (size_t)q->n * 4); memcpy(m, e->m + o, (size_t)q->n * 4); memcpy(b, e->bias + o, (size_t)q->n * 4);
    q->zc = _mm256_loadu_si256((const __m256i *)zc); q->m = _mm256_loadu_ps(m); q->b = _mm256_loadu_ps(b);
    q->inv = _mm256_set1_ps(e->invScale); q->zero = _mm256_set1_ps((float)e->zero); q->relu = e->relu;
}

/// 8 int32 sums (channels o … o + 7) → requantized uint8 at dst, q->n ≤ 8 of them.
static inline __attribute__((always_inline)) TAVX2
void store256(__m256i sum, const Epi256 *q, uint8_t *dst) {
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sum, q->zc)), q->m);
    y = _mm256_add_ps(y, q->b);
    if (q->relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
    __m256 t = _mm256_round_ps(_mm256_mul_ps(y, q->inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    t = _mm256_add_ps(t, q->zero);
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), _mm256_set1_ps(255.0f));
    const __m256i v = _mm256_cvttps_epi32(t);
    const __m128i v16 = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i v8 = _mm_packus_epi16(v16, v16);
    if (q->n == 8) _mm_storel_epi64((__m128i *)dst, v8);
    else if (q->n > 0) { uint8_t tmp[16]; _mm_storeu_si128((__m128i *)tmp, v8); memcpy(dst, tmp, (size_t)q->n); }
}

/// R windows × 16 channels (two ymm of int32 sums per window) over T groups, as tile512.
static inline __attribute__((always_inline)) TVNNI
void tileVNNI(const int R, int T, const long *goff, const uint8_t *const *a, const int8_t *w, long step, __m256i s[4][2]) {
    for (int r = 0; r < R; r++) { s[r][0] = _mm256_setzero_si256(); s[r][1] = _mm256_setzero_si256(); }
    for (int t = 0; t < T; t++) {
        const int8_t *wk = w + t * step;
        const long off = goff[t];
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)wk), w1 = _mm256_loadu_si256((const __m256i *)(wk + 32));
        for (int r = 0; r < R; r++) {
            const __m256i av = _mm256_set1_epi32(load4(a[r] + off));
            s[r][0] = _mm256_dpbusd_avx_epi32(s[r][0], av, w0);
            s[r][1] = _mm256_dpbusd_avx_epi32(s[r][1], av, w1);
        }
    }
}

// AVX2: a 16-byte unit (4 channels × 4 k) widened to int16, vpmaddwd against the broadcast
// (a0 a1 a2 a3) widened to int16 gives per channel two exact int32 half sums; the halves are added
// once per window (vphaddd + lane permute), as in loupe_i8_gemm_avx2.
static inline __attribute__((always_inline)) TAVX2
void tileAVX2(const int R, int T, const long *goff, const uint8_t *const *a, const int8_t *w, long step, __m256i s[4][2]) {
    __m256i h[4][4];
    for (int r = 0; r < R; r++) for (int u = 0; u < 4; u++) h[r][u] = _mm256_setzero_si256();
    for (int t = 0; t < T; t++) {
        const int8_t *wk = w + t * step;
        const long off = goff[t];
        __m256i wv[4];
        for (int u = 0; u < 4; u++) wv[u] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wk + u * 16)));
        for (int r = 0; r < R; r++) {
            const __m256i av = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(load4(a[r] + off))));
            for (int u = 0; u < 4; u++) h[r][u] = _mm256_add_epi32(h[r][u], _mm256_madd_epi16(av, wv[u]));
        }
    }
    for (int r = 0; r < R; r++) {
        s[r][0] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(h[r][0], h[r][1]), 0xD8);
        s[r][1] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(h[r][2], h[r][3]), 0xD8);
    }
}

// The driver of the ymm paths, per 16-channel block (as block512 with C = 2 ymm). RMAX windows
// share each weight load: 4 for AVX-VNNI, 2 for AVX2 (its 16 half-sum accumulators per 2 windows).
// GROUPS(g, offs, goff) fills the window and group offsets and returns the group count T (at most
// kh · kwc4 / GROUP + kh).
#define YMM_CONV(NAME, TARGET, TILE, RMAX, AT, WT, POOLED, GROUP, GROUPS)                                               \
    TARGET void NAME(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const WT *w0, const AT *x,          \
                     uint8_t *out) {                                                                                    \
        long offs[g->pool * g->pool], goff[g->kh * g->kwc4 / GROUP + g->kh];                                           \
        const long rs = (long)g->w * g->c, sc = (long)g->sw * g->c, step = (long)g->ocp * GROUP;                        \
        const long rowStep = (long)g->sh * rs;                                                                          \
        const int T = GROUPS(g, offs, goff);                                                                            \
        const int p = g->pool, ph = g->oh / p, pw = g->ow / p, P = p * p, oc = g->oc;                                   \
        const int ow = g->ow;                                                                                           \
        __m256i s[4][2];                                                                                                \
        for (int o = 0; o < g->ocp; o += 16) {                                                                          \
            const WT *w = w0 + o * GROUP;                                                                               \
            Epi256 q[2];                                                                                                \
            load256(e, o, oc - o, &q[0]);                                                                               \
            load256(e, o + 8, oc - o - 8 > 0 ? oc - o - 8 : 0, &q[1]);                                                  \
            if (p == 1) {                                                                                               \
                for (int y = 0; y < g->oh; y++) {                                                                       \
                    const AT *row = x + y * rowStep;                                                                    \
                    uint8_t *dst = out + (long)y * ow * oc + o;                                                         \
                    int xo = 0;                                                                                         \
                    for (; xo + RMAX <= ow; xo += RMAX) {                                                               \
                        const AT *a[RMAX];                                                                              \
                        for (int r = 0; r < RMAX; r++) a[r] = row + (xo + r) * sc;                                      \
                        TILE(RMAX, T, goff, a, w, step, s);                                                             \
                        for (int r = 0; r < RMAX; r++) {                                                                \
                            store256(s[r][0], &q[0], dst + (long)(xo + r) * oc);                                        \
                            store256(s[r][1], &q[1], dst + (long)(xo + r) * oc + 8);                                    \
                        }                                                                                               \
                    }                                                                                                   \
                    for (; xo < ow; xo++) {                                                                             \
                        const AT *a[1] = {row + xo * sc};                                                               \
                        TILE(1, T, goff, a, w, step, s);                                                                \
                        store256(s[0][0], &q[0], dst + (long)xo * oc);                                                  \
                        store256(s[0][1], &q[1], dst + (long)xo * oc + 8);                                              \
                    }                                                                                                   \
                }                                                                                                       \
                continue;                                                                                               \
            }                                                                                                           \
            if (POOLED(g, w, x, out + o, q, goff, offs, T)) continue;                                                     \
            for (int py = 0; py < ph; py++) {                                                                           \
                for (int px = 0; px < pw; px++) {                                                                       \
                    const AT *base = x + py * p * rowStep + px * p * sc;                                                \
                    __m256i best0 = _mm256_set1_epi32(INT32_MIN), best1 = best0;                                       \
                    int t = 0;                                                                                          \
                    for (; t + RMAX <= P; t += RMAX) {                                                                  \
                        const AT *a[RMAX];                                                                              \
                        for (int r = 0; r < RMAX; r++) a[r] = base + offs[t + r];                                       \
                        TILE(RMAX, T, goff, a, w, step, s);                                                             \
                        for (int r = 0; r < RMAX; r++) {                                                                \
                            best0 = _mm256_max_epi32(best0, s[r][0]);                                                   \
                            best1 = _mm256_max_epi32(best1, s[r][1]);                                                   \
                        }                                                                                               \
                    }                                                                                                   \
                    for (; t < P; t++) {                                                                                \
                        const AT *a[1] = {base + offs[t]};                                                              \
                        TILE(1, T, goff, a, w, step, s);                                                                \
                        best0 = _mm256_max_epi32(best0, s[0][0]);                                                       \
                        best1 = _mm256_max_epi32(best1, s[0][1]);                                                       \
                    }                                                                                                   \
                    uint8_t *dst = out + ((long)py * pw + px) * oc + o;                                                 \
                    store256(best0, &q[0], dst);                                                                        \
                    store256(best1, &q[1], dst + 8);                                                                    \
                }                                                                                                       \
            }                                                                                                           \
        }                                                                                                               \
    }

/// 16 channels (two sets of 8 sums) requantized into 16 bytes with one pack sequence (q[1] may cover fewer).
static inline __attribute__((always_inline)) TAVX2
__m256 epilogue256(__m256i sum, const Epi256 *q) {
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sum, q->zc)), q->m);
    y = _mm256_add_ps(y, q->b);
    if (q->relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
    __m256 t = _mm256_round_ps(_mm256_mul_ps(y, q->inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    t = _mm256_add_ps(t, q->zero);
    return _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), _mm256_set1_ps(255.0f));
}

/// n ≤ 16 bytes of src to dst (one vector store when n is 16).
static inline __attribute__((always_inline)) TAVX2 void storeBytes(uint8_t *dst, const uint8_t *src, int n) {
    if (n == 16) _mm_storeu_si128((__m128i *)dst, _mm_loadu_si128((const __m128i *)src));
    else memcpy(dst, src, (size_t)n);
}

/// The sums of 16 channels (s0: o … o + 7, s1: o + 8 …) requantized and stored, q[1].n ≤ 8 of the second 8.
static inline __attribute__((always_inline)) TAVX2
void store16(__m256i s0, __m256i s1, const Epi256 *q, uint8_t *dst) {
    if (q[1].n == 8) {
        // (v0 0–3, v1 0–3 | v0 4–7, v1 4–7) → lanes 0 2 1 3 → (v0 | v1) as uint16 → 16 bytes.
        const __m256i v = _mm256_permute4x64_epi64(
            _mm256_packus_epi32(_mm256_cvttps_epi32(epilogue256(s0, &q[0])), _mm256_cvttps_epi32(epilogue256(s1, &q[1]))), 0xD8);
        _mm_storeu_si128((__m128i *)dst, _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
    } else {
        store256(s0, &q[0], dst);
        store256(s1, &q[1], dst + 8);
    }
}

/// AVX-VNNI, pool 2, T ≤ 4 groups (compile-time): the 2 · T weight registers of a 16-channel block loaded once,
/// per pooled output 4 windows × 2 accumulators (15 of the 16 ymm registers).
static inline __attribute__((always_inline)) TVNNI
void pooledVNNIT(const int T, const loupe_i8_conv_geometry *g, const int8_t *w, const uint8_t *x, uint8_t *out, const Epi256 *q,
                 const long *goff, const long *offs) {
    const int ph = g->oh / 2, pw = g->ow / 2, oc = g->oc;
    const long step = (long)g->ocp * 4, rowStep = (long)g->sh * g->w * g->c, sc = (long)g->sw * g->c;
    __m256i wv[4][2];
    for (int t = 0; t < T; t++) for (int c = 0; c < 2; c++) wv[t][c] = _mm256_loadu_si256((const __m256i *)(w + t * step + c * 32));
    // (No zero-block skip here: with 15 of the 16 ymm registers taken, the check cost more than it saved —
    // 1.93 → 2.25 µs per seed image on Zen 5.)
    for (int py = 0; py < ph; py++) {
        for (int px = 0; px < pw; px++) {
            const uint8_t *base = x + py * 2 * rowStep + px * 2 * sc;
            uint8_t *dst = out + ((long)py * pw + px) * oc;
            __m256i s[4][2];
            for (int r = 0; r < 4; r++) for (int c = 0; c < 2; c++) s[r][c] = _mm256_setzero_si256();
            for (int t = 0; t < T; t++) {
                for (int r = 0; r < 4; r++) {
                    const __m256i av = _mm256_set1_epi32(load4(base + offs[r] + goff[t]));
                    for (int c = 0; c < 2; c++) s[r][c] = _mm256_dpbusd_avx_epi32(s[r][c], av, wv[t][c]);
                }
            }
            store16(_mm256_max_epi32(_mm256_max_epi32(s[0][0], s[1][0]), _mm256_max_epi32(s[2][0], s[3][0])),
                    _mm256_max_epi32(_mm256_max_epi32(s[0][1], s[1][1]), _mm256_max_epi32(s[2][1], s[3][1])), q, dst);
        }
    }
}

static TVNNI int pooledVNNI(const loupe_i8_conv_geometry *g, const int8_t *w, const uint8_t *x, uint8_t *out, const Epi256 *q,
                            const long *goff, const long *offs, int T) {
    if (g->pool != 2) return 0;
    switch (T) {
    case 1: pooledVNNIT(1, g, w, x, out, q, goff, offs); return 1;
    case 2: pooledVNNIT(2, g, w, x, out, q, goff, offs); return 1;
    case 3: pooledVNNIT(3, g, w, x, out, q, goff, offs); return 1;
    case 4: pooledVNNIT(4, g, w, x, out, q, goff, offs); return 1;
    default: return 0;
    }
}

#define NO_POOLED(...) 0

/// The plain layout's offsets: groups of `group` elements along each kernel row (kh · kwc4 / group of them).
static int rowGroups(const loupe_i8_conv_geometry *g, long *offs, long *goff, int group) {
    windowOffsetsG(g, (long)g->w * g->c, offs, goff, group);
    return g->kh * g->kwc4 / group;
}
#define ROW_GROUPS4(g, offs, goff) rowGroups(g, offs, goff, 4)
#define ROW_GROUPS2(g, offs, goff) rowGroups(g, offs, goff, 2)

YMM_CONV(loupe_i8_conv_avxvnni, TVNNI, tileVNNI, 4, uint8_t, int8_t, pooledVNNI, 4, ROW_GROUPS4)
YMM_CONV(convAVX2, static TAVX2, tileAVX2, 2, uint8_t, int8_t, NO_POOLED, 4, ROW_GROUPS4)

// AVX2 with both operands widened to int16 once per call (the image, and the packed weights re-laid as
// pairs [kh · kwc4 / 2][ocp][2], when both fit in 96 KB of stack): each step of a window is one 4-byte
// broadcast of two adjacent image elements, and vpmaddwd against 8 channels' weight pairs gives those
// channels' exact int32 partial sums directly — no horizontal add per window (vphaddd is slow).
static inline __attribute__((always_inline)) TAVX2
void tileAVX2p(const int R, int T, const long *goff, const int16_t *const *a, const int16_t *w, long step, __m256i s[4][2]) {
    for (int r = 0; r < R; r++) { s[r][0] = _mm256_setzero_si256(); s[r][1] = _mm256_setzero_si256(); }
    for (int t = 0; t < T; t++) {
        const int16_t *wk = w + t * step;
        const long off = goff[t];
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)wk), w1 = _mm256_loadu_si256((const __m256i *)(wk + 16));
        for (int r = 0; r < R; r++) {
            int32_t v; memcpy(&v, a[r] + off, 4);
            const __m256i av = _mm256_set1_epi32(v);
            s[r][0] = _mm256_add_epi32(s[r][0], _mm256_madd_epi16(av, w0));
            s[r][1] = _mm256_add_epi32(s[r][1], _mm256_madd_epi16(av, w1));
        }
    }
}

/// AVX2 pairs, pool 2, T ≤ 8 steps (compile-time): per pooled output 4 windows × 16 channels in 8
/// accumulators, the weights read from L1 as vpmaddwd memory operands.
static inline __attribute__((always_inline)) TAVX2
void pooledAVX2pT(const int T, const loupe_i8_conv_geometry *g, const int16_t *w, const int16_t *x, uint8_t *out, const Epi256 *q,
                  const long *goff, const long *offs) {
    const int ph = g->oh / 2, pw = g->ow / 2, oc = g->oc;
    const long step = (long)g->ocp * 2, rowStep = (long)g->sh * g->w * g->c, sc = (long)g->sw * g->c;
    uint8_t zeroOut[16];
    store16(_mm256_setzero_si256(), _mm256_setzero_si256(), q, zeroOut);
    for (int py = 0; py < ph; py++) {
        for (int px = 0; px < pw; px++) {
            const int16_t *base = x + py * 2 * rowStep + px * 2 * sc;
            uint8_t *dst = out + ((long)py * pw + px) * oc;
            uint32_t any = 0;
            for (int t = 0; t < T; t++)
                for (int r = 0; r < 4; r++) { uint32_t v; memcpy(&v, base + offs[r] + goff[t], 4); any |= v; }
            if (!any) { storeBytes(dst, zeroOut, q[0].n + q[1].n); continue; }
            __m256i s[4][2];
            for (int r = 0; r < 4; r++) for (int c = 0; c < 2; c++) s[r][c] = _mm256_setzero_si256();
            for (int t = 0; t < T; t++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + t * step)), w1 = _mm256_loadu_si256((const __m256i *)(w + t * step + 16));
                for (int r = 0; r < 4; r++) {
                    int32_t v; memcpy(&v, base + offs[r] + goff[t], 4);
                    const __m256i av = _mm256_set1_epi32(v);
                    s[r][0] = _mm256_add_epi32(s[r][0], _mm256_madd_epi16(av, w0));
                    s[r][1] = _mm256_add_epi32(s[r][1], _mm256_madd_epi16(av, w1));
                }
            }
            const __m256i m0 = _mm256_max_epi32(_mm256_max_epi32(s[0][0], s[1][0]), _mm256_max_epi32(s[2][0], s[3][0]));
            const __m256i m1 = _mm256_max_epi32(_mm256_max_epi32(s[0][1], s[1][1]), _mm256_max_epi32(s[2][1], s[3][1]));
            store16(m0, m1, q, dst);
        }
    }
}

static TAVX2 int pooledAVX2p(const loupe_i8_conv_geometry *g, const int16_t *w, const int16_t *x, uint8_t *out, const Epi256 *q,
                             const long *goff, const long *offs, int T) {
    if (g->pool != 2) return 0;
    switch (T) {
    case 2: pooledAVX2pT(2, g, w, x, out, q, goff, offs); return 1;
    case 3: pooledAVX2pT(3, g, w, x, out, q, goff, offs); return 1;
    case 4: pooledAVX2pT(4, g, w, x, out, q, goff, offs); return 1;
    case 5: pooledAVX2pT(5, g, w, x, out, q, goff, offs); return 1;
    case 6: pooledAVX2pT(6, g, w, x, out, q, goff, offs); return 1;
    case 8: pooledAVX2pT(8, g, w, x, out, q, goff, offs); return 1;
    default: return 0;
    }
}

YMM_CONV(convAVX2p, static TAVX2, tileAVX2p, 4, int16_t, int16_t, pooledAVX2p, 2, ROW_GROUPS2)

// One input channel and an odd kernel width (the seed conv: 1 channel, 3 × 3): each image cell becomes 4 int16,
// an H pair (a[y][x], a[y][x + 1]) and a V pair (a[y][x], a[y + 1][x]) (0 past the image), so a window's kh × kw
// taps take kh · (kw − 1) / 2 H pairs, then the last column in ⌈kh / 2⌉ V pairs (the last one of an odd kh is the
// H pair at that column against weights (w, 0)): 5 vpmaddwd steps for 3 × 3 instead of 6 (pairs of the rows
// padded to 4 bytes), the same exact int32 sums. The geometry the kernels see has c = 4 (the cell).
static int cellGroups(const loupe_i8_conv_geometry *g, long *offs, long *goff) {
    const long rs = (long)g->w * 4;
    windowOffsetsG(g, rs, offs, goff, 2);
    int T = 0;
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j + 1 < g->kw; j += 2) goff[T++] = i * rs + j * 4;
    for (int i = 0; i < g->kh; i += 2) goff[T++] = i * rs + (g->kw - 1) * 4 + (i + 1 < g->kh ? 2 : 0);
    return T;
}

YMM_CONV(convAVX2c, static TAVX2, tileAVX2p, 4, int16_t, int16_t, pooledAVX2p, 2, cellGroups)

/// Cells of a 3 × 3 kernel (T = 5 steps), pool 2, stride 1 (the seed conv): per pooled output every 16-channel
/// block in turn, so the block's zero check is made once for all channels and on the uint8 image (the 4 × 4 patch
/// its 4 windows read: 4 loads, not 4 · T of the cells), and the window and step offsets are held in registers
/// (the generic kernel reloads them from its offset arrays: with them, the broadcasts and the check it made ≈ 2.3
/// loads per vpmaddwd, past the ≈ 2 vector loads a cycle the core does). img is the uint8 image the cells were made
/// from, rows imgRow bytes apart, readable 4 bytes from every patch's start.
static TAVX2 void pooledCells3x3(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int16_t *w, const int16_t *x,
                                 const uint8_t *img, long imgRow, uint8_t *out) {
    long offs[4], goff[3 * 4 / 2 + 3];
    (void)cellGroups(g, offs, goff);
    const int ph = g->oh / 2, pw = g->ow / 2, oc = g->oc, blocks = g->ocp / 16;
    const long step = (long)g->ocp * 2, rowStep = (long)g->w * 4;
    Epi256 q[blocks][2];
    uint8_t zeroOut[g->ocp];
    for (int b = 0; b < blocks; b++) {
        const int o = b * 16;
        load256(e, o, oc - o, &q[b][0]);
        load256(e, o + 8, oc - o - 8 > 0 ? oc - o - 8 : 0, &q[b][1]);
        store16(_mm256_setzero_si256(), _mm256_setzero_si256(), q[b], zeroOut + o);
    }
    const long o1 = offs[1], o2 = offs[2], o3 = offs[3];
    const long g0 = goff[0], g1 = goff[1], g2 = goff[2], g3 = goff[3], g4 = goff[4];
    for (int py = 0; py < ph; py++) {
        for (int px = 0; px < pw; px++) {
            uint8_t *dst = out + ((long)py * pw + px) * oc;
            const uint8_t *patch = img + 2 * py * imgRow + 2 * px;
            if (!((uint32_t)load4(patch) | (uint32_t)load4(patch + imgRow) | (uint32_t)load4(patch + 2 * imgRow) |
                  (uint32_t)load4(patch + 3 * imgRow))) {
                memcpy(dst, zeroOut, (size_t)oc);
                continue;
            }
            const int16_t *a0 = x + py * 2 * rowStep + px * 2 * 4 + offs[0];
            const int16_t *a[4] = {a0, a0 + o1 - offs[0], a0 + o2 - offs[0], a0 + o3 - offs[0]};
            const long gs[5] = {g0, g1, g2, g3, g4};
            for (int b = 0; b < blocks; b++) {
                const int16_t *wb = w + b * 32;
                __m256i s[4][2];
                for (int r = 0; r < 4; r++) for (int c = 0; c < 2; c++) s[r][c] = _mm256_setzero_si256();
                for (int t = 0; t < 5; t++) {
                    const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wb + t * step));
                    const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wb + t * step + 16));
                    for (int r = 0; r < 4; r++) {
                        int32_t v; memcpy(&v, a[r] + gs[t], 4);
                        const __m256i av = _mm256_set1_epi32(v);
                        s[r][0] = _mm256_add_epi32(s[r][0], _mm256_madd_epi16(av, w0));
                        s[r][1] = _mm256_add_epi32(s[r][1], _mm256_madd_epi16(av, w1));
                    }
                }
                const __m256i m0 = _mm256_max_epi32(_mm256_max_epi32(s[0][0], s[1][0]), _mm256_max_epi32(s[2][0], s[3][0]));
                const __m256i m1 = _mm256_max_epi32(_mm256_max_epi32(s[0][1], s[1][1]), _mm256_max_epi32(s[2][1], s[3][1]));
                store16(m0, m1, q[b], dst + b * 16);
            }
        }
    }
}

/// The cells of a (h, w) uint8 image (1 channel) into cells (h · w · 4 int16 + 32 of slack written).
static TAVX2 void makeCells(const uint8_t *x, int h, int w, int16_t *cells, uint8_t *padded) {
    // A copy with a zero column on the right and a zero row below (and slack), so every load reads zeros past the image.
    const int W = w + 1;
    // Only the zero column, the zero row and the slack are set: the copy writes every other byte.
    for (int y = 0; y < h; y++) { memcpy(padded + (long)y * W, x + (long)y * w, (size_t)w); padded[(long)y * W + w] = 0; }
    memset(padded + (long)h * W, 0, (size_t)(W + 32));
    for (int y = 0; y < h; y++) {
        const uint8_t *r0 = padded + (long)y * W, *r1 = r0 + W;
        int16_t *c = cells + (long)y * w * 4;
        // Chunks of 8 cells; the last chunk of a row writes up to 7 cells into the next row, rewritten after.
        for (int x0 = 0; x0 < w; x0 += 8) {
            const __m128i a = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(r0 + x0)));
            const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(r0 + x0 + 1)));
            const __m128i d = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(r1 + x0)));
            const __m128i hl = _mm_unpacklo_epi16(a, b), hh = _mm_unpackhi_epi16(a, b);
            const __m128i vl = _mm_unpacklo_epi16(a, d), vh = _mm_unpackhi_epi16(a, d);
            _mm_storeu_si128((__m128i *)(c + x0 * 4), _mm_unpacklo_epi32(hl, vl));
            _mm_storeu_si128((__m128i *)(c + x0 * 4 + 8), _mm_unpackhi_epi32(hl, vl));
            _mm_storeu_si128((__m128i *)(c + x0 * 4 + 16), _mm_unpacklo_epi32(hh, vh));
            _mm_storeu_si128((__m128i *)(c + x0 * 4 + 24), _mm_unpackhi_epi32(hh, vh));
        }
    }
}

/// Whether the AVX2 kernel takes g through the cell layout (convAVX2c), the int16 pair layout (convAVX2p), or
/// neither (convAVX2 on the packed bytes): 2, 1 or 0, from what its stack copies need.
static int avx2Layout(const loupe_i8_conv_geometry *g) {
    const long weights = (long)g->kh * g->kwc4 * g->ocp, image = (long)g->h * g->w * g->c + 3;
    if (g->c == 1 && g->kw % 2 == 1 && (weights + image * 4 + 64) * 2 + image + 64 <= 96 * 1024) return 2;
    return (weights + image) * 2 > 96 * 1024 ? 0 : 1;
}

long loupe_i8_conv_avx2_weights(const loupe_i8_conv_geometry *g, const int8_t *w, int16_t *w16) {
    const int G = g->kwc4 / 4, ocp = g->ocp, layout = avx2Layout(g);
    const long weights = (long)g->kh * g->kwc4 * ocp;
    if (layout == 0) return 0;
    if (layout == 2) {
        // The cell layout (convAVX2c): pairs [T][ocp][2], H pairs row by row, then the last column's V pairs.
        const long count = weights + (long)g->kh * ocp * 2;
        if (!w16) return count;
        long t = 0;
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j + 1 < g->kw; j += 2, t++)
                for (int o = 0; o < ocp; o++)
                    for (int l = 0; l < 2; l++) w16[(t * ocp + o) * 2 + l] = w[((long)(i * G + (j + l) / 4) * ocp + o) * 4 + (j + l) % 4];
        const int j = g->kw - 1;
        for (int i = 0; i < g->kh; i += 2, t++)
            for (int o = 0; o < ocp; o++) {
                w16[(t * ocp + o) * 2] = w[((long)(i * G + j / 4) * ocp + o) * 4 + j % 4];
                w16[(t * ocp + o) * 2 + 1] = i + 1 < g->kh ? w[((long)((i + 1) * G + j / 4) * ocp + o) * 4 + j % 4] : 0;
            }
        return count;
    }
    if (!w16) return weights;
    // Byte j of kernel row kh, channel o: packed at group kh · G + j / 4, lane j % 4; here at pair kh · 2G + j / 2, lane j % 2.
    for (int kh = 0; kh < g->kh; kh++)
        for (int j = 0; j < g->kwc4; j++)
            for (int o = 0; o < ocp; o++)
                w16[((long)(kh * 2 * G + j / 2) * ocp + o) * 2 + j % 2] = w[((long)(kh * G + j / 4) * ocp + o) * 4 + j % 4];
    return weights;
}

TAVX2 void loupe_i8_conv_avx2(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const int16_t *prepared,
                              const uint8_t *x, uint8_t *out) {
    const long image = (long)g->h * g->w * g->c + 3;
    const int layout = avx2Layout(g);
    if (layout == 0) { convAVX2(g, e, w, x, out); return; }
    // The widened weights: made once by the caller (loupe_i8_conv_avx2_weights), or here on the stack.
    const long count = prepared ? 1 : loupe_i8_conv_avx2_weights(g, w, 0);
    int16_t scratch[count];
    const int16_t *w16 = prepared;
    if (!w16) { loupe_i8_conv_avx2_weights(g, w, scratch); w16 = scratch; }
    if (layout == 2) {
        int16_t cells[image * 4 + 64];
        uint8_t padded[(g->w + 1) * (g->h + 1) + 32];
        makeCells(x, g->h, g->w, cells, padded);
        loupe_i8_conv_geometry cg = *g;
        cg.c = 4;
        if (g->kh == 3 && g->kw == 3 && g->pool == 2 && g->sh == 1 && g->sw == 1) pooledCells3x3(&cg, e, w16, cells, padded, g->w + 1, out);
        else convAVX2c(&cg, e, w16, cells, out);
        return;
    }
    int16_t x16[image];
    // With the 3 elements past the image: pairs read there meet zero weights (as in the uint8 image).
    for (long i = 0; i < image; i++) x16[i] = x[i];
    convAVX2p(g, e, w16, x16, out);
}

#else
void loupe_i8_conv_avx512vnni(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const uint8_t *x,
                              uint8_t *out) { loupe_i8_conv_scalar(g, e, w, x, out); }
void loupe_i8_conv_avxvnni(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const uint8_t *x,
                           uint8_t *out) { loupe_i8_conv_scalar(g, e, w, x, out); }
void loupe_i8_conv_avx2(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const int16_t *prepared,
                        const uint8_t *x, uint8_t *out) { (void)prepared; loupe_i8_conv_scalar(g, e, w, x, out); }
long loupe_i8_conv_avx2_weights(const loupe_i8_conv_geometry *g, const int8_t *w, int16_t *w16) {
    (void)g; (void)w; (void)w16; return 0;
}
#endif
