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

/// Channel o of the pair weights: its tile (64 channels, then 16 for the last ocp % 64) starts at byte (the tile's
/// first channel) · kp, and pair j of the tile at j · 2 · width.
static inline long pairTile(int kp, int ocp, int o, int *width) {
    const int full = ocp / 64 * 64;
    *width = o < full ? 64 : 16;
    return (long)(o < full ? o / 64 * 64 : o / 16 * 16) * kp;
}

/// Which k of a row pair up (include/loupe_int8.h): k and k + dist in every 2 · dist bytes of the first `pairRegion`
/// bytes, adjacent bytes after them. pairRegion is 0 (all adjacent) unless dist is a multiple of 8 that fits twice.
static inline long pairRegion(int kp, int dist) { return dist >= 8 && dist % 8 == 0 ? (long)kp / (2L * dist) * 2 * dist : 0; }

/// The pair of byte k (lane: 0 first, 1 second).
static inline long pairOf(long k, int dist, long region, int *lane) {
    if (k < region) {
        const long i = k % (2L * dist);
        *lane = i >= dist;
        return k / (2L * dist) * dist + i % dist;
    }
    *lane = (int)((k - region) & 1);
    return region / 2 + (k - region) / 2;
}

/// The first byte of pair j (its second: + dist inside the region, + 1 past it).
static inline long pairFirst(long j, int dist, long region) {
    return j < region / 2 ? j / dist * 2 * dist + j % dist : region + 2 * (j - region / 2);
}

