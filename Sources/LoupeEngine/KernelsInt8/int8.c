// Int8 GEMM, requantization, im2col and pooling. Layouts and the contract every path keeps are in
// include/loupe_int8.h. Each ISA path is compiled with a target attribute and only called after the
// cpuid checks below said yes (LoupeEngine/ISA.swift picks one at start-up).
#include "loupe_int8.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

// y = acc · m + bias must round twice (multiply, then add), as docs/model-format.md §12 specifies,
// so that every path and an independent reader agree bit for bit: no fused multiply-add.
#pragma clang fp contract(off)

int loupe_cpu_has_avx512vnni(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

int loupe_cpu_has_avxvnni(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) return 0;  // also means the OS saves ymm state
    unsigned eax, ebx, ecx, edx;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    return (eax >> 4) & 1;  // CPUID.(EAX=7, ECX=1):EAX[4] = AVX-VNNI
#else
    return 0;
#endif
}

static inline int32_t load4(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

// MARK: scalar (the packed-layout plain loop; the tests' reference works on the unpacked weights)

void loupe_i8_gemm_scalar(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    for (int r = 0; r < n; r++) {
        for (int o = 0; o < ocp; o++) {
            int32_t s = 0;
            for (int k = 0; k < kp; k++) s += (int32_t)a[(long)r * lda + k] * (int32_t)w[(long)(k >> 2) * ocp * 4 + o * 4 + (k & 3)];
            acc[(long)r * ldc + o] = s;
        }
    }
}

#if defined(__x86_64__)

// One row (batch 1) over its nonzero 4-byte groups only, defined after the AVX2 section's compaction.
static void sparseRowVNNI(int kp, int ocp, const uint8_t *a, const int8_t *w, int32_t *acc);

// MARK: AVX-512 VNNI — R rows × C zmm columns (16 output channels each) per tile

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/// R rows × C zmm of channels over the k4 groups k4a ..< k4b, the sums started at zero (first) or at acc.
static inline __attribute__((always_inline)) T512
void tile512(const int R, const int C, int k4a, int k4b, int first, const uint8_t *a, int lda, const int8_t *w, int ocp, int32_t *acc,
             int ldc) {
    __m512i s[4][8];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) s[r][c] = first ? _mm512_setzero_si512() : _mm512_loadu_si512((const void *)(acc + (long)r * ldc + c * 16));
    const long step = (long)ocp * 4;
    for (int k4 = k4a; k4 < k4b; k4++) {
        const int8_t *wk = w + k4 * step;
        __m512i wv[8];
        for (int c = 0; c < C; c++) wv[c] = _mm512_loadu_si512((const void *)(wk + c * 64));
        for (int r = 0; r < R; r++) {
            const __m512i av = _mm512_set1_epi32(load4(a + (long)r * lda + k4 * 4));
            for (int c = 0; c < C; c++) s[r][c] = _mm512_dpbusd_epi32(s[r][c], av, wv[c]);
        }
    }
    for (int r = 0; r < R; r++) for (int c = 0; c < C; c++) _mm512_storeu_si512((void *)(acc + (long)r * ldc + c * 16), s[r][c]);
}

/// The rows of a that are not in a 4-row tile (1, 2 or 3 of them): tiles with at least 8 accumulators, since
/// vpdpbusd's latency needs that many independent sums to keep both pipes busy (1 × 4 ran at half speed).
static inline __attribute__((always_inline)) T512
void rest512(int rows, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    int o = 0;
    switch (rows) {
    case 1:
        // All of k, the weights streamed in order (skipping the zero groups, as AVX-VNNI does, was slower here:
        // 3.5 → 4.3 µs for the seed dense layer — the gaps break the sequential weight stream from L2).
        for (; o + 128 <= ocp; o += 128) tile512(1, 8, 0, kp / 4, 1, a, lda, w + o * 4, ocp, acc + o, ldc);
        for (; o + 64 <= ocp; o += 64) tile512(1, 4, 0, kp / 4, 1, a, lda, w + o * 4, ocp, acc + o, ldc);
        for (; o < ocp; o += 16) tile512(1, 1, 0, kp / 4, 1, a, lda, w + o * 4, ocp, acc + o, ldc);
        break;
    case 2:
        for (; o + 128 <= ocp; o += 128) tile512(2, 8, 0, kp / 4, 1, a, lda, w + o * 4, ocp, acc + o, ldc);
        for (; o + 64 <= ocp; o += 64) tile512(2, 4, 0, kp / 4, 1, a, lda, w + o * 4, ocp, acc + o, ldc);
        for (; o < ocp; o += 16) tile512(2, 1, 0, kp / 4, 1, a, lda, w + o * 4, ocp, acc + o, ldc);
        break;
    case 3:
        for (; o + 64 <= ocp; o += 64) tile512(3, 4, 0, kp / 4, 1, a, lda, w + o * 4, ocp, acc + o, ldc);
        for (; o + 32 <= ocp; o += 32) tile512(3, 2, 0, kp / 4, 1, a, lda, w + o * 4, ocp, acc + o, ldc);
        for (; o < ocp; o += 16) tile512(3, 1, 0, kp / 4, 1, a, lda, w + o * 4, ocp, acc + o, ldc);
        break;
    }
}

