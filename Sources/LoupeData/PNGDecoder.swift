import Synchronization

/// PNG (ISO/IEC 15948) decoder to 8-bit gray or RGB: colour types 0, 2, 3, 4, 6 at every allowed bit
/// depth, tRNS transparency, Adam7 interlace. Every chunk's CRC is checked; critical chunks
/// other than IHDR/PLTE/IDAT/IEND are refused; the inflated size is bounded by the size IHDR
/// declares (which `Limits` bounds), and memory by what actually inflates (see `decode`).
enum PNGDecoder {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    struct Header {
        var width: Int
        var height: Int
        var bitDepth: Int
        var colorType: Int
        var interlaced: Bool

        var channels: Int {
            switch colorType {
            case 0, 3: return 1
            case 2: return 3
            case 4: return 2
            default: return 4
            }
        }
        var bitsPerPixel: Int { channels * bitDepth }
        func rowBytes(_ w: Int) -> Int { (w * bitsPerPixel + 7) / 8 }
        /// Filter-type byte + row bytes per row, for a (sub)image of w×h.
        func rawSize(_ w: Int, _ h: Int) -> Int { w == 0 || h == 0 ? 0 : h * (1 + rowBytes(w)) }
        /// Pass `i`'s first pixel, steps and size: one of Adam7's seven when interlaced, else the
        /// whole image (i = 0).
        func pass(_ i: Int) -> (x0: Int, y0: Int, dx: Int, dy: Int, w: Int, h: Int) {
            guard interlaced else { return (0, 0, 1, 1, width, height) }
            let (x0, y0, dx, dy) = adam7[i]
            return (x0, y0, dx, dy, (width - x0 + dx - 1) / dx, (height - y0 + dy - 1) / dy)
        }
    }

