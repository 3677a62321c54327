// The seed network's int8 forward stage by stage through the C kernels (run by Benchmarks/Int8/stages.py, which
// writes the weights file from a quantized model and documents the output). Usage:
//   stages WEIGHTS PATH(avx512vnni|avxvnni|avx2|scalar) N REPS
#include "loupe_int8.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int byValue(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

typedef struct { int k, oc, kp, ocp, relu, zero; float inv; int8_t *packed; int32_t *zc; float *m, *bias; } Layer;

static void readOrDie(void *p, size_t n, FILE *f) { if (fread(p, 1, n, f) != n) { fprintf(stderr, "short weights file\n"); exit(1); } }

/// One layer of the weights file; packed [kp / 4][ocp][4] with k in `rowBytes`-byte rows padded to `row` (conv) or plain.
static Layer readLayer(FILE *f, int rows, int rowBytes, int row) {
    Layer l; int head[3];
    readOrDie(head, 12, f); readOrDie(&l.inv, 4, f); readOrDie(&l.zero, 4, f);
    l.k = head[0]; l.oc = head[1]; l.relu = head[2];
    l.ocp = (l.oc + 15) / 16 * 16;
    l.kp = rows ? rows * row : (l.k + 3) / 4 * 4;
    int8_t *q = malloc((size_t)l.k * l.oc);
    readOrDie(q, (size_t)l.k * l.oc, f);
    l.packed = calloc((size_t)l.kp * l.ocp, 1);
    for (int kk = 0; kk < l.k; kk++) {
        const int at = rows ? kk / rowBytes * row + kk % rowBytes : kk;
        for (int o = 0; o < l.oc; o++) l.packed[(at / 4) * l.ocp * 4 + o * 4 + at % 4] = q[kk * l.oc + o];
    }
    l.zc = calloc(l.ocp, 4); l.m = calloc(l.ocp, 4); l.bias = calloc(l.ocp, 4);
    readOrDie(l.zc, (size_t)l.oc * 4, f); readOrDie(l.m, (size_t)l.oc * 4, f); readOrDie(l.bias, (size_t)l.oc * 4, f);
    free(q);
    return l;
}

