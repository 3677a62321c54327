// Data-path micro-benchmarks: IDX loading, model file read/verify/write, image decoding.
// Times thread CPU time (CLOCK_THREAD_CPUTIME_ID) so other load on the machine inflates the
// figures less than wall time would; each figure is the median of `rounds` rounds.
//
//   swift build -c release --product loupe-data-bench
//   .build/release/loupe-data-bench [--data DIR] [--model PATH] [--rounds N]
import CTurboJPEG
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

/// A JPEG from libjpeg-turbo's own encoder: quality 90, 4:2:0 for colour.
func jpeg(_ pixels: [UInt8], width: Int, height: Int, channels: Int, progressive: Bool = false) -> [UInt8] {
    let handle = tjInitCompress()!
    defer { tjDestroy(handle) }
    var out: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    let rc = tjCompress2(handle, pixels, Int32(width), 0, Int32(height), (channels == 1 ? TJPF_GRAY : TJPF_RGB).rawValue, &out, &size,
                         Int32((channels == 1 ? TJSAMP_GRAY : TJSAMP_420).rawValue), 90, progressive ? TJFLAG_PROGRESSIVE : 0)
    precondition(rc == 0, String(cString: tjGetErrorStr2(handle)))
    defer { tjFree(out) }
    return Array(UnsafeBufferPointer(start: out, count: Int(size)))
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
    // JPEG (libjpeg-turbo): a test image, and a 640×480 colour "photo" of it with texture noise.
    let jpeg28 = jpeg(image, width: 28, height: 28, channels: 1)
    measure("JPEG decode: 28×28 gray (\(jpeg28.count) B)", iterations: 2000) { _ = try! ImageDecoder.decode(jpeg28) }
    measure("  of which: TurboJPEG handle create + destroy", iterations: 2000) { tjDestroy(tjInitDecompress()) }
    let rgb28 = image.flatMap { [$0, $0 / 2, 255 - $0] }
    let jpeg28rgb = jpeg(rgb28, width: 28, height: 28, channels: 3)
    measure("JPEG decode: 28×28 YCbCr 4:2:0 → gray (\(jpeg28rgb.count) B)", iterations: 2000) { _ = try! ImageDecoder.decode(jpeg28rgb) }
    measure("JPEG decode: 28×28 YCbCr 4:2:0 → RGB", iterations: 2000) { _ = try! ImageDecoder.decode(jpeg28rgb, channels: 3) }
    var photo = [UInt8](repeating: 0, count: 640 * 480 * 3)
    var noise: UInt32 = 12345
    for y in 0..<480 {
        for x in 0..<640 {
            noise = noise &* 1_664_525 &+ 1_013_904_223
            let v = Int(image[(y * 28 / 480) * 28 + x * 28 / 640]) + Int(noise >> 27) - 16
            let i = (y * 640 + x) * 3
            photo[i] = UInt8(clamping: v); photo[i + 1] = UInt8(clamping: v / 2 + x / 8); photo[i + 2] = UInt8(clamping: 255 - v - y / 8)
        }
    }
    let jpeg640 = jpeg(photo, width: 640, height: 480, channels: 3)
    let jpeg640p = jpeg(photo, width: 640, height: 480, channels: 3, progressive: true)
    measure("JPEG decode: 640×480 baseline → gray (\(jpeg640.count / 1000) kB)", iterations: 20) { _ = try! ImageDecoder.decode(jpeg640) }
    measure("JPEG decode + resize 640×480 → 28×28 (DCT-scaled 1/8)", iterations: 200) { _ = try! ImageDecoder.decodeForModel(jpeg640) }
    measure("JPEG decode + resize, full decode then area (peer)", iterations: 20) { _ = try! ImageDecoder.decode(jpeg640).resized(width: 28, height: 28) }
    measure("JPEG decode + resize 640×480 progressive → 28×28", iterations: 100) { _ = try! ImageDecoder.decodeForModel(jpeg640p) }
    measure("JPEG decode + resize 640×480 → 28×28×3 (RGB)", iterations: 200) { _ = try! ImageDecoder.decodeForModel(jpeg640, channels: 3) }
    measure("input statistics: 1 image", iterations: 20000) { _ = ImageStatistics.of(image[...]) }
} catch {
    print("error: \(error)")
    exit(1)
}