    /// Adam7 passes: (x start, y start, x step, y step).
    static let adam7: [(Int, Int, Int, Int)] = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]

    static func fail(_ s: String) -> LoupeDataError { .invalidImage(format: "PNG", reason: s) }

    static func be32<Bytes: RandomAccessCollection<UInt8>>(_ b: Bytes, _ i: Int) -> Int where Bytes.Index == Int {
        Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
    }

    /// `wholeImage`: let the common case (8-bit gray or RGB as stored, not interlaced, image data of
    /// at most one window) take the whole-image path; false keeps every image row by row (the
    /// reference the tests hold the whole-image path to).
    static func decode(_ bytes: [UInt8], channels: Int = 1, limits: ImageDecoder.Limits, budget: DecodeBudget = .unlimited,
                       wholeImage: Bool = true) throws -> PixelImage {
        guard bytes.starts(with: signature) else { throw fail("bad signature") }
        var pos = 8
        var header: Header?
        var palette: [(UInt8, UInt8, UInt8)] = []
        var paletteAlpha: [UInt8] = []
        var transparentKey: [Int]?   // gray or RGB sample values that are fully transparent
        // The compressed data: the one IDAT chunk as a slice of `bytes` (the common case, no copy),
        // or the chunks joined.
        var idat = ArraySlice<UInt8>()
        var sawIDAT = false, idatEnded = false, sawIEND = false
        while !sawIEND {
            guard bytes.count - pos >= 12 else { throw fail("truncated: the file ends before IEND (at byte \(bytes.count))") }
            let length = be32(bytes, pos)
            guard length <= 0x7fff_ffff else { throw fail("chunk length \(length) is invalid") }
            let typeBytes = bytes[pos + 4..<pos + 8]
            guard typeBytes.allSatisfy({ (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }) else {
                throw fail("invalid chunk type at byte \(pos + 4)")
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard bytes.count - pos - 12 >= length else { throw fail("truncated: chunk \(type) declares \(length) bytes, the file ends first") }
            let data = bytes[pos + 8..<pos + 8 + length]
            let storedCRC = UInt32(be32(bytes, pos + 8 + length))
            guard crc32Checksum(bytes[pos + 4..<pos + 8 + length]) == storedCRC else { throw fail("CRC mismatch in chunk \(type)") }
            pos += 12 + length
            if header == nil && type != "IHDR" { throw fail("the first chunk is \(type), not IHDR") }
            if sawIDAT && type != "IDAT" { idatEnded = true }
            switch type {
            case "IHDR":
                guard header == nil else { throw fail("more than one IHDR") }
                guard length == 13 else { throw fail("IHDR is \(length) bytes, not 13") }
                let o = data.startIndex   // IHDR's fields read in place
                let h = Header(width: be32(data, o), height: be32(data, o + 4), bitDepth: Int(data[o + 8]), colorType: Int(data[o + 9]), interlaced: data[o + 12] == 1)
                guard h.width > 0, h.height > 0, h.width <= 0x7fff_ffff, h.height <= 0x7fff_ffff else { throw fail("size \(h.width)×\(h.height)") }
                let depths: ClosedRange<Int>   // the allowed bit depths are the powers of two in the range
                switch h.colorType {
                case 0: depths = 1...16
                case 3: depths = 1...8
                case 2, 4, 6: depths = 8...16
                default: throw fail("colour type \(h.colorType) does not exist")
                }
                guard depths.contains(h.bitDepth), h.bitDepth & (h.bitDepth - 1) == 0 else { throw fail("bit depth \(h.bitDepth) is not allowed for colour type \(h.colorType)") }
                guard data[o + 10] == 0 else { throw fail("compression method \(data[o + 10])") }
                guard data[o + 11] == 0 else { throw fail("filter method \(data[o + 11])") }
                guard data[o + 12] <= 1 else { throw fail("interlace method \(data[o + 12])") }
                try limits.check(width: h.width, height: h.height)
                header = h
            case "PLTE":
                guard length % 3 == 0, length > 0, length <= 768 else { throw fail("PLTE is \(length) bytes") }
                guard !sawIDAT else { throw fail("PLTE after IDAT") }
                let d = Array(data)
                palette = stride(from: 0, to: length, by: 3).map { (d[$0], d[$0 + 1], d[$0 + 2]) }
                if header!.colorType == 3 && palette.count > 1 << header!.bitDepth {
                    throw fail("\(palette.count) palette entries for bit depth \(header!.bitDepth)")
                }
            case "tRNS":
                guard !sawIDAT else { throw fail("tRNS after IDAT") }
                let d = Array(data)
                switch header!.colorType {
                case 3: paletteAlpha = d
                case 0:
                    guard length == 2 else { throw fail("tRNS for gray is \(length) bytes, not 2") }
                    transparentKey = [Int(d[0]) << 8 | Int(d[1])]
                case 2:
                    guard length == 6 else { throw fail("tRNS for RGB is \(length) bytes, not 6") }
                    transparentKey = [Int(d[0]) << 8 | Int(d[1]), Int(d[2]) << 8 | Int(d[3]), Int(d[4]) << 8 | Int(d[5])]
                default: throw fail("tRNS is not allowed with an alpha channel")
                }
            case "IDAT":
                guard !idatEnded else { throw fail("IDAT chunks are not consecutive") }
                sawIDAT = true
                guard idat.count + length <= limits.maxInputBytes else { throw fail("compressed data exceeds \(limits.maxInputBytes) bytes") }
                if idat.isEmpty { idat = data } else { idat += data }   // a second chunk copies (the slice is not ours)
            case "IEND":
                sawIEND = true
            default:
                if typeBytes[typeBytes.startIndex] & 0x20 == 0 { throw fail("unknown critical chunk \(type)") }
            }
        }
        guard let h = header else { throw fail("no IHDR") }
        guard sawIDAT else { throw fail("no IDAT chunk") }
        if h.colorType == 3 && palette.isEmpty { throw fail("a palette image without PLTE") }
        if h.colorType == 3 && paletteAlpha.count > palette.count { throw fail("tRNS has more entries than PLTE") }

        let passCount = h.interlaced ? adam7.count : 1
        var expected = 0
        for p in 0..<passCount { let pass = h.pass(p); expected += h.rawSize(pass.w, pass.h) }
        // Rows are inflated, unfiltered and converted one at a time, and the gray output grows
        // row by row: memory follows the bytes that actually inflate, never the size IHDR claims
        // (a 20-byte IDAT that claims 4096×4096×16-bit RGBA fails after its first row, having
        // held a few KiB). The output's growth is reserved from `budget` as it happens.
        // Colour types decode to RGB when asked for 3 channels; gray ones decode to gray, repeated
        // into RGB at the end.
        let outC = channels == 3 && (h.colorType == 2 || h.colorType == 3 || h.colorType == 6) ? 3 : 1
        let pixelCount = h.width * h.height
        let sampleCount = pixelCount * outC
        var reservation = DecodeReservation(budget)
        defer { reservation.releaseAll() }
        // zlib's state and the row buffers come from the previous decode (PNGScratch).
        let scratch = PNGScratch.take()
        var row = scratch.row, previous = scratch.previous
        scratch.row = []; scratch.previous = []
        let inflater = try scratch.inflater(idat, maxOutput: expected)
        var source = InflatedRows(inflater, window: scratch.takeWindow(),
                                  capacity: min(expected, max(1 << 16, 1 + h.rowBytes(h.width))), expected: expected)
        defer {
            scratch.row = row; scratch.previous = previous
            scratch.window = source.takeWindow()
            PNGScratch.give(scratch)
        }
        // The image row by row for one pass; for Adam7, each pass's pixels one after another,
        // scattered into place once all of them have arrived.
        var decoded: [UInt8] = []
        let bpp = max(1, h.bitsPerPixel / 8)
        // Fast path, the common cases: 8-bit gray to gray, 8-bit RGB to RGB, rows as they are.
        let asIs = h.bitDepth == 8 && transparentKey == nil && (outC == 1 ? h.colorType == 0 : h.colorType == 2)
        if wholeImage && asIs && !h.interlaced && expected <= 1 << 16 && source.holdsAll {
            decoded = try source.wholeImage(rows: h.height, rowBytes: h.rowBytes(h.width), bpp: bpp) { total in
                try reservation.cover(total, cap: sampleCount)
            }
        } else {
            decoded.reserveCapacity(min(sampleCount, 1 << 16))   // small images grow once; a lying IHDR gets 64 KiB at most
            for p in 0..<passCount {
                let pass = h.pass(p)
                guard pass.w > 0 && pass.h > 0 else { continue }
                let rowBytes = h.rowBytes(pass.w)
                previous.removeAll(keepingCapacity: true); previous.append(contentsOf: repeatElement(0, count: rowBytes))
                row.removeAll(keepingCapacity: true); row.append(contentsOf: repeatElement(0, count: rowBytes))
                for y in 0..<pass.h {
                    let filter = try source.nextRow(into: &row)
                    try row.withUnsafeMutableBufferPointer { r in
                        try previous.withUnsafeBufferPointer { p in
                            try unfilter(filter, r.baseAddress!, prior: p.baseAddress!, count: rowBytes, bpp: bpp, line: y)
                        }
                    }
                    try reservation.cover(decoded.count + pass.w * outC, cap: sampleCount)
                    if asIs {
                        decoded.append(contentsOf: row)
                    } else {
                        let base = decoded.count
                        decoded.append(contentsOf: repeatElement(0, count: pass.w * outC))
                        try convertRow(row, header: h, palette: palette, paletteAlpha: paletteAlpha, transparentKey: transparentKey,
                                       count: pass.w, channels: outC) { i, value in decoded[base + i] = value }
                    }
                    swap(&previous, &row)
                }
            }
        }
        try source.expectEnd()
        var image: PixelImage
        if h.interlaced {
            try reservation.cover(2 * sampleCount, cap: 2 * sampleCount)
            var scattered = [UInt8](repeating: 0, count: sampleCount)
            var k = 0
            for p in 0..<passCount {
                let pass = h.pass(p)
                guard pass.w > 0 && pass.h > 0 else { continue }
                for y in 0..<pass.h {
                    let base = (pass.y0 + y * pass.dy) * h.width + pass.x0
                    for x in 0..<pass.w {
                        for c in 0..<outC { scattered[(base + x * pass.dx) * outC + c] = decoded[k]; k += 1 }
                    }
                }
            }
            image = PixelImage(width: h.width, height: h.height, channels: outC, pixels: scattered)
        } else {
            image = PixelImage(width: h.width, height: h.height, channels: outC, pixels: decoded)
        }
        if channels > outC {
            try reservation.cover(sampleCount + pixelCount * channels, cap: sampleCount * 2 + pixelCount * channels)
            image = image.expanded(to: channels)
        }
        return image
    }

    /// The inflated image data, handed out one filtered row at a time from a fixed window.
    struct InflatedRows {
        let inflater: Inflater
        let expected: Int
        private var window: [UInt8]
        private var start = 0, end = 0
        private var consumed = 0

        /// `window`: a buffer to reuse (any size; replaced when smaller than `capacity`).
        init(_ inflater: Inflater, window: [UInt8] = [], capacity: Int, expected: Int) {
            self.inflater = inflater
            self.expected = expected
            self.window = window.count >= capacity ? window : [UInt8](repeating: 0, count: capacity)
        }

        /// The window, for the next decode (this source is then empty).
        mutating func takeWindow() -> [UInt8] {
            defer { window = []; start = 0; end = 0 }
            return window
        }

        /// Whether the window holds all the image data at once (`wholeImage` may run).
        var holdsAll: Bool { window.count >= expected && start == 0 && end == 0 }

        /// The whole image at once, for an image whose data fits the window (`holdsAll`) and whose
        /// rows are its output (8-bit gray or RGB, not interlaced): inflated in one go, each row
        /// unfiltered in place (its prior is the row before it in the window) and copied out; `reserve`
        /// is told the output's size as it grows, as the row-by-row path tells it. Errors come as
        /// that path gives them: a bad filter type on a row that arrived, then what ended the data
        /// early (the same read gives the same bytes: that path asks for all of it at once too).
        mutating func wholeImage(rows: Int, rowBytes: Int, bpp: Int, reserve: (Int) throws -> Void) throws -> [UInt8] {
            precondition(holdsAll)
            var failure: LoupeDataError?
            while end < expected {
                let got: Int
                do {
                    got = try inflater.read(into: &window, at: end, count: expected - end)
                } catch let LoupeDataError.compression(reason) {
                    failure = PNGDecoder.fail("image data: \(reason)")
                    break
                }
                if got == 0 { break }
                end += got
            }
            let stride = 1 + rowBytes
            let complete = min(rows, end / stride)
            let out = try window.withUnsafeMutableBufferPointer { w in
                try [UInt8](unsafeUninitializedCapacity: complete * rowBytes) { o, initialized in
                    for y in 0..<complete {
                        let row = w.baseAddress! + y * stride + 1
                        try PNGDecoder.unfilter(row[-1], row, prior: y == 0 ? nil : UnsafePointer(row - stride), count: rowBytes, bpp: bpp, line: y)
                        try reserve((y + 1) * rowBytes)
                        (o.baseAddress! + y * rowBytes).initialize(from: row, count: rowBytes)
                        initialized = (y + 1) * rowBytes
                    }
                }
            }
            if let failure { throw failure }
            if complete < rows { throw PNGDecoder.fail("image data is truncated: \(consumed + end) of \(expected) bytes") }
            start = end
            consumed += end
            end = 0; start = 0
            return out
        }

        /// Copies the next row's bytes into `row` and returns its filter-type byte.
        mutating func nextRow(into row: inout [UInt8]) throws -> UInt8 {
            let need = 1 + row.count
            if end - start < need {
                if start > 0 {
                    window.withUnsafeMutableBufferPointer { w in
                        w.baseAddress!.update(from: w.baseAddress! + start, count: end - start)   // memmove
                    }
                    end -= start
                    start = 0
                }
                while end < need {
                    let want = min(window.count - end, expected - consumed - end)
                    let got: Int
                    do {
                        got = want > 0 ? try inflater.read(into: &window, at: end, count: want) : 0
                    } catch let LoupeDataError.compression(reason) {
                        throw PNGDecoder.fail("image data: \(reason)")
                    }
                    if got == 0 {
                        throw PNGDecoder.fail("image data is truncated: \(consumed + end) of \(expected) bytes")
                    }
                    end += got
                }
            }
            let filter = window[start]
            let from = start + 1
            window.withUnsafeBufferPointer { w in
                row.withUnsafeMutableBufferPointer { r in r.baseAddress!.update(from: w.baseAddress! + from, count: r.count) }
            }
            start += need
            consumed += need
            return filter
        }

        /// After the last row: the stream must end there (more data than IHDR implies is an error).
        func expectEnd() throws {
            do {
                var more = end > start
                if !more && !inflater.isAtEnd { more = try !inflater.read(1).isEmpty }
                if more {
                    throw PNGDecoder.fail("image data is longer than the \(expected) bytes IHDR implies")
                }
            } catch let LoupeDataError.compression(reason) {
                throw PNGDecoder.fail("image data: \(reason)")
            }
        }
    }

    /// Undoes row `line`'s filter in place: `row` holds its `n` bytes, `prior` the unfiltered row
    /// above (nil for the first row of a pass: zeros), `bpp` bytes per complete pixel (at least 1).
    static func unfilter(_ filter: UInt8, _ row: UnsafeMutablePointer<UInt8>, prior: UnsafePointer<UInt8>?, count n: Int,
                         bpp: Int, line: Int) throws {
        switch filter {
        case 0: break
        case 1: for i in bpp..<max(bpp, n) { row[i] = row[i] &+ row[i - bpp] }
        case 2:
            guard let prior else { break }
            for i in 0..<n { row[i] = row[i] &+ prior[i] }
        case 3:
            for i in 0..<n {
                let left = i >= bpp ? Int(row[i - bpp]) : 0
                let up = prior.map { Int($0[i]) } ?? 0
                row[i] = row[i] &+ UInt8((left + up) / 2)
            }
        case 4:
            for i in 0..<n {
                let a = i >= bpp ? Int(row[i - bpp]) : 0
                let b = prior.map { Int($0[i]) } ?? 0
                let c = i >= bpp ? prior.map { Int($0[i - bpp]) } ?? 0 : 0
                let p = a + b - c
                let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                let predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                row[i] = row[i] &+ UInt8(predictor)
            }
        default:
            throw fail("bad filter type \(filter) on row \(line)")
        }
    }

    /// Converts one unfiltered row of `count` pixels to gray (BT.601 luma, `channels` 1) or to RGB
    /// (`channels` 3, colour types 2, 3 and 6 only), alpha over black; `store(i, v)` gets sample i.
    static func convertRow(_ row: [UInt8], header h: Header, palette: [(UInt8, UInt8, UInt8)], paletteAlpha: [UInt8],
                           transparentKey: [Int]?, count: Int, channels: Int = 1, store: (Int, UInt8) -> Void) throws {
        let depth = h.bitDepth
        let maxValue = Double((1 << depth) - 1)
        func sample(_ index: Int) -> Int {
            switch depth {
            case 16: return Int(row[2 * index]) << 8 | Int(row[2 * index + 1])
            case 8: return Int(row[index])
            default:
                let bit = index * depth
                let byte = Int(row[bit >> 3])
                return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1)
            }
        }
        let toByte = SampleConversion.byte, luma = SampleConversion.luma
        for x in 0..<count {
            switch h.colorType {
            case 0:
                let v = sample(x)
                let transparent = transparentKey.map { $0[0] == v } ?? false
                store(x, transparent ? 0 : toByte(Double(v) / maxValue))
            case 2:
                let r = sample(3 * x), g = sample(3 * x + 1), b = sample(3 * x + 2)
                let transparent = transparentKey.map { $0 == [r, g, b] } ?? false
                if channels == 3 {
                    store(3 * x, transparent ? 0 : toByte(Double(r) / maxValue))
                    store(3 * x + 1, transparent ? 0 : toByte(Double(g) / maxValue))
                    store(3 * x + 2, transparent ? 0 : toByte(Double(b) / maxValue))
                } else {
                    store(x, transparent ? 0 : toByte(luma(Double(r), Double(g), Double(b)) / maxValue))
                }
            case 3:
                let i = sample(x)
                guard i < palette.count else { throw fail("palette index \(i) is beyond the \(palette.count) PLTE entries") }
                let (r, g, b) = palette[i]
                let a = i < paletteAlpha.count ? Double(paletteAlpha[i]) / 255 : 1
                if channels == 3 {
                    store(3 * x, toByte(Double(r) / 255 * a))
                    store(3 * x + 1, toByte(Double(g) / 255 * a))
                    store(3 * x + 2, toByte(Double(b) / 255 * a))
                } else {
                    store(x, toByte(luma(Double(r), Double(g), Double(b)) / 255 * a))
                }
            case 4:
                let v = sample(2 * x), a = sample(2 * x + 1)
                store(x, toByte(Double(v) / maxValue * Double(a) / maxValue))
            default:
                let r = sample(4 * x), g = sample(4 * x + 1), b = sample(4 * x + 2), a = sample(4 * x + 3)
                if channels == 3 {
                    let alpha = Double(a) / maxValue
                    store(3 * x, toByte(Double(r) / maxValue * alpha))
                    store(3 * x + 1, toByte(Double(g) / maxValue * alpha))
                    store(3 * x + 2, toByte(Double(b) / maxValue * alpha))
                } else {
                    store(x, toByte(luma(Double(r), Double(g), Double(b)) / maxValue * Double(a) / maxValue))
                }
            }
        }
    }
}