/// k4 groups per block of the 4-row tiles: the weight slice a block sweeps over every row (64 groups × 64 channels,
/// 16 KB) stays in L1 (measured on Zen 5, 240 × 5408 × 128: 510 GMAC/s against 395 over all of k at once;
/// 32 and 48 groups as fast, 96 at 460).
enum { K4_BLOCK = 64 };

T512 void loupe_i8_gemm_avx512vnni(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    // 4-row tiles, k in blocks, then the last n % 4 rows together (one row: batch-1 dense, 8 independent accumulators).
    const int full = n / 4 * 4, k4s = kp / 4;
    for (int k0 = 0; k0 < k4s; k0 += K4_BLOCK) {
        const int k1 = k4s - k0 < K4_BLOCK ? k4s : k0 + K4_BLOCK, first = k0 == 0;
        int o = 0;
        for (; o + 64 <= ocp; o += 64)
            for (int r = 0; r < full; r += 4)
                tile512(4, 4, k0, k1, first, a + (long)r * lda, lda, w + o * 4, ocp, acc + (long)r * ldc + o, ldc);
        if (o + 32 <= ocp) {
            // 32 channels: one pass over the rows with two columns, not two passes.
            for (int r = 0; r < full; r += 4)
                tile512(4, 2, k0, k1, first, a + (long)r * lda, lda, w + o * 4, ocp, acc + (long)r * ldc + o, ldc);
            o += 32;
        }
        for (; o < ocp; o += 16)
            for (int r = 0; r < full; r += 4)
                tile512(4, 1, k0, k1, first, a + (long)r * lda, lda, w + o * 4, ocp, acc + (long)r * ldc + o, ldc);
    }
    if (n > full) rest512(n - full, kp, ocp, a + (long)full * lda, lda, w, acc + (long)full * ldc, ldc);
}

// MARK: AVX-VNNI — R rows × C ymm columns (8 output channels each)
// 6 rows × 2 columns: 12 accumulators + 2 weight registers + 1 broadcast fit the 16 ymm registers
// (3 × 4 needed 17 and spilled: 50–120 GMAC/s against 257 for 6 × 2 on the 5408 → 128 layer at batch 256).

#define TVNNI __attribute__((target("avx2,avxvnni")))

static inline __attribute__((always_inline)) TVNNI
void tileVNNI(const int R, const int C, int k4a, int k4b, int first, const uint8_t *a, int lda, const int8_t *w, int ocp, int32_t *acc,
              int ldc) {
    __m256i s[6][8];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) s[r][c] = first ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)(acc + (long)r * ldc + c * 8));
    const long step = (long)ocp * 4;
    for (int k4 = k4a; k4 < k4b; k4++) {
        const int8_t *wk = w + k4 * step;
        __m256i wv[8];
        for (int c = 0; c < C; c++) wv[c] = _mm256_loadu_si256((const __m256i *)(wk + c * 32));
        for (int r = 0; r < R; r++) {
            const __m256i av = _mm256_set1_epi32(load4(a + (long)r * lda + k4 * 4));
            for (int c = 0; c < C; c++) s[r][c] = _mm256_dpbusd_avx_epi32(s[r][c], av, wv[c]);
        }
    }
    for (int r = 0; r < R; r++) for (int c = 0; c < C; c++) _mm256_storeu_si256((__m256i *)(acc + (long)r * ldc + c * 8), s[r][c]);
}