/// [kp / 4][ocp][4] → pairs, tile by tile (loupe_i8_gemm_avx2_pairs).
void loupe_i8_pack_pairs(int kp, int ocp, const int8_t *w, int8_t *wp, int dist) {
    const long region = pairRegion(kp, dist);
    for (int o = 0; o < ocp; o++) {
        int width;
        const long tile = pairTile(kp, ocp, o, &width);
        for (int k = 0; k < kp; k++) {
            int lane;
            const long j = pairOf(k, dist, region, &lane);
            wp[tile + (j * width + o % width) * 2 + lane] = w[(long)(k >> 2) * ocp * 4 + o * 4 + (k & 3)];
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

// MARK: AVX2 — vpmaddubsw on activation nibbles, int16 accumulation over 8 steps (exact)
// vpmaddubsw (u8 × s8, adjacent products summed in int16 with saturation) cannot take whole uint8
// activations: 255·127 + 255·127 = 64,770 > 32,767. Each activation is split into nibbles instead,
// a = 16·h + l with h, l ∈ [0, 15], and each nibble plane goes through vpmaddubsw against the int8
// weights (|w| ≤ 128): one pair sum is at most 2·15·128 = 3,840 in magnitude, and 8 steps (k4 groups)
// of them added with vpaddw at most 30,720 ≤ 32,767 — no saturation and no wrap, so the int16 sums are
// exact. Every 8 steps they are widened with vpmaddwd (pairs of int16 · 1 for l, · 16 for h) and added
// to the int32 sums: Σ (16·h + l)·w = Σ a·w exactly, the same int32 as every other path.
// Cost per 32 multiply-adds: 2 vpmaddubsw + 1/4 vpmaddwd on the two integer-multiply pipes, against 2
// vpmaddwd + 2 vpmovsxbw for int16 widening (which must widen the weights on every use at batch 1).
// Activations are split into the two nibble planes once per block of R rows × KB columns (on the
// stack), then every 8-channel block of weights is swept over them.

#define TAVX2 __attribute__((target("avx2,bmi2,popcnt")))

enum { NIB_KB = 2048 };  // k columns per split block (a multiple of 32: 8 steps of 4)

/// R rows × U ymm (8 channels each) over `steps` k4 groups of the nibble planes lo/hi (row stride NIB_KB),
/// weights w (k4 stride `step` bytes), added into acc (row stride ldc).
static inline __attribute__((always_inline)) TAVX2
/// With `rows` non-null (one row only), step t of the nibble planes is weight group rows[t] (the nonzero groups).
void tileNib(const int R, const int U, int steps, const uint8_t *lo, const uint8_t *hi, const int32_t *rows, const int8_t *w, long step,
             int32_t *acc, int ldc) {
    const __m256i ones = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi16(16);
    __m256i s[4][4];
    for (int r = 0; r < R; r++) for (int u = 0; u < U; u++) s[r][u] = _mm256_loadu_si256((const __m256i *)(acc + (long)r * ldc + u * 8));
    for (int t0 = 0; t0 < steps; t0 += 8) {
        const int t1 = t0 + 8 < steps ? t0 + 8 : steps;
        __m256i l16[4][4], h16[4][4];
        for (int r = 0; r < R; r++) for (int u = 0; u < U; u++) { l16[r][u] = _mm256_setzero_si256(); h16[r][u] = _mm256_setzero_si256(); }
        for (int t = t0; t < t1; t++) {
            const int8_t *wk = w + (rows ? rows[t] : t) * step;
            __m256i wv[4];
            for (int u = 0; u < U; u++) wv[u] = _mm256_loadu_si256((const __m256i *)(wk + u * 32));
            for (int r = 0; r < R; r++) {
                const __m256i al = _mm256_set1_epi32(load4(lo + r * NIB_KB + t * 4));
                const __m256i ah = _mm256_set1_epi32(load4(hi + r * NIB_KB + t * 4));
                for (int u = 0; u < U; u++) {
                    l16[r][u] = _mm256_add_epi16(l16[r][u], _mm256_maddubs_epi16(al, wv[u]));
                    h16[r][u] = _mm256_add_epi16(h16[r][u], _mm256_maddubs_epi16(ah, wv[u]));
                }
            }
        }
        for (int r = 0; r < R; r++)
            for (int u = 0; u < U; u++)
                s[r][u] = _mm256_add_epi32(s[r][u], _mm256_add_epi32(_mm256_madd_epi16(l16[r][u], ones), _mm256_madd_epi16(h16[r][u], sixteen)));
    }
    for (int r = 0; r < R; r++) for (int u = 0; u < U; u++) _mm256_storeu_si256((__m256i *)(acc + (long)r * ldc + u * 8), s[r][u]);
}

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

/// R rows (compile-time) of a: every k block split into nibble planes, then swept by every channel block.
static inline __attribute__((always_inline)) TAVX2
void rowsNib(const int R, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    // (+ 32: the packed stores of the one-row path write whole vectors past the last nonzero group)
    uint8_t lo[2 * NIB_KB + 32] __attribute__((aligned(32))), hi[2 * NIB_KB + 32] __attribute__((aligned(32)));
    const long step = (long)ocp * 4;
    for (int r = 0; r < R; r++) memset(acc + (long)r * ldc, 0, (size_t)ocp * 4);
    const __m256i mask = _mm256_set1_epi8(15);
    for (int k0 = 0; k0 < kp; k0 += NIB_KB) {
        const int kb = kp - k0 < NIB_KB ? kp - k0 : NIB_KB;
        const int8_t *wk = w + (long)(k0 / 4) * step;
        if (R == 1) {
            // One row (batch 1): only its nonzero 4-byte groups. All-zero groups add nothing (whatever the zero
            // point: its term is the separate correction), and after ReLU many are zero (28 % of the seed network's
            // dense input groups on its test images).
            int32_t rows[NIB_KB / 4 + 8];
            const int count = nonzeroGroups(a + k0, kb, hi, rows);
            for (int j = 0; j < count * 4; j += 32) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(hi + j));
                _mm256_store_si256((__m256i *)(lo + j), _mm256_and_si256(v, mask));
                _mm256_store_si256((__m256i *)(hi + j), _mm256_and_si256(_mm256_srli_epi16(v, 4), mask));
            }
            int o = 0;
            for (; o + 32 <= ocp; o += 32) tileNib(1, 4, count, lo, hi, rows, wk + o * 4, step, acc + o, ldc);
            for (; o < ocp; o += 16) tileNib(1, 2, count, lo, hi, rows, wk + o * 4, step, acc + o, ldc);
            continue;
        }
        for (int r = 0; r < R; r++) {
            const uint8_t *src = a + (long)r * lda + k0;
            int j = 0;
            for (; j + 32 <= kb; j += 32) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(src + j));
                _mm256_store_si256((__m256i *)(lo + r * NIB_KB + j), _mm256_and_si256(v, mask));
                _mm256_store_si256((__m256i *)(hi + r * NIB_KB + j), _mm256_and_si256(_mm256_srli_epi16(v, 4), mask));
            }
            for (; j < kb; j++) { lo[r * NIB_KB + j] = src[j] & 15; hi[r * NIB_KB + j] = src[j] >> 4; }
        }
        for (int o = 0; o < ocp; o += 16) tileNib(R, 2, kb / 4, lo, hi, 0, wk + o * 4, step, acc + o, ldc);
    }
}

