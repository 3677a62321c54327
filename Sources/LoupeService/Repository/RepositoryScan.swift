// The disk side of a reload pass: what the repository holds (model directories, version
// directories, their model files and identities), the settle check for files still being written,
// and warnings logged once.
import Logging
import LoupeData

extension ModelRepository {
    func scan(root: String) throws -> [String: [Int: Candidate]] {
        var unreadable: Set<String> = []
        return try scan(root: root, unreadable: &unreadable)
    }

    /// `unreadable`: the models whose directory exists but could not be listed (EIO, EACCES): not
    /// in the result, and not gone either — a pass leaves their state as it was.
    func scan(root: String, unreadable: inout Set<String>) throws -> [String: [Int: Candidate]] {
        var result: [String: [Int: Candidate]] = [:]
        for entry in try RepositoryFileSystem.list(root) {
            guard ModelRepositoryLayout.isValidName(entry) else {
                if !entry.hasPrefix(".") { warnOnce(root + "/" + entry, "ignoring \"\(entry)\": not a valid model name") }
                continue
            }
            let directory = root + "/" + entry
            guard let real = RepositoryFileSystem.realPath(directory) else { continue }
            guard RepositoryFileSystem.isInside(real, root: root) else {
                warnOnce(directory, "ignoring \(directory): it leads outside the repository (to \(real))")
                continue
            }
            guard RepositoryFileSystem.kind(real) == .directory else { continue }
            var versions: [Int: Candidate] = [:]
            let entries: [String]
            do { entries = try RepositoryFileSystem.list(real) } catch {
                warnOnce(directory, "cannot list \(directory): \(error); model \(entry) keeps its previous state (what serves, load failures, rollbacks) until it can be read")
                unreadable.insert(entry)
                continue
            }
            control.withLock { _ = $0.warned.remove(directory) }   // readable again: a later failure is logged again
            for versionEntry in entries {
                guard let version = ModelRepositoryLayout.parseVersion(versionEntry) else { continue }
                let file = ModelRepositoryLayout.modelFile(in: real + "/" + versionEntry)
                guard let realFile = RepositoryFileSystem.realPath(file) else { continue }   // not written yet
                guard RepositoryFileSystem.isInside(realFile, root: root) else {
                    warnOnce(file, "ignoring \(file): it leads outside the repository (to \(realFile))")
                    continue
                }
                guard RepositoryFileSystem.kind(realFile) == .regularFile,
                      let identity = RepositoryFileSystem.identity(realFile) else {
                    warnOnce(file, "ignoring \(file): not a regular file")
                    continue
                }
                versions[version] = Candidate(path: realFile, identity: identity)
            }
            result[entry] = versions
        }
        return result
    }

    /// Logs `message` the first time `key` is seen (per process; settled versions forget theirs).
    func warnOnce(_ key: String, level: Logger.Level = .warning, _ message: String) {
        let first = control.withLock { $0.warned.insert(key).inserted }
        if first { logger.log(level: level, "\(message)") }
    }

    /// nil when the file state has settled (unchanged for `stable_after`), else the seconds
    /// left until it may have.
    func settleTimeLeft(_ key: VersionKey, _ identity: FileIdentity) -> Double? {
        let settle = Int64(configuration.stableAfterSeconds * 1e9)
        guard settle > 0 else { return nil }
        let now = RepositoryFileSystem.nowNanoseconds()
        let lastChange = max(identity.mtimeNanoseconds, identity.ctimeNanoseconds)
        if lastChange <= now, now - lastChange >= settle { return nil }
        // Not quiet by its timestamps (or they lie in the future): require the same state to be
        // seen for `settle` across passes.
        let since: Int64 = control.withLock { c in
            if let seen = c.observed[key], seen.identity == identity { return seen.since }
            c.observed[key] = (identity, now)
            return now
        }
        if now - since >= settle { return nil }
        let byTimestamp = lastChange <= now ? settle - (now - lastChange) : settle
        return Double(min(byTimestamp, settle - (now - since))) / 1e9
    }
}