TVNNI void loupe_i8_gemm_avxvnni(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    // 6-row tiles, k in blocks as on AVX-512; the remaining rows in tiles of at least 8 accumulators (vpdpbusd's
    // latency): 4 × 2, 2 × 4, and one row (batch-1 dense) 1 × 8.
    const int full = n / 6 * 6, k4s = kp / 4, K = k4s;
    for (int k0 = 0; k0 < k4s; k0 += K4_BLOCK) {
        const int k1 = k4s - k0 < K4_BLOCK ? k4s : k0 + K4_BLOCK, first = k0 == 0;
        for (int o = 0; o < ocp; o += 16)
            for (int r = 0; r < full; r += 6)
                tileVNNI(6, 2, k0, k1, first, a + (long)r * lda, lda, w + o * 4, ocp, acc + (long)r * ldc + o, ldc);
    }
    int r = full;
    if (n - r >= 4) {
        for (int o = 0; o < ocp; o += 16) tileVNNI(4, 2, 0, K, 1, a + (long)r * lda, lda, w + o * 4, ocp, acc + (long)r * ldc + o, ldc);
        r += 4;
    }
    if (n - r >= 2) {
        int o = 0;
        for (; o + 32 <= ocp; o += 32) tileVNNI(2, 4, 0, K, 1, a + (long)r * lda, lda, w + o * 4, ocp, acc + (long)r * ldc + o, ldc);
        for (; o < ocp; o += 16) tileVNNI(2, 2, 0, K, 1, a + (long)r * lda, lda, w + o * 4, ocp, acc + (long)r * ldc + o, ldc);
        r += 2;
    }
    if (r < n) sparseRowVNNI(kp, ocp, a + (long)r * lda, w, acc + (long)r * ldc);
}

// MARK: AVX2 — vpmaddubsw over each row's nonzero 4-byte groups, saturation ruled out per group
// vpmaddubsw (u8 × s8, two adjacent products summed in int16 with saturation) is exact when the two activation bytes
// of a pair sum to at most 256: |a0·w0 + a1·w1| ≤ (a0 + a1) · 128 ≤ 32,768, and with w ≥ −128, w ≤ 127 the sum lies
// in [−32,768, 32,512] — inside int16. vpmaddwd against ones then adds a channel's two pair sums into exact int32
// (the vpdpbusd layout: W packed [kp / 4][ocp][4], 32 multiply-adds per vpmaddubsw). Each row's 4-byte groups are
// compacted to the nonzero ones (nonzero8: a zero group adds nothing whatever the zero point, whose term is the
// separate correction); a group with a pair summing past 256 (rare after ReLU: 99 % of the seed network's dense-input
// bytes are below 128) is entered twice, as min(a, 128) and a − min(a, 128) byte by byte (pairs ≤ 256 and ≤ 254),
// which sum to the same products — so every sum equals the plain loop's, for any uint8 activations and int8
// weights. One row at a time against 64 channels (8 accumulators), k in blocks of Q_KB groups (the block's weights
// for 64 channels, 16 KB, stay in L1 while Q_RC rows sweep them; 32 groups were ≈ 4 % slower, 128 ≈ 8 %). Per 32 multiply-adds: 1 vpmaddubsw + 1 vpmaddwd on
// the two multiply pipes, 1 weight load (its 32 bytes whole). Measured on Zen 5 (seed dense layer 5408 → 128, the
// test images' real activations, µs per image, alternated): batch 256 7.3–7.8 with nibbles (every group, 2
// vpmaddubsw + 1/4 vpmaddwd per 32) → 6.2–6.5 with vpmaddwd on nonzero int16 pairs (vpmovsxbw per weight use) →
// 4.9–5.2 here; batch 1 7.3–7.7 → 6.2–6.4 → 5.9. The nonzero groups are 72 % of the seed dense layer's (pairs:
// 50–56 %), but each costs half the pipe slots.

#define TAVX2 __attribute__((target("avx2,bmi2,popcnt")))

