// What a failed or killed save leaves behind: a full disk changes nothing (no history.json
// beside the old model), and a kill -9 mid-save leaves temp files the next start removes.
import Glibc
import Testing
@testable import LoupeData

private func canMountTmpfs() -> Bool { getuid() == 0 && access("/bin/mount", X_OK) == 0 }

/// A pid that no longer runs: a child that has exited and been reaped.
private func deadPid() -> pid_t {
    var pid = pid_t()
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
    defer { free(argv[0]) }
    posix_spawn(&pid, "/bin/true", nil, nil, argv, environ)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return pid
}

@Suite(.serialized) struct SaveFaultTests {
    @Test(.enabled(if: canMountTmpfs(), "needs root to mount a small tmpfs (a full disk)"))
    func aFullDiskLeavesTheOldModelAndHistoryAsTheyWere() throws {
        let dir = try TempDir()
        guard runProcess(["/bin/mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir.path]).status == 0 else {
            Issue.record("mount failed"); return
        }
        defer { _ = runProcess(["/bin/umount", dir.path]) }
        let model = dir.path + "/m.loupe", history = dir.path + "/m.history.json"
        try FileIO.writeAtomically([([1, 2, 3], model), (Array("old".utf8), history)])
        // The new model does not fit: the write fails and both old files are untouched.
        #expect(throws: LoupeDataError.self) {
            try FileIO.writeAtomically([([UInt8](repeating: 7, count: 200_000), model), (Array("new".utf8), history)])
        }
        #expect(try FileIO.readFile(model) == [1, 2, 3])
        #expect(try FileIO.readFile(history) == Array("old".utf8))
        #expect(dir.files().sorted() == ["m.history.json", "m.loupe"], "no temp file left: \(dir.files())")
        // The same for a publish into a repository on the full disk: no version appears.
        #expect(throws: LoupeDataError.self) {
            _ = try ModelRepositoryLayout.publish(model: [UInt8](repeating: 7, count: 200_000), history: Array("h".utf8), root: dir.path, name: "x")
        }
        #expect(ModelRepositoryLayout.versions(root: dir.path, name: "x").isEmpty)
        #expect(FileIO.removeStaleTemporaries(in: dir.path + "/x").isEmpty)
    }

    @Test func staleTemporariesOfDeadProcessesAreRemovedAndNothingElse() throws {
        let root = try TempDir()
        let dead = deadPid(), alive = getpid()
        let dir = root.path + "/fashion"
        try FileIO.createDirectories(dir + "/1")
        try FileIO.createDirectories(dir + "/.tmp-\(dead)-a1b2c3")
        try FileIO.writeAtomically(Array("half".utf8), to: dir + "/.tmp-\(dead)-a1b2c3/model.loupe")
        let keep = ["1/model.loupe", "1/history.json", "1/model.loupe.\(alive).Zz9Yy8.tmp", "1/notes.tmp", "1/x.12.ab.tmp"]
        let stale = ["1/model.loupe.\(dead).Qw3Er4.tmp", "1/history.json.\(dead).aaaaaa.tmp"]
        for name in keep + stale {
            let fd = open(dir + "/" + name, O_CREAT | O_WRONLY, 0o644); close(fd)
        }
        let removed = ModelRepositoryLayout.removeStaleTemporaries(root: root.path).sorted()
        #expect(removed == ([dir + "/.tmp-\(dead)-a1b2c3"] + stale.map { dir + "/" + $0 }).sorted())
        for name in keep { #expect(FileIO.isRegularFile(dir + "/" + name), "\(name) was removed") }
        #expect(!FileIO.isDirectory(dir + "/.tmp-\(dead)-a1b2c3"))
        for name in keep { unlink(dir + "/" + name) }
        rmdir(dir + "/1"); rmdir(dir)
    }

    @Test func tempNamesCarryThePidOfTheWriter() {
        #expect(FileIO.temporaryTemplate(for: "/a/m.loupe") == "/a/m.loupe.\(getpid()).XXXXXX.tmp")
        #expect(FileIO.temporaryOwner("m.loupe.123.AbC9zZ.tmp") == 123)
        #expect(FileIO.temporaryOwner(".tmp-77-Ab12Cd") == 77)
        #expect(FileIO.temporaryOwner("m.loupe.XXXXXX.tmp") == nil)
        #expect(FileIO.temporaryOwner("m.tmp") == nil)
        #expect(FileIO.temporaryOwner(".tmp-abc-123456") == nil)
    }
}
