/// One split of an IDX dataset (MNIST layout): `count` images of `rows`×`cols`×`channels` UInt8
/// values, row-major (h, w, c), image after image, and one UInt8 label per image. Gray sets are
/// rank-3 image files (count, rows, cols); colour sets are rank-4 (count, rows, cols, channels).
public struct IDXDataset: Sendable, Equatable {
    public enum Split: String, Sendable, CaseIterable {
        case train
        case test

        /// The file-name prefixes tried for this split, in order.
        var prefixes: [String] {
            switch self {
            case .train: return ["train"]
            case .test: return ["t10k", "test"]
            }
        }
    }

    public var images: [UInt8]
    public var labels: [UInt8]
    public var count: Int
    public var rows: Int
    public var cols: Int
    /// 1 for a rank-3 (gray) images file.
    public var channels: Int

    public init(images: [UInt8], labels: [UInt8], count: Int, rows: Int, cols: Int, channels: Int = 1) {
        precondition(images.count == count * rows * cols * channels && labels.count == count)
        self.images = images
        self.labels = labels
        self.count = count
        self.rows = rows
        self.cols = cols
        self.channels = channels
    }

    /// Values per image (`rows * cols * channels`).
    public var pixelsPerImage: Int { rows * cols * channels }

    /// The image shape [rows, cols, channels], as an architecture's `inputShape` names it.
    public var imageShape: [Int] { [rows, cols, channels] }

    /// "28×28" for gray images, "32×32×3" otherwise (for messages).
    public var shapeDescription: String { channels == 1 ? "\(rows)×\(cols)" : "\(rows)×\(cols)×\(channels)" }

    /// Largest label + 1 (at least 1).
    public var classCount: Int { Int(labels.max() ?? 0) + 1 }

    /// Loads `split` from a directory holding the standard file names
    /// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
    /// `t10k-labels-idx1-ubyte`; also the `images.idx3-ubyte` spelling), each optionally `.gz`;
    /// colour images as `…-images-idx4-ubyte` (count, rows, cols, channels) when no idx3 file is there.
    public static func load(directory: String, split: Split) throws -> IDXDataset {
        if !FileIO.isDirectory(directory) {
            throw LoupeDataError.io(path: directory, operation: "open dataset directory", errno: FileIO.isRegularFile(directory) ? 20 /* ENOTDIR */ : 2 /* ENOENT */)
        }
        let imagesPath: String
        do {
            imagesPath = try locate(directory: directory, split: split, kind: "images", rank: 3)
        } catch {
            guard let colour = try? locate(directory: directory, split: split, kind: "images", rank: 4) else { throw error }
            imagesPath = colour
        }
        let labelsPath = try locate(directory: directory, split: split, kind: "labels", rank: 1)
        let images = try IDXFile.read(path: imagesPath)
        let labels = try IDXFile.read(path: labelsPath)
        return try make(images: images, labels: labels, imagesPath: imagesPath, labelsPath: labelsPath)
    }

    /// Builds a dataset from two parsed IDX files, checking they agree.
    static func make(images: IDXFile, labels: IDXFile, imagesPath: String, labelsPath: String) throws -> IDXDataset {
        guard images.dimensions.count == 3 || images.dimensions.count == 4 else {
            throw LoupeDataError.invalidIDX(path: imagesPath, reason: "an images file needs 3 dimensions (count, rows, cols) or 4 (count, rows, cols, channels), this one has \(images.dimensions.count)")
        }
        guard labels.dimensions.count == 1 else {
            throw LoupeDataError.invalidIDX(path: labelsPath, reason: "a labels file needs 1 dimension (count), this one has \(labels.dimensions.count)")
        }
        let (n, rows, cols) = (images.dimensions[0], images.dimensions[1], images.dimensions[2])
        let channels = images.dimensions.count == 4 ? images.dimensions[3] : 1
        guard rows > 0, cols > 0, channels > 0 else {
            throw LoupeDataError.invalidIDX(path: imagesPath, reason: "images are \(images.dimensions.dropFirst().map(String.init).joined(separator: "×"))")
        }
        guard labels.dimensions[0] == n else {
            throw LoupeDataError.datasetMismatch("'\(imagesPath)' holds \(n) images but '\(labelsPath)' holds \(labels.dimensions[0]) labels")
        }
        return IDXDataset(images: images.data, labels: labels.data, count: n, rows: rows, cols: cols, channels: channels)
    }

    static func locate(directory: String, split: Split, kind: String, rank: Int) throws -> String {
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        for prefix in split.prefixes {
            for sep in ["-", "."] {
                let name = "\(prefix)-\(kind)\(sep)idx\(rank)-ubyte"
                for suffix in ["", ".gz"] where FileIO.isRegularFile(base + name + suffix) {
                    return base + name + suffix
                }
            }
        }
        throw LoupeDataError.datasetNotFound(directory: directory, missing: "\(split.prefixes[0])-\(kind)-idx\(rank)-ubyte[.gz]")
    }

    /// The first `count` examples (or all, when fewer).
    public func prefix(_ count: Int) -> IDXDataset {
        let n = min(count, self.count)
        return IDXDataset(images: Array(images[0..<n * pixelsPerImage]), labels: Array(labels[0..<n]), count: n, rows: rows, cols: cols, channels: channels)
    }

    /// Splits off the last `fraction` of the examples (as Keras's `validation_split` does):
    /// returns (first part, last part).
    public func splitLast(fraction: Double) -> (IDXDataset, IDXDataset) {
        let held = Int((Double(count) * fraction).rounded(.down))
        let kept = count - held
        let p = pixelsPerImage
        let a = IDXDataset(images: Array(images[0..<kept * p]), labels: Array(labels[0..<kept]), count: kept, rows: rows, cols: cols, channels: channels)
        let b = IDXDataset(images: Array(images[kept * p..<count * p]), labels: Array(labels[kept..<count]), count: held, rows: rows, cols: cols, channels: channels)
        return (a, b)
    }