/// The nonzero 32-bit lanes of v stored to the front of values, their indices (base + lane) to indices, with one vpermd
/// each (the lane list from the 8-bit mask by pdep/pext), stored whole (8 entries: callers keep slack); returns the count.
/// nonzeroGroups: the nonzero 4-byte groups of `src` (kb bytes), their bytes packed into packed, their indices into rows;
/// returns the count.
static inline __attribute__((always_inline)) TAVX2
int nonzero8(__m256i v, int base, void *values, int32_t *indices) {
    const unsigned m = 0xFFu & ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, _mm256_setzero_si256())));
    const uint64_t bytes = _pdep_u64(m, 0x0101010101010101ull) * 0xFF;
    const __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)_pext_u64(0x0706050403020100ull, bytes)));
    _mm256_storeu_si256((__m256i *)values, _mm256_permutevar8x32_epi32(v, perm));
    const __m256i index = _mm256_add_epi32(_mm256_set1_epi32(base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_storeu_si256((__m256i *)indices, _mm256_permutevar8x32_epi32(index, perm));
    return __builtin_popcount(m);
}

static inline __attribute__((always_inline)) TAVX2
int nonzeroGroups(const uint8_t *src, int kb, uint8_t *packed, int32_t *rows) {
    int count = 0, t = 0;
    for (; t + 8 <= kb / 4; t += 8)
        count += nonzero8(_mm256_loadu_si256((const __m256i *)(src + t * 4)), t, packed + count * 4, rows + count);
    for (; t < kb / 4; t++) {
        const int32_t v = load4(src + t * 4);
        memcpy(packed + count * 4, &v, 4);
        rows[count] = t;
        count += v != 0;
    }
    return count;
}

/// The nonzero groups of `count` 4-byte groups at src, 8 at a time as nonzero8 (values, index base + position), a group
/// whose byte pairs could saturate vpmaddubsw entered as its two halves (above); returns the entries written (at most
/// 2 · count, + 8 of slack past them).
static inline __attribute__((always_inline)) TAVX2
int nonzeroQuads(const uint8_t *src, int count, uint32_t *vals, int32_t *idx, int base) {
    const __m256i ones8 = _mm256_set1_epi8(1), limit = _mm256_set1_epi16(256), c128 = _mm256_set1_epi8((char)128);
    int n = 0, t = 0;
    for (; t + 8 <= count; t += 8) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(src + t * 4));
        // Pair sums a0 + a1 (≤ 510) as int16: vpmaddubsw against ones is exact.
        if (__builtin_expect(_mm256_movemask_epi8(_mm256_cmpgt_epi16(_mm256_maddubs_epi16(v, ones8), limit)) != 0, 0)) {
            n += nonzero8(_mm256_min_epu8(v, c128), base + t, vals + n, idx + n);
            n += nonzero8(_mm256_subs_epu8(v, c128), base + t, vals + n, idx + n);
        } else {
            n += nonzero8(v, base + t, vals + n, idx + n);
        }
    }
    for (; t < count; t++) {
        uint8_t b[4], lo[4], hi[4];
        memcpy(b, src + t * 4, 4);
        const int split = b[0] + b[1] > 256 || b[2] + b[3] > 256;
        for (int i = 0; i < 4; i++) { lo[i] = split && b[i] > 128 ? 128 : b[i]; hi[i] = (uint8_t)(b[i] - lo[i]); }
        uint32_t v;
        memcpy(&v, lo, 4); vals[n] = v; idx[n] = base + t; n += v != 0;
        memcpy(&v, hi, 4); vals[n] = v; idx[n] = base + t; n += v != 0;
    }
    return n;
}

/// One row's `count` listed groups against C ymm (8 channels each) of W (group stride `step` bytes), added to acc.
static inline __attribute__((always_inline)) TAVX2
void quadRow(const int C, const int P, int count, const uint32_t *vals, const int32_t *idx, const int8_t *w, long step, int32_t *acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s[8];
    for (int c = 0; c < C; c++) s[c] = _mm256_loadu_si256((const __m256i *)(acc + c * 8));
    for (int t = 0; t < count; t++) {
        const int8_t *wk = w + idx[t] * step;
        if (P) {
            // A lone row (batch 1): its weight rows come from L2 in the list's irregular order; ask for the rows
            // P entries ahead (C · 32 bytes each) so that the loads below find them in L1.
            const int8_t *ahead = w + idx[t + P < count ? t + P : t] * step;
            for (int c = 0; c < C; c += 2) _mm_prefetch((const char *)(ahead + c * 32), _MM_HINT_T0);
        }
        const __m256i b = _mm256_set1_epi32((int)vals[t]);
        for (int c = 0; c < C; c++)
            s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(_mm256_maddubs_epi16(b, _mm256_loadu_si256((const __m256i *)(wk + c * 32))), ones));
    }
    for (int c = 0; c < C; c++) _mm256_storeu_si256((__m256i *)(acc + c * 8), s[c]);
}