TAVX2 void loupe_i8_gemm_avx2(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *w, int32_t *acc, int ldc) {
    // 2 rows × 16 channels per tile (8 int16 + 4 int32 accumulators; measured on Zen 5 at batch 256: 96 GMAC/s
    // against 88 for 4 rows × 8 channels and 83 for 3 × 8), 1 row × 32 channels for a single row.
    int r = 0;
    for (; r + 2 <= n; r += 2) rowsNib(2, kp, ocp, a + (long)r * lda, lda, w, acc + (long)r * ldc, ldc);
    if (r < n) rowsNib(1, kp, ocp, a + (long)r * lda, lda, w, acc + (long)r * ldc, ldc);
}

// MARK: AVX2 over weight pairs — each row's nonzero activation pairs only (dense layers)
// vpmaddwd multiplies int16 pairs and adds them into exact int32 (|a0·w0 + a1·w1| ≤ 2·255·128 < 2^31): no
// saturation and no nibble split, 16 multiply-adds per instruction. The weights are re-laid once per layer as
// int8 pairs (loupe_i8_pack_pairs: per tile of 64 channels [kp / 2][64][2], so a k block of one tile is
// contiguous) and sign-extended to int16 as they are loaded (vpmovsxbw from memory: the same load count as
// int16 weights, half the bytes — measured faster than an int16 copy at batch 256, 6.15 vs 6.42 µs for the seed
// dense layer, and at batch 1, 6.4 vs 9.7 µs, where 1.4 MB of int16 no longer fits the 1 MB L2). Each row's
// activations are widened to int16 pairs and only its nonzero pairs are kept (a list of values and indices, 8
// pairs at a time as nonzeroGroups does): after ReLU 44 % of the seed network's dense-input pairs are zero (60 %
// of single values), so that many vpmaddwd never run. A zero pair adds nothing whatever the zero point (its term
// is the separate correction), so the sums equal every other path's. One row at a time against 64 channels (8
// accumulators): k in blocks of PAIR_KB pairs, so a block's weights (8 KB per tile) stay in L1 while PAIR_RC rows
// sweep them. The loop is bound by its loads (a weight load per vpmaddwd and a broadcast per pair, ≈ 2 vector
// loads per cycle on Zen 5), not by the multiplies; a 2-row tile over the pairs nonzero in either row would halve
// the weight loads but run 76 % of the pairs instead of 56 %.

enum { PAIR_SB = 256, PAIR_KB = 64, PAIR_NB = PAIR_SB / PAIR_KB, PAIR_RC = 16 };

/// The nonzero pairs j0 … j0 + np − 1 of the row at src (j0 a multiple of 8; pairs as pairFirst places them),
/// widened: values (two int16 in 32 bits) to vals, pair index − j0 + base to idx; returns the count. Writes up to 8
/// entries past it (nonzero8).
static inline __attribute__((always_inline)) TAVX2
int nonzeroPairs(const uint8_t *src, long j0, int np, int dist, long region, uint32_t *vals, int32_t *idx, int base) {
    int count = 0, t = 0;
    // Inside the region, 8 pairs share one 2 · dist run (dist % 8 == 0): 8 bytes at `first` and 8 at first + dist,
    // interleaved; first advances by 8 and jumps over the second half of each run (no division per step).
    long first = pairFirst(j0, dist, region), i = j0 < region / 2 ? j0 % dist : 0;
    for (; t + 8 <= np; t += 8) {
        __m128i bytes;
        if (j0 + t < region / 2) {
            bytes = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(src + first)), _mm_loadl_epi64((const __m128i *)(src + first + dist)));
            first += 8;
            i += 8;
            if (i == dist) { i = 0; first += dist; }
        } else {
            bytes = _mm_loadu_si128((const __m128i *)(src + first));
            first += 16;
        }
        count += nonzero8(_mm256_cvtepu8_epi16(bytes), base + t, vals + count, idx + count);
    }
    for (; t < np; t++) {
        const long j = j0 + t, f = pairFirst(j, dist, region);
        const uint32_t v = (uint32_t)src[f] | (uint32_t)src[f + (j < region / 2 ? dist : 1)] << 16;
        vals[count] = v;
        idx[count] = base + t;
        count += v != 0;
    }
    return count;
}

/// One row's `count` listed pairs against C ymm (8 channels each) of a tile of pair weights w (pair stride `step`
/// bytes), added to acc.
static inline __attribute__((always_inline)) TAVX2
void pairRow(const int C, int count, const uint32_t *vals, const int32_t *idx, const int8_t *w, long step, int32_t *acc) {
    __m256i s[8];
    for (int c = 0; c < C; c++) s[c] = _mm256_loadu_si256((const __m256i *)(acc + c * 8));
    for (int t = 0; t < count; t++) {
        const int8_t *wk = w + idx[t] * step;
        const __m256i b = _mm256_set1_epi32((int)vals[t]);
        for (int c = 0; c < C; c++)
            s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(b, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wk + c * 16)))));
    }
    for (int c = 0; c < C; c++) _mm256_storeu_si256((__m256i *)(acc + c * 8), s[c]);
}

