/// What a JPEG's marker segments say before its first scan (ITU-T T.81 Annex B): the frame
/// (size, precision, components and their sampling, coding process), the first scan's component
/// count, and the Exif orientation. A pure parser over bytes: it walks the segments up to SOS
/// and reads nothing of the entropy-coded data, so the decoder can refuse a bad or oversized
/// image before libjpeg-turbo allocates anything.
struct JPEGHeader: Equatable {
    struct Component: Equatable {
        var id: UInt8
        /// Horizontal and vertical sampling factors, 1…4.
        var h: Int
        var v: Int
    }

    /// The SOF marker's low nibble: 0 baseline, 1 extended sequential, 2 progressive,
    /// 3 lossless; +4 hierarchical (differential); +8 arithmetic coding.
    var frameType: Int
    var width: Int
    var height: Int
    /// Bits per sample (8 for every JPEG a camera or browser writes; 12 and 16 exist).
    var precision: Int
    var components: [Component]
    /// Components in the first scan; fewer than `components` means the file has several scans.
    var firstScanComponents: Int
    /// Exif orientation 1…8 (1 when the file has no Exif APP1 or no valid tag 0x0112).
    var orientation: Int

    var isProgressive: Bool { frameType & 3 == 2 }
    var isLossless: Bool { frameType & 3 == 3 }
    var isHierarchical: Bool { frameType & 4 != 0 }
    /// libjpeg keeps every coefficient of the image in memory when the data comes in several scans.
    var hasMultipleScans: Bool { isProgressive || firstScanComponents < components.count }

    static func fail(_ reason: String) -> LoupeDataError { .invalidImage(format: "JPEG", reason: reason) }

    /// Parses the segments from SOI up to the first SOS.
    static func parse(_ bytes: [UInt8]) throws -> JPEGHeader {
        guard bytes.count >= 2, bytes[0] == 0xFF, bytes[1] == 0xD8 else { throw fail("it does not start with SOI (FF D8)") }
        var pos = 2
        var frame: JPEGHeader?
        var orientation: Int?
        while true {
            guard pos < bytes.count else {
                throw fail(frame == nil ? "the file ends before its frame header (SOF); it is truncated"
                                        : "the file ends before its first scan (SOS); it is truncated")
            }
            guard bytes[pos] == 0xFF else {
                throw fail("expected a marker at byte \(pos), found 0x\(hex(bytes[pos]))")
            }
            // Any number of 0xFF fill bytes may precede a marker.
            while pos < bytes.count && bytes[pos] == 0xFF { pos += 1 }
            guard pos < bytes.count else { throw fail("the file ends inside a marker; it is truncated") }
            let marker = bytes[pos]
            pos += 1
            switch marker {
            case 0x01: continue                                // TEM: no length
            case 0x00, 0xD0...0xD8:
                throw fail("unexpected marker FF \(hex(marker)) at byte \(pos - 2) before the first scan")
            case 0xD9:
                throw fail("the image ends (EOI) before any scan; there is no image data")
            default: break
            }
            guard bytes.count - pos >= 2 else { throw fail("the file ends inside the \(name(marker)) segment; it is truncated") }
            let length = Int(bytes[pos]) << 8 | Int(bytes[pos + 1])
            guard length >= 2 else { throw fail("the \(name(marker)) segment at byte \(pos - 2) has length \(length)") }
            guard bytes.count - pos >= length else {
                throw fail("the file ends inside the \(name(marker)) segment (\(length) bytes declared, \(bytes.count - pos) present); it is truncated")
            }
            let body = bytes[(pos + 2)..<(pos + length)]
            pos += length
            switch marker {
            case 0xC0...0xCF where marker != 0xC4 && marker != 0xC8 && marker != 0xCC:
                guard frame == nil else { throw fail("more than one frame header (SOF)") }
                frame = try parseFrame(body, type: Int(marker & 0x0F))
            case 0xE1 where orientation == nil:
                orientation = ExifOrientation.parse(app1: body)
            case 0xDA:
                guard var header = frame else { throw fail("a scan (SOS) comes before the frame header (SOF)") }
                guard let count = body.first, count >= 1, count <= 4, body.count == 4 + 2 * Int(count) else {
                    throw fail("the scan header (SOS) is malformed")
                }
                header.firstScanComponents = Int(count)
                header.orientation = orientation ?? 1
                return header
            default:
                break                                          // tables, APPn, COM: libjpeg reads them
            }
        }
    }