/// Groups per super-block (every row's lists at once), per L1 block, and rows per chunk.
enum { Q_SB = 128, Q_KB = 64, Q_NB = Q_SB / Q_KB, Q_RC = 16, Q_PF = 6 };

TAVX2 void loupe_i8_gemm_avx2(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    uint32_t vals[Q_RC][2 * Q_SB + 8];
    int32_t idx[Q_RC][2 * Q_SB + 8], bound[Q_RC][Q_NB + 1];
    const int groups = kp / 4;
    const long step = (long)ocp * 4;
    for (int r0 = 0; r0 < n; r0 += Q_RC) {
        const int rn = n - r0 < Q_RC ? n - r0 : Q_RC;
        for (int r = 0; r < rn; r++) memset(acc + (long)(r0 + r) * ldc, 0, (size_t)ocp * 4);
        for (int g0 = 0; g0 < groups; g0 += Q_SB) {
            const int sb = groups - g0 < Q_SB ? groups - g0 : Q_SB;
            // Each row's nonzero groups of this super-block, with where each block's entries start.
            for (int r = 0; r < rn; r++) {
                int count = 0;
                for (int b = 0; b < Q_NB; b++) {
                    bound[r][b] = count;
                    const int q0 = b * Q_KB, q1 = q0 + Q_KB < sb ? q0 + Q_KB : sb;
                    if (q1 > q0) count += nonzeroQuads(a + (long)(r0 + r) * lda + (long)(g0 + q0) * 4, q1 - q0, vals[r] + count, idx[r] + count, q0);
                }
                bound[r][Q_NB] = count;
            }
            const int8_t *wb = w + (long)g0 * step;
            // A lone row sweeps the whole super-block per channel tile (its weights stream from L2 whatever the order).
            const int blocks = rn == 1 ? 1 : Q_NB, span = rn == 1 ? Q_NB : 1;
            for (int b = 0; b < blocks; b++) {
                int o = 0;
                for (; o + 64 <= ocp; o += 64)
                    if (rn == 1) quadRow(8, Q_PF, bound[0][Q_NB], vals[0], idx[0], wb + o * 4, step, acc + (long)r0 * ldc + o);
                    else for (int r = 0; r < rn; r++) {
                        const int t0 = bound[r][b * span], t1 = bound[r][(b + 1) * span];
                        quadRow(8, 0, t1 - t0, vals[r] + t0, idx[r] + t0, wb + o * 4, step, acc + (long)(r0 + r) * ldc + o);
                    }
                for (; o < ocp; o += 16)
                    for (int r = 0; r < rn; r++) {
                        const int t0 = bound[r][b * span], t1 = bound[r][(b + 1) * span];
                        quadRow(2, 0, t1 - t0, vals[r] + t0, idx[r] + t0, wb + o * 4, step, acc + (long)(r0 + r) * ldc + o);
                    }
            }
        }
    }
}

// MARK: one row over its nonzero groups (AVX-VNNI, batch 1)
// The AVX2 path's compaction (nonzeroGroups) feeds vpdpbusd tiles of 1 row × C ymm: all-zero 4-byte groups add
// nothing (28 % of the seed network's dense input groups on its test images). Seed dense layer at batch 1 on
// Zen 5: 6.1 → 5.5 µs (on AVX-512 the same was slower: see rest512).

/// Sums of one row over `count` groups (bytes in packed, weight group rows[t] of w), C registers of channels, added to acc.
static inline __attribute__((always_inline)) TVNNI
void sparseTileVNNI(const int C, int count, const uint8_t *packed, const int32_t *rows, const int8_t *w, long step, int32_t *acc) {
    __m256i s[8];
    for (int c = 0; c < C; c++) s[c] = _mm256_loadu_si256((const __m256i *)(acc + c * 8));
    for (int t = 0; t < count; t++) {
        const int8_t *wk = w + rows[t] * step;
        const __m256i av = _mm256_set1_epi32(load4(packed + t * 4));
        for (int c = 0; c < C; c++) s[c] = _mm256_dpbusd_avx_epi32(s[c], av, _mm256_loadu_si256((const __m256i *)(wk + c * 32)));
    }
    for (int c = 0; c < C; c++) _mm256_storeu_si256((__m256i *)(acc + c * 8), s[c]);
}

