import Testing
@testable import LoupeData

@Suite struct IDXTests {
    func images(_ n: Int, rows: Int = 2, cols: Int = 3) -> [UInt8] {
        IDXFile.encode(dimensions: [n, rows, cols], data: (0..<n * rows * cols).map { UInt8($0 % 256) })
    }
    func labels(_ n: Int) -> [UInt8] { IDXFile.encode(dimensions: [n], data: (0..<n).map { UInt8($0 % 10) }) }

    @Test func parsesPlainAndGzipped() throws {
        let raw = images(4)
        let plain = try IDXFile.parse(raw)
        #expect(plain.dimensions == [4, 2, 3])
        #expect(plain.data == (0..<24).map { UInt8($0) })
        let gz = try IDXFile.parse(Deflate.gzip(raw))
        #expect(gz == plain)
    }

    @Test func concatenatedGzipMembersAreRead() throws {
        let raw = images(3)
        let gz = Deflate.gzip(Array(raw[0..<10])) + Deflate.gzip(Array(raw[10...]))
        #expect(try IDXFile.parse(gz) == IDXFile.parse(raw))
    }

    @Test func rejectsBadMagic() {
        var raw = images(2)
        raw[0] = 1
        #expect(throws: LoupeDataError.self) { try IDXFile.parse(raw) }
        raw = images(2)
        raw[2] = 0x0d   // float elements
        expectReason(raw, contains: "element type")
        raw = images(2)
        raw[3] = 0
        expectReason(raw, contains: "dimensions")
    }

    @Test func rejectsTruncatedAndTrailingData() {
        let raw = images(5)
        expectReason(Array(raw.dropLast()), contains: "truncated")
        expectReason(Array(raw.prefix(9)), contains: "truncated")
        expectReason(Array(raw.prefix(2)), contains: "shorter")
        expectReason(raw + [0], contains: "unexpected data")
        expectReason(Deflate.gzip(Array(raw.dropLast(3))), contains: "truncated")
        let gz = Deflate.gzip(raw)
        expectReason(Array(gz.prefix(gz.count - 12)), contains: "truncated")
    }

    @Test func rejectsAbsurdDimensionsWithoutAllocating() {
        let raw = IDXFile.encode(dimensions: [60000, 60000, 60000], data: [])
        expectReason(raw, contains: "declare more than")
    }

    @Test func rejectsCorruptGzip() {
        var gz = Deflate.gzip(images(50))
        gz[gz.count / 2] ^= 0xff
        gz[gz.count / 2 + 1] ^= 0xff
        #expect(throws: LoupeDataError.self) { try IDXFile.parse(gz) }
    }

    @Test func loadsDirectoryAndChecksCounts() throws {
        let dir = try TempDir()
        try FileIO.writeAtomically(Deflate.gzip(images(6, rows: 4, cols: 4)), to: dir.path + "/train-images-idx3-ubyte.gz")
        try FileIO.writeAtomically(labels(6), to: dir.path + "/train-labels-idx1-ubyte")
        try FileIO.writeAtomically(images(2, rows: 4, cols: 4), to: dir.path + "/t10k-images.idx3-ubyte")
        try FileIO.writeAtomically(labels(3), to: dir.path + "/t10k-labels.idx1-ubyte")
        let train = try IDXDataset.load(directory: dir.path, split: .train)
        #expect(train.count == 6 && train.rows == 4 && train.cols == 4)
        #expect(train.labels == [0, 1, 2, 3, 4, 5])
        #expect(train.classCount == 6)
        let (a, b) = train.splitLast(fraction: 0.34)
        #expect(a.count == 4 && b.count == 2 && b.labels == [4, 5])
        #expect(b.images == Array(train.images[64...]))
        do {
            _ = try IDXDataset.load(directory: dir.path, split: .test)
            Issue.record("count mismatch not detected")
        } catch let error as LoupeDataError {
            #expect(error.description.contains("2 images"))
            #expect(error.description.contains("3 labels"))
        }
    }

    @Test func missingFilesAndDirectoriesAreNamed() throws {
        let dir = try TempDir()
        do {
            _ = try IDXDataset.load(directory: dir.path, split: .train)
            Issue.record("expected an error")
        } catch let error as LoupeDataError {
            #expect(error.description.contains("train-images-idx3-ubyte"))
        }
        #expect(throws: LoupeDataError.self) { try IDXDataset.load(directory: dir.path + "/nope", split: .train) }
    }

    @Test func swappedFilesAreRejected() throws {
        let dir = try TempDir()
        try FileIO.writeAtomically(labels(6), to: dir.path + "/train-images-idx3-ubyte")
        try FileIO.writeAtomically(labels(6), to: dir.path + "/train-labels-idx1-ubyte")
        do {
            _ = try IDXDataset.load(directory: dir.path, split: .train)
            Issue.record("expected an error")
        } catch let error as LoupeDataError {
            #expect(error.description.contains("3 dimensions"))
        }
    }

    func expectReason(_ raw: [UInt8], contains text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try IDXFile.parse(raw)
            Issue.record("expected an error containing '\(text)'", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(text), "\(error)", sourceLocation: sourceLocation)
        }
    }
}
