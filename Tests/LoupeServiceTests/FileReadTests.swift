import Testing

/// LoupeSystem's whole-file read (Files.swift), which the configuration loader, the process metrics
/// and the CPU count (cgroup files) all call: whole, bounded, and a failure that names the call.
@Suite struct FileReadTests {
    @Test func readsTheWholeFileUpToTheLimit() throws {
        let dir = try TempDir()
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }   // more than one 64 KiB read
        try dir.write("f", bytes)
        #expect(try readFileBytes(dir.path + "/f") == bytes)
        #expect(try readFileBytes(dir.path + "/f", limit: 70_000) == Array(bytes[..<70_000]))
        try dir.write("t", "0::/\n")
        #expect(try readTextFile(dir.path + "/t", limit: 64) == "0::/\n")
        #expect(try readFileBytes(dir.path + "/t", limit: 0) == [])
    }

    @Test func aFailureNamesTheCallAndThePath() throws {
        let dir = try TempDir()
        #expect { try readFileBytes(dir.path + "/missing") } throws: { error in
            "\(error)" == "open(\(dir.path)/missing): No such file or directory"
        }
        #expect { try readFileBytes(dir.path) } throws: { error in   // a directory opens, then read fails
            "\(error)".hasPrefix("read(\(dir.path)): ")
        }
    }
}