enum { SPARSE_KB = 2048 };  // k columns compacted at a time

static TVNNI void sparseRowVNNI(int kp, int ocp, const uint8_t *a, const int8_t *w, int32_t *acc) {
    uint8_t packed[SPARSE_KB + 32];
    int32_t rows[SPARSE_KB / 4 + 8];
    const long step = (long)ocp * 4;
    memset(acc, 0, (size_t)ocp * 4);
    for (int k0 = 0; k0 < kp; k0 += SPARSE_KB) {
        const int kb = kp - k0 < SPARSE_KB ? kp - k0 : SPARSE_KB, count = nonzeroGroups(a + k0, kb, packed, rows);
        const int8_t *wk = w + (long)(k0 / 4) * step;
        int o = 0;
        for (; o + 64 <= ocp; o += 64) sparseTileVNNI(8, count, packed, rows, wk + o * 4, step, acc + o);
        for (; o < ocp; o += 16) sparseTileVNNI(2, count, packed, rows, wk + o * 4, step, acc + o);
    }
}

#else
void loupe_i8_gemm_avx512vnni(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    loupe_i8_gemm_scalar(n, kp, ocp, a, lda, w, acc, ldc);
}
void loupe_i8_gemm_avxvnni(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    loupe_i8_gemm_scalar(n, kp, ocp, a, lda, w, acc, ldc);
}
void loupe_i8_gemm_avx2(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    loupe_i8_gemm_scalar(n, kp, ocp, a, lda, w, acc, ldc);
}
#endif

// MARK: quantization steps (plain C; the compiler vectorises them — same IEEE operations either way)

static inline uint8_t quantizeOne(float y, float invScale, float zero) {
    float t = nearbyintf(y * invScale) + zero;   // round half to even (default rounding mode)
    t = fminf(fmaxf(t, 0.0f), 255.0f);           // NaN → 0
    return (uint8_t)t;
}

void loupe_i8_quantize(int count, const float *x, float invScale, int zero, uint8_t *q) {
    const float z = (float)zero;
    int i = 0;
#if defined(__AVX2__)
    // 32 at a time, the same operations as quantizeOne (clang keeps fminf/fmaxf scalar: their NaN rule): vroundps in
    // the current rounding mode, then max(t, 0) — vmaxps returns its second operand for a NaN t, so NaN → 0 — and
    // min(t, 255) on a t that is no longer NaN. Seed network batch 1: one 784-pixel image per call.
    const __m256 inv = _mm256_set1_ps(invScale), zv = _mm256_set1_ps(z), lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
    for (; i + 32 <= count; i += 32) {
        __m256i v[4];
        for (int j = 0; j < 4; j++) {
            __m256 t = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + j * 8), inv), _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
            t = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, zv), lo), hi);
            v[j] = _mm256_cvttps_epi32(t);
        }
        // Pack 32 int32 (0…255) to bytes; the in-lane packs interleave 128-bit halves, vpermd puts them back in order.
        const __m256i w = _mm256_packus_epi16(_mm256_packus_epi32(v[0], v[1]), _mm256_packus_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
#endif
    for (; i < count; i++) q[i] = quantizeOne(x[i], invScale, z);
}

void loupe_i8_requantize(int rows, int oc, const int32_t *acc, int ldc, const int32_t *zc, const float *m, const float *bias,
                         int relu, float invScale, int zero, uint8_t *out, int ldo) {
    const float z = (float)zero;
    for (int r = 0; r < rows; r++) {
        const int32_t *s = acc + (long)r * ldc;
        uint8_t *q = out + (long)r * ldo;
        for (int o = 0; o < oc; o++) {
            float y = (float)(s[o] - zc[o]) * m[o];
            y = y + bias[o];
            if (relu) y = fmaxf(y, 0.0f);
            q[o] = quantizeOne(y, invScale, z);
        }
    }
}