// The AVX2 conv with its int16 weights made once (as Int8Network does at load: loupe_i8_conv_avx2_weights).
static const int16_t *avx2Weights;
static void convAVX2(const loupe_i8_conv_geometry *g, const loupe_i8_epilogue *e, const int8_t *w, const uint8_t *x, uint8_t *out) {
    loupe_i8_conv_avx2(g, e, w, avx2Weights, x, out);
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: stages WEIGHTS PATH N REPS\n"); return 2; }
    const char *path = argv[2];
    const int n = atoi(argv[3]), reps = atoi(argv[4]);
    void (*gemm)(int, int, int, const uint8_t *, int, const int8_t *, int32_t *, int);
    void (*conv)(const loupe_i8_conv_geometry *, const loupe_i8_epilogue *, const int8_t *, const uint8_t *, uint8_t *);
    if (!strcmp(path, "avx512vnni")) { gemm = loupe_i8_gemm_avx512vnni; conv = loupe_i8_conv_avx512vnni; }
    else if (!strcmp(path, "avxvnni")) { gemm = loupe_i8_gemm_avxvnni; conv = loupe_i8_conv_avxvnni; }
    else if (!strcmp(path, "avx2")) { gemm = loupe_i8_gemm_avx2; conv = convAVX2; }
    else { gemm = loupe_i8_gemm_scalar; conv = loupe_i8_conv_scalar; }
    if ((!strcmp(path, "avx512vnni") && !loupe_cpu_has_avx512vnni()) || (!strcmp(path, "avxvnni") && !loupe_cpu_has_avxvnni())) {
        printf("%-10s skipped: this CPU lacks it\n", path);
        return 0;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    float scale, offset, inv0, pad; int zero0;
    readOrDie(&scale, 4, f); readOrDie(&offset, 4, f); readOrDie(&inv0, 4, f); readOrDie(&pad, 4, f); readOrDie(&zero0, 4, f);
    const Layer c1 = readLayer(f, 3, 3, 4), d1 = readLayer(f, 0, 0, 0), d2 = readLayer(f, 0, 0, 0);
    fclose(f);
    gzFile g = gzopen("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb");
    if (!g) { fprintf(stderr, "no /usr/share/datasets/fashion-mnist\n"); return 1; }
    static uint8_t raw[16 + 256 * 784];
    if (gzread(g, raw, sizeof raw) != (int)sizeof raw) { fprintf(stderr, "short image file\n"); return 1; }
    gzclose(g);
    float *x = malloc(sizeof(float) * 256 * 784);
    for (int i = 0; i < 256 * 784; i++) { float v = (float)raw[16 + i] * scale; x[i] = v + offset; }
    loupe_i8_conv_geometry geometry = {28, 28, 1, 3, 3, 1, 1, 26, 26, 2, 4, c1.oc, c1.ocp};
    loupe_i8_epilogue e = {c1.zc, c1.m, c1.bias, c1.relu, c1.inv, c1.zero};
    const long w16 = loupe_i8_conv_avx2_weights(&geometry, c1.packed, NULL);
    if (w16 > 0) {
        int16_t *prepared = malloc(sizeof(int16_t) * (size_t)w16);
        loupe_i8_conv_avx2_weights(&geometry, c1.packed, prepared);
        avx2Weights = prepared;
    }
    uint8_t *a0 = calloc(256 * 784 + 64, 1), *a1 = calloc(256 * 5408 + 64, 1), *a2 = calloc(256 * 128 + 64, 1);
    int32_t *acc = calloc(256 * 128 + 64, 4);
    float *logits = calloc(256 * 16, 4);
    double *t[6];
    for (int s = 0; s < 6; s++) t[s] = calloc((size_t)reps, sizeof(double));
    int image = 0;
    for (int it = -3; it < reps; it++) {
        // Batch 1 walks the 256 images one per repetition; batch 256 runs all of them each time.
        const float *in = n == 1 ? x + (long)(image++ % 256) * 784 : x;
        const double c0 = cpu();
        for (int i = 0; i < n; i++) loupe_i8_quantize(784, in + i * 784, inv0, zero0, a0 + i * 784);
        const double c1t = cpu();
        for (int i = 0; i < n; i++) conv(&geometry, &e, c1.packed, a0 + i * 784, a1 + i * 5408);
        const double c2 = cpu();
        gemm(n, d1.kp, d1.ocp, a1, 5408, d1.packed, acc, d1.ocp);
        const double c3 = cpu();
        loupe_i8_requantize(n, d1.oc, acc, d1.ocp, d1.zc, d1.m, d1.bias, d1.relu, d1.inv, d1.zero, a2, d1.oc);
        const double c4 = cpu();
        gemm(n, d2.kp, d2.ocp, a2, d1.oc, d2.packed, acc, d2.ocp);
        loupe_i8_dequantize(n, d2.oc, acc, d2.ocp, d2.zc, d2.m, d2.bias, 0, logits, d2.oc);
        const double c5 = cpu();
        if (it >= 0) { t[0][it] = c1t - c0; t[1][it] = c2 - c1t; t[2][it] = c3 - c2; t[3][it] = c4 - c3; t[4][it] = c5 - c4; t[5][it] = c5 - c0; }
    }
    const char *names[] = {"quantize", "conv", "dense1", "requant", "dense2", "total"};
    unsigned h = 0;
    for (int i = 0; i < (n == 1 ? d1.oc : n * d1.oc); i++) h = h * 31 + a2[i];
    printf("%-10s batch %3d µs/image (median of %d, thread CPU):", path, n, reps);
    for (int s = 0; s < 6; s++) { qsort(t[s], (size_t)reps, sizeof(double), byValue); printf(" %s %.2f", names[s], t[s][reps / 2] * 1e6 / n); }
    printf("  = %.0f images/s  [dense1 output hash %08x]\n", n / t[5][reps / 2], h);
    return 0;
}
