import Testing
@testable import LoupeService

/// The reload planner and status builder, without a file system: file states are made up.
@Suite struct RepositoryPlannerTests {
    func file(_ inode: UInt64, mtime: Int64 = 1) -> FileIdentity {
        FileIdentity(device: 1, inode: inode, size: 100, mtimeNanoseconds: mtime, ctimeNanoseconds: mtime)
    }

    @Test func newVersionsAreLoadedNewestFirstUpToTheLatestLimit() {
        let plan = ReloadPlanner.plan(onDisk: [1: file(1), 2: file(2), 3: file(3)], served: [:], failures: [:],
                                      unloaded: false, policy: .latest(count: 1))
        #expect(plan == .versions(steps: [.load(3), .load(2), .load(1)], limit: 1, pinnedMissing: []))
    }

    @Test func anUnchangedServedFileIsKeptAndAChangedOneReloaded() {
        let plan = ReloadPlanner.plan(onDisk: [1: file(1), 2: file(2, mtime: 9)], served: [1: file(1), 2: file(2)], failures: [:],
                                      unloaded: false, policy: .all)
        #expect(plan == .versions(steps: [.load(2), .keep(1)], limit: .max, pinnedMissing: []))
    }

    @Test func aFailedFileIsNotRetriedUntilItChanges() {
        let failures: [Int: (identity: FileIdentity, reason: String)] = [2: (file(2), "checksum mismatch")]
        let same = ReloadPlanner.plan(onDisk: [1: file(1), 2: file(2)], served: [1: file(1)], failures: failures,
                                      unloaded: false, policy: .latest(count: 1))
        #expect(same == .versions(steps: [.failedBefore(2, reason: "checksum mismatch"), .keep(1)], limit: 1, pinnedMissing: []))
        let changed = ReloadPlanner.plan(onDisk: [1: file(1), 2: file(2, mtime: 5)], served: [1: file(1)], failures: failures,
                                         unloaded: false, policy: .latest(count: 1))
        #expect(changed == .versions(steps: [.load(2), .keep(1)], limit: 1, pinnedMissing: []))
    }

    @Test func specificPolicyListsPinnedVersionsThatAreMissing() {
        let plan = ReloadPlanner.plan(onDisk: [1: file(1), 3: file(3)], served: [:], failures: [:],
                                      unloaded: false, policy: .specific([1, 2]))
        #expect(plan == .versions(steps: [.load(1)], limit: .max, pinnedMissing: [2]))
    }

    @Test func unloadedGoneAndForgottenModels() {
        #expect(ReloadPlanner.plan(onDisk: [1: file(1), 2: file(2)], served: [1: file(1)], failures: [:], unloaded: true, policy: .all)
                == .unloaded(onDisk: [2, 1]))
        #expect(ReloadPlanner.plan(onDisk: nil, served: [1: file(1)], failures: [:], unloaded: false, policy: .all) == .serveWithoutFiles)
        #expect(ReloadPlanner.plan(onDisk: nil, served: [:], failures: [:], unloaded: false, policy: .all) == .forget)
    }

    @Test func statusOfAServingModelWithARefusedNewerVersion() {
        let refused = VersionStatus(version: 2, state: .unavailable, reason: "self-test failed", sha256: nil, failed: true)
        let s = ReloadPlanner.status(name: "m", policy: .latest(count: 1), onDisk: [1, 2, 3], serving: [1: "aa"], visited: [2: refused],
                                     missing: [], lastFailure: "version 2: self-test failed", pending: false)
        #expect(s.state == .ready && s.reason == "version 2: self-test failed")
        #expect(s.versions.map(\.version) == [3, 2, 1])
        #expect(s.versions.map(\.state) == [.unavailable, .unavailable, .ready])
        #expect(s.versions[0].reason == "not selected by the version policy latest")
        #expect(s.servedVersions == [1])
    }

    @Test func statusWhileTheOnlyFileSettles() {
        let settling = VersionStatus(version: 1, state: .loading, reason: "waiting for the file to settle", sha256: nil)
        let s = ReloadPlanner.status(name: "m", policy: .latest(count: 1), onDisk: [1], serving: [:], visited: [1: settling],
                                     missing: [], lastFailure: nil, pending: true)
        #expect(s.state == .loading && s.reason == "waiting for the file to settle")
        let empty = ReloadPlanner.status(name: "m", policy: .latest(count: 1), onDisk: [], serving: [:], visited: [:],
                                         missing: [], lastFailure: nil, pending: false)
        #expect(empty.state == .unavailable && empty.reason == "no version directory with a model.loupe")
    }

    @Test func statusOfVersionsServedFromMemoryAfterTheirFilesVanished() {
        let s = ReloadPlanner.status(name: "m", policy: .latest(count: 1), onDisk: [], serving: [1: "aa"], visited: [:],
                                     missing: [1], lastFailure: nil, pending: false)
        #expect(s.state == .ready && s.reason == ModelRepository.missingFileReason)
        #expect(s.versions.first?.fileMissing == true)
    }
}

