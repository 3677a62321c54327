#ifndef LOUPE_CPU_H
#define LOUPE_CPU_H
/// 1 if the CPU and OS support the x86-64-v4 AVX-512 subset (F, BW, CD, DQ, VL) that
/// LoupeKernelsAVX512 is compiled for; 0 otherwise (and on non-x86 machines).
int loupe_cpu_has_avx512(void);
/// 1 if the CPU supports the x86-64-v3 baseline the engine is compiled for (AVX2, FMA, BMI1/2, F16C, MOVBE).
int loupe_cpu_has_x86_64_v3(void);
#endif
