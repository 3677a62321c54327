// Writing captured data, on the capture queue (see Capture.swift): every `capture.flush_interval_s`
// (and at shutdown) the records that got a label or waited past `feedback.max_age_s` are written
// as one new set per model and input shape — built in a temp directory and renamed into place, the
// oldest sets deleted first to stay under `capture.max_bytes`; a write that fails stops capture.
// The set's file contents are CaptureSetFiles.swift.
import Dispatch
import Glibc
import LoupeData

extension CaptureStore {
    /// Flushes every `capture.flush_interval_s` until capture stops (from `start`).
    func scheduleFlush() {
        queue.asyncAfter(deadline: .now() + configuration.flushIntervalSeconds) { [weak self] in
            guard let self else { return }
            self.flushNow(final: false)
            if !self.state.withLock({ $0.stopped }) { self.scheduleFlush() }
        }
    }

    /// Writes what is ready now (and, when `final`, everything pending, unlabelled). Blocks until done.
    func flush(final: Bool) {
        guard isEnabled else { return }
        queue.sync { flushNow(final: final) }
    }

    private func flushNow(final: Bool) {
        let now = Double(monotonicNanoseconds()) / 1e9
        let batch: [Record] = state.withLock { s in
            guard !s.stopped else { return [] }
            var out = s.ready
            s.ready = []
            // Pending records whose label did not come in time are written unlabelled.
            var keep: [String] = []
            for id in s.order {
                guard let records = s.pending[id] else { continue }
                if final || now - (records.first?.at ?? now) > configuration.labelWaitSeconds {
                    out += records
                    s.pending[id] = nil
                } else {
                    keep.append(id)
                }
            }
            s.order = keep
            return out
        }
        guard !batch.isEmpty else { return }
        defer {
            let size = batch.reduce(0) { $0 + Self.bufferedSize(pixels: $1.pixels.count, images: 1) }
            state.withLock { $0.bufferedBytes = max(0, $0.bufferedBytes - size) }
        }
        var byModel: [String: [Record]] = [:]
        for r in batch { byModel[r.model, default: []].append(r) }
        for (model, records) in byModel.sorted(by: { $0.key < $1.key }) {
            // A model whose input shape changed between versions: one set per shape.
            var byShape: [[Int]: [Record]] = [:]
            for r in records { byShape[r.shape, default: []].append(r) }
            for (_, group) in byShape.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                do {
                    try writeSet(model: model, records: group)
                } catch {
                    stop(because: error)
                    return
                }
            }
        }
    }

    private func stop(because error: any Error) {
        writeErrors.add(1, ordering: .relaxed)
        state.withLock { s in
            s.stopped = true
            s.pending = [:]; s.order = []; s.ready = []; s.bufferedBytes = 0
        }
        logger.error("capture stopped: writing a captured set failed; requests are unaffected, fix the volume and restart to capture again",
                     metadata: ["error": "\(error)", "dir": "\(configuration.directory)"])
    }

    private func writeSet(model: String, records: [Record]) throws {
        let (files, labelled, unlabelled) = Self.setFiles(model: model, records: records)
        let total = files.reduce(0) { $0 + $1.bytes.count }
        guard total <= configuration.maxBytes else {
            // One flush larger than the whole allowance: split it.
            let half = records.count / 2
            guard half > 0 else { return }
            try writeSet(model: model, records: Array(records[..<half]))
            try writeSet(model: model, records: Array(records[half...]))
            return
        }
        let parent = configuration.directory + "/" + model
        try FileIO.createDirectories(parent)
        // Rotation: delete the oldest sets until this one fits under capture.max_bytes.
        var doomed: [String] = []
        let name: String = state.withLock { s in
            var used = s.sets.reduce(0) { $0 + $1.bytes }
            while used + total > configuration.maxBytes, !s.sets.isEmpty {
                let oldest = s.sets.removeFirst()
                used -= oldest.bytes
                doomed.append(oldest.path)
            }
            s.sequence += 1
            return Self.setName(wallClock: wallClockSeconds(), sequence: s.sequence)
        }
        for path in doomed {
            for f in (try? RepositoryFileSystem.list(path)) ?? [] { unlink(path + "/" + f) }
            rmdir(path)
            logger.info("capture: removed the oldest set to stay under capture.max_bytes", metadata: ["set": "\(path)"])
        }
        var template = Array("\(parent)/.tmp-\(getpid())-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw LoupeDataError.io(path: parent, operation: "create temp directory", errno: errno)
        }
        let temp = String(cString: made)
        do {
            try FileIO.writeAtomically(files.map { ($0.bytes, temp + "/" + $0.name) })
            var final = parent + "/" + name
            var attempts = 0
            while rename(temp, final) != 0 {
                let error = errno
                // A set of this name is there already (a restart within the same second starts the sequence
                // again at 1, or the clock went back): take the next sequence number. rename(2) never replaces
                // a non-empty directory, so no set is lost; before, this stopped capture.
                attempts += 1
                guard error == ENOTEMPTY || error == EEXIST, attempts < 100_000 else {
                    throw LoupeDataError.io(path: final, operation: "rename", errno: error)
                }
                final = parent + "/" + state.withLock { s in
                    s.sequence += 1
                    return Self.setName(wallClock: wallClockSeconds(), sequence: s.sequence)
                }
            }
            let dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 { _ = fsync(dfd); close(dfd) }
            state.withLock { $0.sets.append((final, total)) }
        } catch {
            for f in (try? RepositoryFileSystem.list(temp)) ?? [] { unlink(temp + "/" + f) }
            rmdir(temp)
            throw error
        }
        writtenLabelled.add(labelled, ordering: .relaxed)
        writtenUnlabelled.add(unlabelled, ordering: .relaxed)
    }
}
