// libFuzzer target for the image decoders (PNG, JPEG and PGM, LoupeData/ImageDecoder). Built by
// Fuzz/run-images.sh from this file plus the decoder sources (no package; zlib and libjpeg-turbo
// through the CZlib and CTurboJPEG module maps). Besides "does not crash or trip ASan", it checks on every input:
//   - memory follows the data: run with -malloc_limit_mb=64, so one allocation the size a header
//     claims (a 4096×4096 16-bit RGBA PNG is 134 MB) is itself a finding;
//   - a decoded image has width × height pixels, within the limits;
//   - every byte reserved from the decode budget is given back, failure or not;
//   - a decode that fails fails with a LoupeDataError (a sentence), never anything else;
//   - decoding twice gives the same answer (no hidden state).
// PNG inputs are decoded as they came and again with every chunk CRC made right, so that the
// fuzzer's mutations reach past the CRC check.

/// The one definition LoupeDataError's ModelFileProblem needs from ModelFile.swift, which pulls
/// in the engine; the decoders never touch it.
enum ModelFile { static let formatVersion: UInt32 = 1 }

let fuzzLimits = ImageDecoder.Limits(maxDimension: 4096, maxPixels: 4096 * 4096, maxInputBytes: 1 << 20)
let budget = DecodeBudget(limit: 48 << 20)

/// Gray for most inputs, RGB when the last byte is odd (the channels path is fuzzed too).
func decodeOnce(_ input: [UInt8]) -> Result<PixelImage, LoupeDataError> {
    do {
        return .success(try ImageDecoder.decode(input, channels: (input.last ?? 0) & 1 == 1 ? 3 : 1, limits: fuzzLimits, budget: budget))
    } catch let error as LoupeDataError {
        return .failure(error)
    } catch {
        fatalError("a decoder threw something other than LoupeDataError: \(error)")
    }
}

/// The input with every PNG chunk's CRC made right, so mutations reach the code behind the CRC
/// check (IHDR claims, inflate, unfiltering, conversion) instead of dying there.
func withFixedCRCs(_ input: [UInt8]) -> [UInt8] {
    guard input.starts(with: PNGDecoder.signature) else { return input }
    var out = input
    var pos = 8
    while out.count - pos >= 12 {
        let length = Int(out[pos]) << 24 | Int(out[pos + 1]) << 16 | Int(out[pos + 2]) << 8 | Int(out[pos + 3])
        guard length <= out.count - pos - 12 else { break }
        let crc = crc32Checksum(out[pos + 4..<pos + 8 + length])
        for i in 0..<4 { out[pos + 8 + length + i] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * i)) }
        pos += 12 + length
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImages(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let raw = Array(UnsafeBufferPointer(start: data, count: size))
    _ = decodeOnce(raw)   // the CRC-checking path on the bytes as they came
    precondition(budget.inUse == 0, "the decode kept \(budget.inUse) bytes of the budget")
    let input = withFixedCRCs(raw)
    let first = decodeOnce(input)
    precondition(budget.inUse == 0, "the decode kept \(budget.inUse) bytes of the budget")
    if case .success(let image) = first {
        precondition(image.width > 0 && image.height > 0 && image.width <= 4096 && image.height <= 4096, "size \(image.width)×\(image.height)")
        precondition(image.pixels.count == image.width * image.height * image.channels, "pixel count")
    }
    switch (first, decodeOnce(input)) {
    case let (.success(a), .success(b)): precondition(a == b, "two decodes of the same bytes differ")
    case let (.failure(a), .failure(b)): precondition(a == b, "two decodes of the same bytes fail differently")
    default: preconditionFailure("two decodes of the same bytes disagree")
    }
    return 0
}