    /// The sets one after another; they must hold images of one shape (`names` say which in the error).
    public static func concatenated(_ sets: [IDXDataset], names: [String]) throws -> IDXDataset {
        guard let first = sets.first else { throw LoupeDataError.datasetMismatch("no dataset given") }
        for (set, name) in zip(sets, names) where set.imageShape != first.imageShape {
            throw LoupeDataError.datasetMismatch("'\(name)' holds \(set.shapeDescription) images but '\(names[0])' holds \(first.shapeDescription); sets trained together need one image shape")
        }
        if sets.count == 1 { return first }
        return IDXDataset(images: sets.flatMap(\.images), labels: sets.flatMap(\.labels), count: sets.reduce(0) { $0 + $1.count },
                          rows: first.rows, cols: first.cols, channels: first.channels)
    }

    /// Images as Float32 in [0, 1] (pixel / 255), the normalisation Loupe's models use.
    public func normalizedImages() -> [Float] {
        Normalization.standard.apply(images)
    }
}

/// A parsed IDX file of unsigned bytes (type code 0x08): its dimensions and data.
public struct IDXFile: Sendable, Equatable {
    public var dimensions: [Int]
    public var data: [UInt8]

    /// Largest accepted data size (1 GiB): bounds memory for a corrupt header.
    public static let maxDataBytes = 1 << 30

    /// Reads and parses an IDX file, gunzipping it when it starts with the gzip magic.
    public static func read(path: String) throws -> IDXFile {
        let raw = try FileIO.readFile(path)
        do {
            return try parse(raw)
        } catch let LoupeDataError.invalidIDX(_, reason) {
            throw LoupeDataError.invalidIDX(path: path, reason: reason)
        } catch let LoupeDataError.compression(reason) {
            throw LoupeDataError.invalidIDX(path: path, reason: "gzip data is invalid: \(reason)")
        }
    }

    /// Parses IDX bytes (plain or gzipped). Only as many bytes as the header declares are
    /// inflated (plus one to detect trailing data), never more than `maxDataBytes`.
    public static func parse(_ raw: [UInt8]) throws -> IDXFile {
        let source: ByteSource
        if raw.count >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
            source = .gzip(try Inflater(raw, format: .gzip, maxOutput: maxDataBytes + 4 + 4 * 255 + 1))
        } else {
            source = .plain(raw, 0)
        }
        var src = source
        let magic = try src.read(4)
        guard magic.count == 4 else { throw invalid("the file is shorter than the 4-byte magic number") }
        guard magic[0] == 0, magic[1] == 0 else {
            throw invalid("bad magic number \(hex(magic)) (expected 00 00 08 0N)")
        }
        guard magic[2] == 0x08 else {
            throw invalid("element type 0x\(String(magic[2], radix: 16)) is not supported (only unsigned bytes, 0x08)")
        }
        let rank = Int(magic[3])
        guard (1...4).contains(rank) else { throw invalid("\(rank) dimensions (expected 1 to 4)") }
        let dimBytes = try src.read(4 * rank)
        guard dimBytes.count == 4 * rank else { throw invalid("truncated: the header declares \(rank) dimensions but the file ends inside them") }
        var dims: [Int] = []
        var total = 1
        for i in 0..<rank {
            let d = Int(dimBytes[4 * i]) << 24 | Int(dimBytes[4 * i + 1]) << 16 | Int(dimBytes[4 * i + 2]) << 8 | Int(dimBytes[4 * i + 3])
            dims.append(d)
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maxDataBytes else {
                throw invalid("dimensions \(dims.map(String.init).joined(separator: "×"))… declare more than \(maxDataBytes) bytes")
            }
            total = product
        }
        let data = try src.read(total)
        guard data.count == total else {
            throw invalid("truncated: dimensions \(dims.map(String.init).joined(separator: "×")) need \(total) data bytes, the file has \(data.count)")
        }
        let extra = try src.read(1)
        guard extra.isEmpty else {
            throw invalid("unexpected data after the \(total) bytes the dimensions \(dims.map(String.init).joined(separator: "×")) declare")
        }
        return IDXFile(dimensions: dims, data: data)
    }

    /// Serialises an unsigned-byte IDX file (for tests and tools).
    public static func encode(dimensions: [Int], data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
        for d in dimensions { out += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
        return out + data
    }

    private static func invalid(_ reason: String) -> LoupeDataError { .invalidIDX(path: "<memory>", reason: reason) }
    private static func hex(_ b: [UInt8]) -> String { b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ") }

    private enum ByteSource {
        case plain([UInt8], Int)
        case gzip(Inflater)

        mutating func read(_ n: Int) throws -> [UInt8] {
            switch self {
            case let .plain(bytes, offset):
                let end = min(bytes.count, offset + n)
                self = .plain(bytes, end)
                return Array(bytes[offset..<end])
            case let .gzip(inflater):
                // In steps of at most 16 MiB: memory follows the bytes that inflate, not the count a header claims.
                var out: [UInt8] = []
                out.reserveCapacity(min(n, 64 << 20))   // Fashion-MNIST's 47 MB in one allocation
                while out.count < n {
                    let chunk = try inflater.read(min(n - out.count, 16 << 20))
                    out += chunk
                    if chunk.isEmpty { break }
                }
                return out
            }
        }
    }
}