/// Safe promotion's part of the planner: rolled-back file states and the primary/candidate arrangement.
@Suite struct PromotionPlannerTests {
    func file(_ inode: UInt64, mtime: Int64 = 1) -> FileIdentity {
        FileIdentity(device: 1, inode: inode, size: 100, mtimeNanoseconds: mtime, ctimeNanoseconds: mtime)
    }

    @Test func aRolledBackFileIsSkippedEvenWhenServedUntilItChanges() {
        let back: [Int: (identity: FileIdentity, reason: String)] = [3: (file(3), "accuracy")]
        let same = ReloadPlanner.plan(onDisk: [2: file(2), 3: file(3)], served: [2: file(2), 3: file(3)], failures: [:],
                                      unloaded: false, policy: .latest(count: 1), rolledBack: back)
        #expect(same == .versions(steps: [.rolledBack(3, reason: "accuracy"), .keep(2)], limit: 1, pinnedMissing: []))
        let rewritten = ReloadPlanner.plan(onDisk: [2: file(2), 3: file(3, mtime: 7)], served: [2: file(2)], failures: [:],
                                           unloaded: false, policy: .latest(count: 1), rolledBack: back)
        #expect(rewritten == .versions(steps: [.load(3), .keep(2)], limit: 1, pinnedMissing: []))
    }

    @Test func immediateModeAndFirstVersionsServeTheNewest() {
        #expect(ReloadPlanner.arrange(mode: .immediate, kept: [2, 3], heldPrimary: 2, canHold: true)
                == .init(primary: 3, candidate: nil, hold: false))
        #expect(ReloadPlanner.arrange(mode: .shadow, kept: [3], heldPrimary: nil, canHold: false)
                == .init(primary: 3, candidate: nil, hold: false))
        #expect(ReloadPlanner.arrange(mode: .canary, kept: [], heldPrimary: 2, canHold: true) == nil)
    }

    @Test func aNewerVersionIsACandidateBesideTheHeldPrimary() {
        // The policy (latest) kept only the new version: the primary is held beside it.
        #expect(ReloadPlanner.arrange(mode: .canary, kept: [3], heldPrimary: 2, canHold: true)
                == .init(primary: 2, candidate: 3, hold: true))
        // latest:2 kept both already.
        #expect(ReloadPlanner.arrange(mode: .shadow, kept: [2, 3], heldPrimary: 2, canHold: true)
                == .init(primary: 2, candidate: 3, hold: false))
        // The primary's file is gone (or it was rolled back): nothing to judge against, the newest serves.
        #expect(ReloadPlanner.arrange(mode: .shadow, kept: [3], heldPrimary: 2, canHold: false)
                == .init(primary: 3, candidate: nil, hold: false))
    }

    @Test func afterPromotionOrRollbackTheHeldVersionDecides() {
        // Promoted: the primary is the newest; no candidate.
        #expect(ReloadPlanner.arrange(mode: .canary, kept: [3], heldPrimary: 3, canHold: true)
                == .init(primary: 3, candidate: nil, hold: false))
        // The primary rolled back: an older version from disk serves.
        #expect(ReloadPlanner.arrange(mode: .canary, kept: [1], heldPrimary: 2, canHold: false)
                == .init(primary: 1, candidate: nil, hold: false))
    }
}