    static func parseFrame(_ body: ArraySlice<UInt8>, type: Int) throws -> JPEGHeader {
        let b = Array(body)
        guard b.count >= 6 else { throw fail("the frame header (SOF) is \(b.count) bytes, too short") }
        let precision = Int(b[0])
        let height = Int(b[1]) << 8 | Int(b[2])
        let width = Int(b[3]) << 8 | Int(b[4])
        let count = Int(b[5])
        guard count >= 1, b.count == 6 + 3 * count else {
            throw fail("the frame header (SOF) declares \(count) components in \(b.count) bytes")
        }
        guard width > 0 else { throw fail("the frame header declares width 0") }
        guard height > 0 else { throw fail("the frame header declares height 0 (a height set later by DNL is not supported)") }
        var components: [Component] = []
        for i in 0..<count {
            let h = Int(b[7 + 3 * i] >> 4), v = Int(b[7 + 3 * i] & 0x0F)
            guard (1...4).contains(h), (1...4).contains(v) else {
                throw fail("component \(i) has sampling factors \(h)×\(v); each must be 1…4")
            }
            components.append(Component(id: b[6 + 3 * i], h: h, v: v))
        }
        return JPEGHeader(frameType: type, width: width, height: height, precision: precision, components: components,
                          firstScanComponents: count, orientation: 1)
    }

    static func name(_ marker: UInt8) -> String {
        switch marker {
        case 0xC4: return "DHT"
        case 0xDB: return "DQT"
        case 0xDA: return "SOS"
        case 0xDD: return "DRI"
        case 0xFE: return "COM"
        case 0xC0...0xCF: return "SOF\(marker & 0x0F)"
        case 0xE0...0xEF: return "APP\(marker & 0x0F)"
        default: return "FF \(hex(marker))"
        }
    }

    static func hex(_ b: UInt8) -> String { let s = String(b, radix: 16, uppercase: true); return s.count == 1 ? "0" + s : s }
}

/// The orientation tag (0x0112) of IFD0 in an Exif APP1 segment (Exif 2.32 §4.5.4, TIFF 6.0
/// §2): "Exif\0\0", then a TIFF header ("II" little- or "MM" big-endian, 42, IFD0 offset) and
/// IFD0's 12-byte entries. Pure and total: anything malformed or truncated gives nil (the image
/// is shown as stored, as browsers do), never a crash or a read past the segment.
enum ExifOrientation {
    static func parse(app1 body: ArraySlice<UInt8>) -> Int? {
        let exif: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]   // "Exif\0\0"
        guard body.starts(with: exif) else { return nil }
        return parse(tiff: body.dropFirst(6))
    }

    /// `tiff` starts at the TIFF header; offsets in it count from there.
    static func parse(tiff: ArraySlice<UInt8>) -> Int? {
        let t = Array(tiff)
        guard t.count >= 8 else { return nil }
        let little: Bool
        switch (t[0], t[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ i: Int) -> Int? {
            guard i >= 0, i <= t.count - 2 else { return nil }
            return little ? Int(t[i]) | Int(t[i + 1]) << 8 : Int(t[i]) << 8 | Int(t[i + 1])
        }
        func u32(_ i: Int) -> Int? {
            guard let a = u16(i), let b = u16(i + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for k in 0..<count {
            let entry = ifd + 2 + 12 * k
            guard let tag = u16(entry) else { return nil }
            guard tag == 0x0112 else { continue }
            // SHORT (type 3), count 1, the value in the first two bytes of the value field.
            guard u16(entry + 2) == 3, u32(entry + 4) == 1, let value = u16(entry + 8), (1...8).contains(value) else { return nil }
            return value
        }
        return nil
    }
}
