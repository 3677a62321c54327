import LoupeEngine
print("loupe-engine-bench: benchmarks come next")