void loupe_i8_dequantize(int rows, int oc, const int32_t *acc, int ldc, const int32_t *zc, const float *m, const float *bias,
                         int relu, float *out, int ldo) {
    for (int r = 0; r < rows; r++) {
        const int32_t *s = acc + (long)r * ldc;
        float *y = out + (long)r * ldo;
        for (int o = 0; o < oc; o++) {
            float v = (float)(s[o] - zc[o]) * m[o];
            v = v + bias[o];
            if (relu) v = fmaxf(v, 0.0f);
            y[o] = v;
        }
    }
}

void loupe_i8_im2col(const uint8_t *x, int h, int w, int c, int k, int stride, int padTop, int padLeft, int oh, int ow,
                     uint8_t fill, uint8_t *col, int kp) {
    const int kk = k * k * c, kc = k * c;
    for (int y = 0; y < oh; y++) {
        const int top = y * stride - padTop;
        for (int xo = 0; xo < ow; xo++) {
            uint8_t *row = col + (long)(y * ow + xo) * kp;
            const int left = xo * stride - padLeft;
            if (top >= 0 && top + k <= h && left >= 0 && left + k <= w) {
                // The whole window is inside the image: k runs of k·c contiguous bytes, no per-cell checks.
                for (int kh = 0; kh < k; kh++) {
                    const uint8_t *src = x + ((long)(top + kh) * w + left) * c;
                    uint8_t *dst = row + kh * kc;
                    for (int j = 0; j < kc; j++) dst[j] = src[j];
                }
                for (int p = kk; p < kp; p++) row[p] = 0;
                continue;
            }
            int j = 0;
            for (int kh = 0; kh < k; kh++) {
                const int ih = y * stride + kh - padTop;
                for (int kw = 0; kw < k; kw++) {
                    const int iw = xo * stride + kw - padLeft;
                    // Byte loops, not memcpy: c is 1 or a few channels here, and a call per cell dominated.
                    if (ih < 0 || ih >= h || iw < 0 || iw >= w) {
                        for (int ch = 0; ch < c; ch++) row[j + ch] = fill;
                    } else {
                        const uint8_t *src = x + ((long)ih * w + iw) * c;
                        for (int ch = 0; ch < c; ch++) row[j + ch] = src[ch];
                    }
                    j += c;
                }
            }
            for (int p = kk; p < kp; p++) row[p] = 0;
        }
    }
}

void loupe_i8_maxpool_i32(const int32_t *acc, int oh, int ow, int ldc, int pool, int32_t *out) {
    const int ph = oh / pool, pw = ow / pool;
    for (int y = 0; y < ph; y++) {
        for (int x = 0; x < pw; x++) {
            int32_t *o = out + (long)(y * pw + x) * ldc;
            const int32_t *first = acc + (long)(y * pool * ow + x * pool) * ldc;
            for (int f = 0; f < ldc; f++) o[f] = first[f];
            for (int i = 0; i < pool; i++) {
                for (int j = 0; j < pool; j++) {
                    const int32_t *s = acc + (long)((y * pool + i) * ow + x * pool + j) * ldc;
                    for (int f = 0; f < ldc; f++) o[f] = s[f] > o[f] ? s[f] : o[f];
                }
            }
        }
    }
}

void loupe_i8_maxpool_u8(const uint8_t *x, int h, int w, int c, int kh, int kw, int stride, int padTop, int padLeft,
                         int oh, int ow, uint8_t *out) {
    for (int y = 0; y < oh; y++) {
        const int top = y * stride - padTop;
        const int h0 = top < 0 ? 0 : top, h1 = top + kh < h ? top + kh : h;
        for (int xo = 0; xo < ow; xo++) {
            const int left = xo * stride - padLeft;
            const int w0 = left < 0 ? 0 : left, w1 = left + kw < w ? left + kw : w;
            uint8_t *o = out + (long)(y * ow + xo) * c;
            memset(o, 0, (size_t)c);
            for (int i = h0; i < h1; i++) {
                for (int j = w0; j < w1; j++) {
                    const uint8_t *s = x + (long)(i * w + j) * c;
                    for (int f = 0; f < c; f++) o[f] = s[f] > o[f] ? s[f] : o[f];
                }
            }
        }
    }
}