TAVX2 void loupe_i8_gemm_avx2_pairs(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *wp, int dist, int32_t *acc,
                                    int ldc) {
    const long region = pairRegion(kp, dist);
    uint32_t vals[PAIR_RC][PAIR_SB + 8];
    int32_t idx[PAIR_RC][PAIR_SB + 8], bound[PAIR_RC][PAIR_NB + 1];
    const int np = kp / 2;
    for (int r0 = 0; r0 < n; r0 += PAIR_RC) {
        const int rn = n - r0 < PAIR_RC ? n - r0 : PAIR_RC;
        for (int r = 0; r < rn; r++) memset(acc + (long)(r0 + r) * ldc, 0, (size_t)ocp * 4);
        for (int p0 = 0; p0 < np; p0 += PAIR_SB) {
            const int sb = np - p0 < PAIR_SB ? np - p0 : PAIR_SB;
            // Each row's nonzero pairs of this super-block, with where each k block's entries start.
            for (int r = 0; r < rn; r++) {
                int count = 0;
                for (int b = 0; b < PAIR_NB; b++) {
                    bound[r][b] = count;
                    const int q0 = b * PAIR_KB, q1 = q0 + PAIR_KB < sb ? q0 + PAIR_KB : sb;
                    if (q1 > q0) count += nonzeroPairs(a + (long)(r0 + r) * lda, p0 + q0, q1 - q0, dist, region, vals[r] + count, idx[r] + count, q0);
                }
                bound[r][PAIR_NB] = count;
            }
            // A lone row sweeps the whole super-block per tile (its weights stream from L2 whatever the order).
            const int blocks = rn == 1 ? 1 : PAIR_NB, span = rn == 1 ? PAIR_NB : 1;
            for (int b = 0; b < blocks; b++) {
                int o = 0;
                for (; o + 64 <= ocp; o += 64) {
                    const int8_t *wt = wp + (long)o * kp + (long)p0 * 128;
                    for (int r = 0; r < rn; r++) {
                        const int t0 = bound[r][b * span], t1 = bound[r][(b + 1) * span];
                        pairRow(8, t1 - t0, vals[r] + t0, idx[r] + t0, wt, 128, acc + (long)(r0 + r) * ldc + o);
                    }
                }
                for (; o < ocp; o += 16) {
                    const int8_t *wt = wp + (long)o * kp + (long)p0 * 32;
                    for (int r = 0; r < rn; r++) {
                        const int t0 = bound[r][b * span], t1 = bound[r][(b + 1) * span];
                        pairRow(2, t1 - t0, vals[r] + t0, idx[r] + t0, wt, 32, acc + (long)(r0 + r) * ldc + o);
                    }
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

static TVNNI void sparseRowVNNI(int kp, int ocp, const uint8_t *a, const int8_t *w, int32_t *acc) {
    uint8_t packed[NIB_KB + 32];
    int32_t rows[NIB_KB / 4 + 8];
    const long step = (long)ocp * 4;
    memset(acc, 0, (size_t)ocp * 4);
    for (int k0 = 0; k0 < kp; k0 += NIB_KB) {
        const int kb = kp - k0 < NIB_KB ? kp - k0 : NIB_KB, count = nonzeroGroups(a + k0, kb, packed, rows);
        const int8_t *wk = w + (long)(k0 / 4) * step;
        int o = 0;
        for (; o + 64 <= ocp; o += 64) sparseTileVNNI(8, count, packed, rows, wk + o * 4, step, acc + o);
        for (; o < ocp; o += 16) sparseTileVNNI(2, count, packed, rows, wk + o * 4, step, acc + o);
    }
}

#else
void loupe_i8_gemm_avx2_pairs(int n, int kp, int ocp, const uint8_t *a, int lda, const int8_t *wp, int dist, int32_t *acc, int ldc) {
    const long region = pairRegion(kp, dist);
    for (int r = 0; r < n; r++)
        for (int o = 0; o < ocp; o++) {
            int32_t s = 0, width, lane;
            const long tile = pairTile(kp, ocp, o, &width);
            for (int k = 0; k < kp; k++) {
                const long j = pairOf(k, dist, region, &lane);
                s += (int32_t)a[(long)r * lda + k] * (int32_t)wp[tile + (j * width + o % width) * 2 + lane];
            }
            acc[(long)r * ldc + o] = s;
        }
}
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
    for (int i = 0; i < count; i++) q[i] = quantizeOne(x[i], invScale, z);
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