/// What a PNG decode borrows and gives back, so that decoding a small image allocates its output
/// only: zlib's inflate state (reset per stream, not set up and torn down), the inflated-data
/// window and the two row buffers. A decode holds its scratch alone from `take` to `give`; a few
/// are kept (one per thread decoding at once, in practice), and buffers past 128 KiB are not.
final class PNGScratch: @unchecked Sendable {
    private var inflaterState: Inflater?
    var window: [UInt8] = []
    var row: [UInt8] = []
    var previous: [UInt8] = []

    private static let pool = Mutex<[PNGScratch]>([])
    private static let kept = 16
    private static let largestKeptBuffer = 128 << 10

    static func take() -> PNGScratch { pool.withLock { $0.popLast() } ?? PNGScratch() }

    static func give(_ scratch: PNGScratch) {
        if scratch.window.count > largestKeptBuffer { scratch.window = [] }
        if scratch.row.capacity > largestKeptBuffer { scratch.row = []; scratch.previous = [] }
        scratch.inflaterState?.dropInput()
        pool.withLock { if $0.count < kept { $0.append(scratch) } }
    }

    /// An inflater over `input`: the kept one restarted, or a new one.
    func inflater(_ input: ArraySlice<UInt8>, maxOutput: Int) throws -> Inflater {
        if let kept = inflaterState, (try? kept.restart(input, maxOutput: maxOutput)) != nil { return kept }
        let created = try Inflater(input, format: .zlib, maxOutput: maxOutput)
        inflaterState = created
        return created
    }

    func takeWindow() -> [UInt8] {
        defer { window = [] }
        return window
    }
}
