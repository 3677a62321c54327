// Data-path micro-benchmarks: IDX loading, model file read/verify/write, image decoding.
// Times thread CPU time (CLOCK_THREAD_CPUTIME_ID) so other load on the machine inflates the
// figures less than wall time would; each figure is the median of `rounds` rounds.
//
//   swift build -c release --product loupe-data-bench
//   .build/release/loupe-data-bench [--data DIR] [--model PATH] [--rounds N]
import Glibc
import LoupeData
import LoupeEngine

func cpuNanoseconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
}

func option(_ name: String) -> String? {
    let a = CommandLine.arguments
    guard let i = a.firstIndex(of: name), i + 1 < a.count else { return nil }
    return a[i + 1]
}
let data = option("--data") ?? TrainingOptions.defaultDataDirectory
let modelPath = option("--model") ?? "models/fashion/1/model.loupe"
let rounds = Int(option("--rounds") ?? "") ?? 7

/// Median CPU time per operation over `rounds` rounds of `iterations` calls, after a warm-up round.
func measure(_ name: String, iterations: Int, rounds: Int = rounds, _ body: () throws -> Void) rethrows {
    try body()
    var samples: [Double] = []
    for _ in 0..<rounds {
        let t0 = cpuNanoseconds()
        for _ in 0..<iterations { try body() }
        samples.append((cpuNanoseconds() - t0) / Double(iterations))
    }
    samples.sort()
    let median = samples[samples.count / 2]
    let text = median >= 1e6 ? "\((median / 1e4).rounded() / 100) ms" : median >= 1e3 ? "\((median / 10).rounded() / 100) µs" : "\(Int(median)) ns"
    print("\(name.padding(54)) \(text)")
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

func png(_ pixels: [UInt8], width: Int, height: Int) -> [UInt8] {
    func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    func chunk(_ type: String, _ d: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + d
        return be32(d.count) + body + be32(Int(crc32Checksum(body[...])))
    }
    var raw: [UInt8] = []
    for y in 0..<height { raw.append(0); raw += pixels[y * width..<(y + 1) * width] }
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", be32(width) + be32(height) + [8, 0, 0, 0, 0])
        + chunk("IDAT", Deflate.zlib(raw)) + chunk("IEND", [])
}

do {
    print("loupe-data-bench: median thread CPU time per operation, \(rounds) rounds")
    let raw = try FileIO.readFile(modelPath)
    // glibc adapts its mmap threshold after the first large free: warm the allocator first.
    for _ in 0..<30 { _ = try ModelFile.decode(bytes: raw).makeModel() }
    measure("model file: decode + build Sequential", iterations: 5) { _ = try! ModelFile.decode(bytes: raw).makeModel() }
    measure("model file: decode + SHA-256 + validate (2.8 MB)", iterations: 5) { _ = try! ModelFile.decode(bytes: raw) }
    measure("model file: SHA-256 of 2.8 MB alone", iterations: 5) { _ = SHA256.digest(raw) }
    let file = try ModelFile.decode(bytes: raw)
    measure("model file: encode (header JSON + tensors + SHA-256)", iterations: 5) { _ = try! file.encode() }

    measure("IDX: load t10k (10,000 images, gzip)", iterations: 1) { _ = try! IDXDataset.load(directory: data, split: .test) }
    measure("IDX: load train (60,000 images, gzip)", iterations: 1) { _ = try! IDXDataset.load(directory: data, split: .train) }

    let test = try IDXDataset.load(directory: data, split: .test)
    let image = Array(test.images[0..<784])
    let png28 = png(image, width: 28, height: 28)
    measure("PNG decode: 28×28 gray 8-bit (\(png28.count) B)", iterations: 2000) { _ = try! ImageDecoder.decode(png28) }
    let pgm28 = Array("P5 28 28 255\n".utf8) + image
    measure("PGM decode: 28×28 P5", iterations: 2000) { _ = try! ImageDecoder.decode(pgm28) }
    var big = [UInt8](repeating: 0, count: 280 * 280)
    for y in 0..<280 { for x in 0..<280 { big[y * 280 + x] = image[(y / 10) * 28 + x / 10] } }
    let png280 = png(big, width: 280, height: 280)
    measure("PNG decode: 280×280 gray (\(png280.count) B)", iterations: 100) { _ = try! ImageDecoder.decode(png280) }
    measure("PNG decode + resize 280×280 → 28×28", iterations: 100) { _ = try! ImageDecoder.decodeForModel(png280) }
    measure("input statistics: 1 image", iterations: 20000) { _ = ImageStatistics.of(image[...]) }
} catch {
    print("error: \(error)")
    exit(1)
}
